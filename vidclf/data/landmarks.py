"""Pose landmarks of clips, computed once per clip and cached, and the dataset the pose stream trains on.

Estimating a pose costs ~20-40 ms a frame on 2 CPU threads, training steps on landmarks cost microseconds:
so each clip's raw landmarks ``[T, 33, 4]`` (uniformly sampled frames) are estimated once and kept in the
disk cache, keyed by the file and the settings, and every epoch augments and normalises them afresh.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from vidclf.config import TrainConfig
from vidclf.data.cache import NpyStore, clip_key
from vidclf.data.index import VideoRecord
from vidclf.errors import VideoError
from vidclf.models.pose import (
    NUM_LANDMARKS,
    PoseEstimator,
    ViewAugment,
    augment_landmarks,
    found_mask,
    normalize_landmarks,
)
from vidclf.sampling import uniform_indices
from vidclf.video import load_clip

log = logging.getLogger(__name__)

# Frames are shrunk to this longer side before pose estimation: BlazePose looks at 256 px crops anyway.
POSE_MAX_SIDE = 640
ESTIMATOR_ID = "blazepose-full-mediapipe-0.10.14-static"


def landmark_store(cache_dir: str | os.PathLike | None) -> NpyStore | None:
    return NpyStore(Path(cache_dir) / "landmarks") if cache_dir else None


def _key(path: str | os.PathLike, num_frames: int) -> dict:
    return clip_key(
        path,
        kind="landmarks",
        estimator=ESTIMATOR_ID,
        sampling="uniform",
        num_frames=num_frames,
        max_side=POSE_MAX_SIDE,
    )


def landmarks_beside(path: str | os.PathLike) -> np.ndarray | None:
    """The landmarks ``[N, 33, 4]`` of every frame of a clip, from ``<clip>.pose.npy`` beside it (written by
    whoever drew the clip and knows its joints: the synthetic set), or None where there is no such file."""
    known = Path(path).with_suffix(".pose.npy")
    if not known.is_file():
        return None
    every = np.load(known, allow_pickle=False)
    if every.ndim != 3 or every.shape[1:] != (NUM_LANDMARKS, 4):
        raise VideoError(f"{known.name} is not a landmarks file [frames, 33, 4]")
    return every.astype(np.float32)


def clip_landmarks(
    path: str | os.PathLike, num_frames: int, estimator: PoseEstimator, store: NpyStore | None = None
) -> np.ndarray:
    """Raw landmarks ``[num_frames, 33, 4]`` of uniformly sampled frames of one clip.

    From ``<clip>.pose.npy`` beside the clip where one exists (all its frames' landmarks, ``[N, 33, 4]``),
    else from the cache, else estimated (and cached).
    """
    shape = (num_frames, NUM_LANDMARKS, 4)
    every = landmarks_beside(path)
    if every is not None:
        return every[uniform_indices(len(every), num_frames)]
    if store is not None:
        cached = store.load(_key(path, num_frames), shape, np.float32)
        if cached is not None:
            return np.array(cached)
    frames = load_clip(path, num_frames, None, max_side=POSE_MAX_SIDE).frames
    raw = estimator(frames)
    if store is not None:
        store.save(_key(path, num_frames), raw)
    return raw


def records_landmarks(
    records: Sequence[VideoRecord],
    num_frames: int,
    cache_dir: str | os.PathLike | None,
    *,
    estimator: PoseEstimator | None = None,
    shard: tuple[int, int] = (0, 1),
    show_progress: bool = True,
) -> np.ndarray:
    """Raw landmarks ``[N, T, 33, 4]`` of every record (of shard ``rank`` of ``world``: ``records[rank::world]``)."""
    store = landmark_store(cache_dir)
    estimator = estimator or PoseEstimator()
    rank, world = shard
    mine = list(records)[rank::world]
    out = np.empty((len(mine), num_frames, NUM_LANDMARKS, 4), np.float32)
    bar = tqdm(mine, desc="pose landmarks", disable=None if show_progress else True, leave=False)  # None: not on a log
    for i, rec in enumerate(bar):
        try:
            out[i] = clip_landmarks(rec.path, num_frames, estimator, store)
        except VideoError as e:
            raise VideoError(f"{e} (dataset clip {rec.path}; remove or replace it)") from None
    return out


# A class keeps the person gate when at least this share of its training clips shows a person in some frame:
# the gate refuses a clip with no person in any frame, which for such a class is a clip nobody filmed right.
PERSON_GATE_MIN_FOUND = 0.9


def person_found_by_class(raw: np.ndarray, labels: Sequence[int], classes: Sequence[str]) -> dict[str, float]:
    """Per class, the share of its clips (raw landmarks ``[N, T, 33, 4]``) with a person found in some frame."""
    any_found = np.asarray(found_mask(raw).any(axis=1))
    y = np.asarray(labels)
    return {c: float(any_found[y == k].mean()) for k, c in enumerate(classes) if (y == k).any()}


def view_augment(train: TrainConfig) -> ViewAugment:
    """The pose stream's change-of-view augmentation that ``train`` asks for (``pose_yaw``, ``pose_squeeze``,
    ``pose_in_place``)."""
    return ViewAugment(yaw=train.pose_yaw, squeeze=train.pose_squeeze, in_place=train.pose_in_place)


class LandmarkDataset(Dataset):
    """``dataset[i] -> (features float [T, POSE_FEATURE_DIM], label)`` from raw landmarks ``[N, T, 33, 4]``.

    With ``augment``, each item is a fresh random variant (:func:`augment_landmarks`, with the change of
    ``view`` where given), drawn from torch's RNG so that ``torch.manual_seed`` makes an epoch reproducible.
    """

    def __init__(
        self, raw: np.ndarray, labels: Sequence[int], *, augment: bool = False, view: ViewAugment | None = None
    ):
        if raw.ndim != 4 or raw.shape[2:] != (NUM_LANDMARKS, 4) or len(raw) != len(labels):
            raise ValueError(f"expected landmarks [N, T, 33, 4] and N labels, got {raw.shape} and {len(labels)}")
        self.raw = raw
        self.labels = list(labels)
        self.augment = augment
        self.view = view

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        raw = self.raw[i]
        if self.augment:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
            raw = augment_landmarks(raw, rng, view=self.view)
        return torch.from_numpy(normalize_landmarks(raw)), self.labels[i]
