"""Classify videos with a trained checkpoint: load once, then predict file after file."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vidclf.checkpoint import Checkpoint, load_checkpoint
from vidclf.sampling import paired, paired_indices, uniform_indices, window_starts
from vidclf.training.loop import autocast
from vidclf.video import VideoInfo, load_clip, probe, read_frames


@dataclass(frozen=True)
class Timeline:
    """Class probabilities of sliding windows: ``probs`` is ``[W, K]``, ``times`` the window centres in seconds."""

    times: list[float]
    probs: np.ndarray
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Prediction:
    """Class probabilities of one clip, and the frames the model saw (uint8 ``[T, H, W, 3]``)."""

    probs: dict[str, float]  # every class, in the checkpoint's class order; sums to 1
    frames: np.ndarray
    indices: list[int]
    info: VideoInfo
    seconds: float

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        return sorted(self.probs.items(), key=lambda kv: -kv[1])[:k]

    @property
    def label(self) -> str:
        return self.top(1)[0][0]


class Predictor:
    """A checkpoint's model, ready for inference. ``precision="bf16"`` trades exactness for speed."""

    def __init__(self, checkpoint: str | os.PathLike | Checkpoint, precision: str = "fp32", device: str = "cpu"):
        self.checkpoint = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.precision = precision
        self.model = self.checkpoint.build_model().to(self.device)
        if precision == "bf16":
            self.model.use_channels_last()
        self.transform = self.checkpoint.input.transform()

    @property
    def classes(self) -> tuple[str, ...]:
        return self.checkpoint.classes

    @torch.inference_mode()
    def probabilities(self, clips: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` normalised clips -> ``[B, K]`` probabilities."""
        with autocast(self.device, self.precision):
            logits = self.model(clips.to(self.device))
        return logits.float().softmax(-1).cpu()

    def predict(self, path: str | os.PathLike) -> Prediction:
        """Sample, decode and classify one video file. Raises ``VideoError`` for files that are not videos."""
        t0 = time.perf_counter()
        spec = self.checkpoint.input
        clip = load_clip(Path(path), spec.num_frames, (spec.img_size, spec.img_size), sampler=paired(uniform_indices, spec.pair_gap))
        probs = self.probabilities(self.transform(clip.frames)[None])[0]
        step = 2 if spec.pair_gap else 1  # a motion model saw pairs: show the first frame of each
        return Prediction(
            probs={c: float(p) for c, p in zip(self.classes, probs.tolist())},
            frames=clip.frames[::step],
            indices=clip.indices[::step],
            info=clip.info,
            seconds=time.perf_counter() - t0,
        )

    def timeline(self, path: str | os.PathLike, window_s: float = 4.0, max_windows: int = 40, batch: int = 8) -> Timeline | None:
        """Probabilities of ``window_s``-second windows across a clip, or None if the clip is not longer than
        two windows. Each window is sampled like a whole clip; all windows' frames are decoded in one pass.
        """
        info = probe(path)
        spec = self.checkpoint.input
        window = max(spec.num_frames, int(round(window_s * info.fps)))
        if info.num_frames < 2 * window:
            return None
        stride = max(window // 2, (info.num_frames - window) // max(max_windows - 1, 1) + 1)
        starts = window_starts(info.num_frames, window, stride)
        per_window = [[s + i for i in uniform_indices(window, spec.num_frames)] for s in starts]
        if spec.pair_gap:
            per_window = [paired_indices(w, spec.pair_gap, info.num_frames) for w in per_window]
        wanted = sorted({i for w in per_window for i in w})
        frames = read_frames(path, wanted, (spec.img_size, spec.img_size))
        row = {idx: k for k, idx in enumerate(wanted)}
        out = []
        for b in range(0, len(per_window), batch):
            clips = torch.stack([self.transform(frames[[row[i] for i in w]]) for w in per_window[b : b + batch]])
            out.append(self.probabilities(clips))
        times = [(s + window / 2) / info.fps for s in starts]
        return Timeline(times, torch.cat(out).numpy(), self.classes)
