"""Evaluate a checkpoint (one model or a fusion) on a split: logits of its streams, fused, then the metrics."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from torch.utils.data import Dataset

from vidclf.checkpoint import Checkpoint, InputSpec, load_checkpoint
from vidclf.data.dataset import VideoClipDataset, cache_for
from vidclf.data.index import VideoRecord, build_index, split_by_group
from vidclf.errors import DatasetError
from vidclf.metrics import classification_metrics
from vidclf.runtime import collect_logits, make_loader, resolve_device, resolve_precision
from vidclf.verdict import combine, known_score

log = logging.getLogger(__name__)


def clip_dataset(spec: InputSpec, records: Sequence[VideoRecord], cache_dir: str | None) -> VideoClipDataset:
    """The clips ``records`` prepared as a pixel model's ``spec`` says (its frames, size, normalisation and motion
    pairs), decoded frames read through the frame cache in ``cache_dir``."""
    return VideoClipDataset(
        records,
        num_frames=spec.num_frames,
        img_size=spec.img_size,
        transform=spec.transform(),
        cache=cache_for(cache_dir),
        pair_gap=spec.pair_gap,
        gap_fps=spec.diff_fps,
    )


def stream_logits(
    ck: Checkpoint,
    records: Sequence[VideoRecord],
    *,
    batch_size: int = 4,
    precision: str = "fp32",
    cache_dir: str | None = None,
    landmark_cache_dir: str | None = None,
    num_workers: int = 0,
    device: str = "auto",
    show_progress: bool = False,
) -> torch.Tensor:
    """Logits ``[N, K]`` of one stream's model on ``records``, in their order.

    Pixels are read through the frame cache (``cache_dir``), landmarks through the landmark cache
    (``landmark_cache_dir``, else ``cache_dir``): a second evaluation of the same clips decodes and estimates
    nothing.
    """
    assert ck.input is not None
    spec = ck.input
    dev = resolve_device(device)
    model = ck.build_model().to(dev)
    labels = [r.label for r in records]
    if spec.features == "landmarks":
        from vidclf.data.landmarks import LandmarkDataset, records_landmarks

        ds: Dataset = LandmarkDataset(
            records_landmarks(records, spec.num_frames, landmark_cache_dir or cache_dir, show_progress=show_progress),
            labels,
        )
    else:
        ds = clip_dataset(spec, records, cache_dir)
        if resolve_precision(precision, dev) == "bf16":
            model.use_channels_last()
    loader = make_loader(ds, batch_size, shuffle=False, num_workers=num_workers, device=dev, seed=0)
    logits, _ = collect_logits(
        model, loader, dev, precision, show_progress=show_progress, features=spec.features != "pixels"
    )
    return logits


def checkpoint_logits(ck: Checkpoint, records: Sequence[VideoRecord], **kw) -> torch.Tensor:
    """Fused logits ``[N, K]`` of a checkpoint on ``records`` (``[N, K + 1]`` where a stream has an "other"
    output: :func:`vidclf.verdict.combine`, as the predictor fuses them)."""
    if not ck.is_fusion:
        lg = stream_logits(ck, records, **kw)
        return combine([lg], [1.0], [ck.other_output], len(ck.classes))
    with contextlib.ExitStack() as stack:
        if kw.get("cache_dir") is None:  # streams that read the same frames or landmarks share them through a cache
            kw["cache_dir"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="vidclf-eval-"))
        outputs = [stream_logits(stream, records, **kw) for stream, _ in ck.streams]
    return combine(outputs, [w for _, w in ck.streams], [s.other_output for s, _ in ck.streams], len(ck.classes))


def pose_landmarks(ck: Checkpoint, records: Sequence[VideoRecord], cache_dir: str | None) -> np.ndarray | None:
    """The pose stream's raw landmarks ``[N, T, 33, 4]`` of each clip, from the landmark cache; None without a
    pose stream."""
    pose = [s for s, _ in (ck.streams or ((ck, 1.0),)) if s.input is not None and s.input.features == "landmarks"]
    if not pose:
        return None
    from vidclf.data.landmarks import records_landmarks

    assert pose[0].input is not None
    return records_landmarks(records, pose[0].input.num_frames, cache_dir, show_progress=False)


def found_share(raw: np.ndarray) -> np.ndarray:
    """Raw landmarks ``[N, T, 33, 4]`` -> per clip, the share ``[N]`` of its frames with a person found (what
    the person gate of :meth:`vidclf.predict.Predictor.verdict` reads; ``vidclf.models.pose.found_mask`` per
    frame)."""
    from vidclf.models.pose import found_mask

    return found_mask(raw).mean(axis=1)


def pose_found(ck: Checkpoint, records: Sequence[VideoRecord], cache_dir: str | None) -> np.ndarray | None:
    """Per clip, the share ``[N]`` of the pose stream's frames with a person found (:func:`found_share`), from
    the landmark cache; None without a pose stream."""
    raw = pose_landmarks(ck, records, cache_dir)
    return None if raw is None else found_share(raw)


def answered_clips(
    ck: Checkpoint, logits: torch.Tensor, found: np.ndarray | None, landmarks: np.ndarray | None = None
) -> torch.Tensor:
    """bool ``[N]``: the clips ``ck`` answers (not "not one of these"), decided clip by clip by the rule
    ``predict`` decides by (:meth:`vidclf.predict.Predictor.verdict`: the threshold, the person gate and, with
    the clips' raw ``landmarks`` ``[N, T, 33, 4]`` and a checkpoint with a movement profile, the movement check)."""
    from vidclf.predict import Predictor

    judge = Predictor(ck, device="cpu")
    return torch.tensor(
        [
            judge.verdict(
                lg,
                None if found is None else float(found[i]),
                judge.movement_novelty(landmarks[i], lg) if landmarks is not None else None,
            )[1]
            for i, lg in enumerate(logits.float())
        ],
        dtype=torch.bool,
    )


def rejection_metrics(
    logits: torch.Tensor, labels: torch.Tensor, threshold: float | None, answered: torch.Tensor
) -> dict:
    """How "not one of these" treats clips of known classes: the share still answered (``answered``, bool
    ``[N]``: :func:`answered_clips`), and the accuracy on those (``logits``: the known classes' ``[N, K]``)."""
    correct = logits.argmax(1) == labels
    return {
        "threshold": threshold,
        "answered": answered.float().mean().item(),
        "answered_acc": correct[answered].float().mean().item() if answered.any() else None,
    }


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: int = 1,
    subset: str = "test",
    batch_size: int = 4,
    precision: str = "fp32",
    cache_dir: str | None = None,
    landmark_cache_dir: str | None = None,
    num_workers: int = 0,
    show_progress: bool = False,
) -> dict:
    """Metrics of a checkpoint on ``subset`` of ``data_root``, restricted to the checkpoint's own classes.

    ``subset``: "test" (the split's test list), "train" (its train list) or "val" (the validation groups the
    checkpoint's training config held out). Clips of other classes and listed-but-missing clips are skipped
    and counted in ``skipped_other_classes`` / ``missing``. ``clips`` lists each clip's path, label, top class,
    evidence and whether it is answered, by the rule ``predict`` answers by (:func:`answered_clips`).
    """
    ck = load_checkpoint(checkpoint)
    index = build_index(
        data_root, "test" if subset == "test" else "train", split=split, classes=ck.classes, num_classes=0
    )
    if subset == "val":
        held = ck.info.get("val_groups")
        if held is None:
            data_cfg = (ck.config or {}).get("data", {})
            held = split_by_group(index, data_cfg.get("val_fraction", 0.2), data_cfg.get("split_seed", 0)).val_groups
        index = index.subset([r for r in index.records if r.group in set(held)], f"{index.source} (validation groups)")
        if not index.records:
            raise DatasetError("the checkpoint held out no validation groups of this data (val_fraction 0?)")
    log.info(
        f"{checkpoint}: {len(index.records)} clips of {index.source} (subset {subset!r}) from {data_root}"
        + (f"; {index.other_classes} clips of other classes skipped" if index.other_classes else "")
        + (f"; {index.missing} listed but missing on disk" if index.missing else "")
    )
    labels = torch.tensor([r.label for r in index.records])
    with contextlib.ExitStack() as stack:
        if landmark_cache_dir is None and cache_dir is None:  # the model and the person gate read the same landmarks
            landmark_cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vidclf-eval-"))
        logits = checkpoint_logits(
            ck,
            index.records,
            batch_size=batch_size,
            precision=precision,
            cache_dir=cache_dir,
            landmark_cache_dir=landmark_cache_dir,
            num_workers=num_workers,
            show_progress=show_progress,
        )
        raw = pose_landmarks(ck, index.records, landmark_cache_dir or cache_dir)
        found = None if raw is None else found_share(raw)
    answered = answered_clips(ck, logits, found, raw)
    k = len(ck.classes)
    metrics = classification_metrics(logits[:, :k], labels, ck.classes)
    top, evidence = logits[:, :k].argmax(1), known_score(logits.float(), k)
    metrics.update(
        checkpoint=str(checkpoint),
        model=ck.backbone,
        data=index.source,
        split=split,
        subset=subset,
        skipped_other_classes=index.other_classes,
        missing=index.missing,
        epoch=ck.epoch,
        rejection=rejection_metrics(logits[:, : len(ck.classes)], labels, ck.reject_threshold, answered),
        clips=[
            dict(path=str(r.path), label=ck.classes[r.label], predicted=ck.classes[k], evidence=v, answered=a)
            for r, k, v, a in zip(index.records, top.tolist(), evidence.tolist(), answered.tolist())
        ],
    )
    if found is not None:
        no_person = torch.from_numpy(found == 0)
        metrics["rejection"]["no_person"] = int(no_person.sum())
        metrics["rejection"]["refused_no_person"] = int((no_person & ~answered).sum())
    return metrics
