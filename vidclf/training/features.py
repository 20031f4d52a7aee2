"""Per-frame features of a frozen backbone, computed once per clip and cached on disk.

With ``--freeze-backbone`` the CNN never changes, so running it every epoch is wasted work: the features
``[T, D]`` of each clip (eval transform) are computed once, stored in the cache, and training runs only
the LSTM and the classifier on them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from vidclf.data.cache import NpyStore, clip_key
from vidclf.data.dataset import VideoClipDataset
from vidclf.models.cnn_lstm import CNNLSTM
from vidclf.training.loop import autocast


def backbone_fingerprint(model: CNNLSTM) -> str:
    """A hash of the backbone's weights: features of other weights must never be reused."""
    h = hashlib.sha1()
    for name, tensor in sorted(model.backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.inference_mode()
def feature_dataset(
    model: CNNLSTM,
    dataset: VideoClipDataset,
    cache_dir: str | Path | None,
    device: torch.device,
    precision: str,
    show_progress: bool = True,
    batch_clips: int = 4,
    shard: tuple[int, int] = (0, 1),
) -> TensorDataset:
    """``TensorDataset(features [N, T, D] float32, labels [N])`` of ``dataset``'s clips, from the cache where
    possible. The dataset's own transform must be deterministic (no augmentation).

    ``shard=(rank, world)`` computes only clips ``rank, rank + world, ...`` (to fill a shared cache from
    several processes); the result then holds only those clips.
    """
    store = NpyStore(Path(cache_dir) / "features") if cache_dir else None
    fingerprint = backbone_fingerprint(model)
    model.eval()
    rank, world = shard
    mine = list(range(rank, len(dataset), world))
    feats: dict[int, np.ndarray | None] = {i: None for i in mine}
    keys = {}
    for i in mine:
        rec = dataset.records[i]
        key = clip_key(rec.path, kind="features", backbone=fingerprint, num_frames=dataset.num_frames,
                       img_size=dataset.img_size, precision=precision, mean=list(dataset.transform.mean),
                       std=list(dataset.transform.std))
        keys[i] = key
        if store is not None:
            feats[i] = store.load(key, (dataset.num_frames, model.feature_dim), np.float32)
    todo = [i for i, f in feats.items() if f is None]
    rng = np.random.default_rng(0)
    for b in tqdm(range(0, len(todo), batch_clips), desc="features", disable=not show_progress or not todo, leave=False):
        idx = todo[b : b + batch_clips]
        clips = torch.stack([dataset.transform(dataset.frames(i, rng), rng) for i in idx]).to(device)
        with autocast(device, precision):
            out = model.forward_features(clips).float().cpu().numpy()
        for i, f in zip(idx, out):
            feats[i] = f
            if store is not None:
                store.save(keys[i], f)
    x = torch.from_numpy(np.stack([np.asarray(feats[i], dtype=np.float32) for i in mine]))
    y = torch.tensor([dataset.records[i].label for i in mine])
    return TensorDataset(x, y)
