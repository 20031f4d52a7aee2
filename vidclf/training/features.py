"""Per-frame features of a frozen backbone, computed once per clip and cached on disk.

With ``--freeze-backbone`` the CNN never changes, so running it every epoch is wasted work: the features
``[T, D]`` of each clip are computed once, stored in the cache, and training runs only the LSTM and the
classifier on them.

A frozen backbone would also mean no augmentation: every epoch the head sees the very same numbers, and on
a few hundred clips it memorises them. ``views > 1`` puts augmentation back at the price of extraction
only: besides the deterministic eval view (view 0), each clip gets ``views - 1`` augmented views (TSN
segment sampling, a clip-consistent random crop and flip), each computed once and cached like view 0, and
every training epoch draws one view per clip at random.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vidclf.data.cache import NpyStore, clip_key
from vidclf.data.dataset import VideoClipDataset
from vidclf.models.cnn_lstm import CNNLSTM
from vidclf.runtime import autocast, resolve_precision


def backbone_fingerprint(model: CNNLSTM) -> str:
    """A hash of the backbone's weights: features of other weights must never be reused."""
    h = hashlib.sha1()
    for name, tensor in sorted(model.backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class FeatureViews(Dataset):
    """Features of ``N`` clips in ``V`` views and labels ``[N]``; ``dataset[i] -> (features [T, D], label)``.

    The features are either in memory (``features`` ``[N, V, T, D]``) or, at scale, in the cache: ``files[i][v]``
    is the ``.npy`` of clip ``i``'s view ``v``, read when the item is asked for (a few hundred kB), so that a
    data set of any size costs no more memory than a batch, and no file stays mapped.

    Item ``i`` is one of clip ``i``'s ``V`` views, drawn from torch's RNG (so ``torch.manual_seed`` makes
    an epoch reproducible); with ``V = 1`` it is always the eval view.
    """

    def __init__(self, features: torch.Tensor | None, labels: torch.Tensor, *, files: list[list[Path]] | None = None):
        if (features is None) == (files is None):
            raise ValueError("give the features in memory or their files, one of the two")
        if features is not None and (features.ndim != 4 or len(features) != len(labels)):
            raise ValueError(
                f"expected features [N, V, T, D] and labels [N], got {tuple(features.shape)}, {tuple(labels.shape)}"
            )
        if files is not None and (len(files) != len(labels) or len({len(f) for f in files}) > 1):
            raise ValueError("expected the same number of view files for every clip, one clip per label")
        self.features, self.labels, self.files = features, labels, files

    @property
    def num_views(self) -> int:
        return self.features.shape[1] if self.features is not None else len(self.files[0]) if self.files else 1

    def __len__(self) -> int:
        return len(self.labels)

    def view(self, i: int, v: int) -> torch.Tensor:
        """Clip ``i``'s view ``v``, ``[T, D]``."""
        if self.features is not None:
            return self.features[i, v]
        assert self.files is not None
        path = self.files[i][v]
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise OSError(
                f"the feature cache entry {path} went missing or is damaged during training ({e}); "
                "delete the cache folder's features/ and run again"
            ) from None
        return torch.from_numpy(np.asarray(x, dtype=np.float32))

    def all(self) -> torch.Tensor:
        """Every view of every clip, ``[N, V, T, D]``, in memory (for small sets and inspection)."""
        if self.features is not None:
            return self.features
        return torch.stack([torch.stack([self.view(i, v) for v in range(self.num_views)]) for i in range(len(self))])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        v = int(torch.randint(0, self.num_views, (1,))) if self.num_views > 1 else 0
        return self.view(i, v), self.labels[i]


def _view_rng(path: Path, view: int) -> np.random.Generator:
    """The random draws of view ``view`` of a clip: fixed, so that a cached view is the view it claims to be."""
    return np.random.default_rng([view, zlib.crc32(str(path).encode())])


@torch.inference_mode()
def feature_dataset(
    model: CNNLSTM,
    dataset: VideoClipDataset,
    *,
    cache_dir: str | Path | None,
    device: torch.device,
    precision: str,
    show_progress: bool = True,
    batch_clips: int = 4,
    shard: tuple[int, int] = (0, 1),
    views: int = 1,
) -> FeatureViews:
    """:class:`FeatureViews` of ``dataset``'s clips, from the cache where possible.

    View 0 uses the dataset's own (deterministic) transform and uniform sampling; views ``1..views-1`` use
    the same transform with augmentation on and TSN segment sampling, each with its own fixed random draws.

    ``shard=(rank, world)`` computes only clips ``rank, rank + world, ...`` (to fill a shared cache from
    several processes); the result then holds only those clips.
    """
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    # the cache key holds the precision the features were computed in, not how it was asked for ("auto")
    precision = resolve_precision(precision, device)
    store = NpyStore(Path(cache_dir) / "features") if cache_dir else None
    fingerprint = backbone_fingerprint(model)
    model.eval()
    rank, world = shard
    mine = list(range(rank, len(dataset), world))
    augmented = dataclasses.replace(dataset.transform, augment=True)
    shape = (dataset.num_frames, model.feature_dim)

    def key(i: int, view: int) -> dict:
        settings = dict(
            kind="features",
            backbone=fingerprint,
            num_frames=dataset.num_frames,
            img_size=dataset.img_size,
            precision=precision,
            mean=list(dataset.transform.mean),
            std=list(dataset.transform.std),
        )
        if dataset.pair_gap:  # motion input, the clip's own gap (2 at 25-30 fps); plain frames keep their old key
            settings.update(pair_gap=dataset.pair_gap_of(i))
        if view:  # view 0 keeps the key it had before views existed, so old caches still hit
            settings.update(view=view, sampling="segment", scale=list(augmented.scale), flip_p=augmented.flip_p)
        return clip_key(dataset.records[i].path, **settings)

    def clip(i: int, view: int) -> torch.Tensor:
        if view == 0:
            return dataset.transform(dataset.frames(i, np.random.default_rng(0)), None)
        rng = _view_rng(dataset.records[i].path, view)
        return augmented(dataset.frames(i, rng, sampling="segment"), rng)

    wanted = [(i, v) for i in mine for v in range(views)]
    # With a cache, entries are only checked here (each map released at once), computed where missing, and
    # read again item by item while training: nothing of the whole set is held in memory.
    feats: dict[tuple[int, int], np.ndarray] = {}
    todo = [iv for iv in wanted if store is None or store.load(key(*iv), shape, np.float32) is None]
    for b in tqdm(
        range(0, len(todo), batch_clips), desc="features", disable=None if show_progress and todo else True, leave=False
    ):
        batch = todo[b : b + batch_clips]
        clips = torch.stack([clip(i, v) for i, v in batch]).to(device)
        with autocast(device, precision):
            out = model.forward_features(clips).float().cpu().numpy()
        for iv, f in zip(batch, out):
            if store is not None:
                store.save(key(*iv), f)
            else:
                feats[iv] = f
    y = torch.tensor([dataset.records[i].label for i in mine])
    if store is not None:
        return FeatureViews(None, y, files=[[store.path(key(i, v)) for v in range(views)] for i in mine])
    x = torch.from_numpy(np.stack([[feats[i, v] for v in range(views)] for i in mine]).astype(np.float32))
    return FeatureViews(x, y)
