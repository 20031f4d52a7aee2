"""The training/evaluation dataset: index records -> decoded frames (cached) -> transformed tensors."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidclf.config import Config, gap_frames
from vidclf.data.cache import FrameCache
from vidclf.data.index import GroupSplit, VideoIndex, VideoRecord, build_index, group_folds, split_by_group
from vidclf.data.transforms import ClipTransform
from vidclf.errors import VideoError
from vidclf.models.backbones import normalization
from vidclf.models.registry import get_backbone
from vidclf.sampling import paired, random_segment_indices, uniform_indices
from vidclf.video import clip_fps, load_clip


class VideoClipDataset(Dataset):
    """``dataset[i] -> (clip float [T, C, H, W], label int)``.

    ``sampling="uniform"`` takes the same evenly spread frames every time (and can use ``cache``);
    ``"segment"`` takes one random frame per segment (TSN), which differs every epoch and is never cached.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        num_frames: int,
        img_size: int,
        transform: ClipTransform,
        sampling: str = "uniform",
        cache: FrameCache | None = None,
        pair_gap: int = 0,
        gap_fps: float = 25.0,
    ):
        self.records = list(records)
        self.num_frames = num_frames
        self.img_size = img_size
        self.transform = transform
        self.sampling = sampling
        self.cache = cache
        self.pair_gap = pair_gap  # > 0: frames come in pairs this far apart at gap_fps, for a motion transform
        self.gap_fps = gap_fps  # a clip at another rate takes its pairs the same time apart (pair_gap_of)

    def __len__(self) -> int:
        return len(self.records)

    def pair_gap_of(self, i: int) -> int:
        """Frames between the two frames of record ``i``'s pairs (0: plain frames): ``pair_gap`` at ``gap_fps``
        as a time, in the clip's own frames (:func:`vidclf.config.gap_frames`), as prediction takes them."""
        return gap_frames(self.pair_gap, self.gap_fps, clip_fps(self.records[i].path)) if self.pair_gap else 0

    def frames(self, i: int, rng: np.random.Generator, sampling: str | None = None) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` (``[2T, H, W, 3]`` pairs with ``pair_gap``) of record ``i``, sampled the
        dataset's way or as ``sampling`` says."""
        rec = self.records[i]
        size = (self.img_size, self.img_size)
        try:
            gap = self.pair_gap_of(i)
            if (sampling or self.sampling) == "segment":
                sampler = lambda n, k: random_segment_indices(n, k, rng)  # noqa: E731
            elif self.cache is not None:
                return self.cache.frames(rec.path, self.num_frames, self.img_size, gap)
            else:
                sampler = uniform_indices
            return load_clip(rec.path, self.num_frames, size, sampler=paired(sampler, gap)).frames
        except VideoError as e:
            raise VideoError(f"{e} (dataset clip {rec.path}; remove or replace it)") from None

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        # Draw from torch's RNG so that torch.manual_seed and DataLoader worker seeding make it reproducible.
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        return self.transform(self.frames(i, rng), rng), self.records[i].label


def cache_for(cache_dir: str | None) -> FrameCache | None:
    return FrameCache(cache_dir) if cache_dir else None


@dataclass(frozen=True, kw_only=True)
class TrainingData:
    """The training and validation datasets of a config, and where they came from."""

    train: Dataset
    val: Dataset
    classes: tuple[str, ...]
    split: GroupSplit
    index: VideoIndex

    def describe(self) -> str:
        idx = self.index
        lines = [
            f"data: {idx.source}, {len(idx.classes)} classes, {len(idx.records)} clips "
            f"({len(self.split.train.records)} train / {len(self.split.val.records)} validation, "
            f"validation groups: {', '.join(self.split.val_groups) or 'none'})",
        ]
        if idx.missing:
            lines.append(f"note: {idx.missing} clips named by the split list are missing on disk and were skipped")
        return "\n".join(lines)


def training_data(config: Config, fold: tuple[int, int] | None = None, *, show_progress: bool = True) -> TrainingData:
    """Index the data root's training part, hold out validation groups, and wrap both as datasets.

    ``fold=(i, k)`` takes fold ``i`` of a group k-fold split (for cross-validation) instead of the
    ``val_fraction`` / ``split_seed`` hold-out.

    Frames are normalised as the backbone expects; augmentation and TSN sampling are off with a frozen
    backbone, whose features are computed once from the deterministic eval view of each clip.
    """
    cfg = config.data
    index = build_index(cfg.data_root, "train", split=cfg.split, classes=cfg.classes, num_classes=cfg.num_classes)
    split = group_folds(index, fold[1])[fold[0]] if fold else split_by_group(index, cfg.val_fraction, cfg.split_seed)
    if get_backbone(config.model.backbone).input == "landmarks":
        return _landmark_data(config, index, split, show_progress=show_progress)
    cache = cache_for(cfg.cache_dir)
    mean, std = normalization(config.model.backbone)
    frozen = config.train.freeze_backbone
    diff = cfg.pair_gap > 0
    train_tf = ClipTransform(mean, std, augment=config.train.augment and not frozen, diff=diff)
    sampling = "uniform" if frozen else cfg.train_sampling
    train = VideoClipDataset(
        split.train.records,
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        transform=train_tf,
        sampling=sampling,
        cache=cache,
        pair_gap=cfg.pair_gap,
        gap_fps=cfg.diff_fps,
    )
    val = VideoClipDataset(
        split.val.records,
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        transform=ClipTransform(mean, std, diff=diff),
        cache=cache,
        pair_gap=cfg.pair_gap,
        gap_fps=cfg.diff_fps,
    )
    return TrainingData(train=train, val=val, classes=index.classes, split=split, index=index)


def _landmark_data(config: Config, index: VideoIndex, split: GroupSplit, *, show_progress: bool) -> TrainingData:
    """The pose stream's datasets: raw landmarks of every clip (estimated once, cached), augmented in
    landmark space for training."""
    from vidclf.data.landmarks import LandmarkDataset, records_landmarks, view_augment

    cfg = config.data

    def dataset(part: VideoIndex, *, augment: bool) -> LandmarkDataset:
        raw = records_landmarks(part.records, cfg.num_frames, cfg.cache_dir, show_progress=show_progress)
        return LandmarkDataset(raw, [r.label for r in part.records], augment=augment, view=view_augment(config.train))

    return TrainingData(
        train=dataset(split.train, augment=config.train.augment),
        val=dataset(split.val, augment=False),
        classes=index.classes,
        split=split,
        index=index,
    )
