"""Which frame indices to take from a clip: pure functions of the clip length.

Decoding (``vidclf.video``) and sampling are separate so that the indices can be tested exactly and the
same rule serves training, evaluation, caching and prediction.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def uniform_indices(num_frames_in_clip: int, num_samples: int) -> list[int]:
    """``num_samples`` indices spread uniformly over the whole clip: the centre of each of equal segments.

    Segment ``i`` of ``num_samples`` covers ``[i*L/n, (i+1)*L/n)``; its centre is taken, so the first and
    last frames (often fades or black) are avoided and the sampling is symmetric in time. A clip shorter
    than ``num_samples`` repeats frames instead of failing:

    >>> uniform_indices(100, 4)
    [12, 37, 62, 87]
    >>> uniform_indices(3, 5)
    [0, 0, 1, 2, 2]
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if num_frames_in_clip < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames_in_clip}")
    length, n = num_frames_in_clip, num_samples
    # Integer arithmetic: floor((2i + 1) * L / 2n) is the segment centre without float rounding surprises.
    return [((2 * i + 1) * length) // (2 * n) for i in range(n)]


def random_segment_indices(num_frames_in_clip: int, num_samples: int, rng: np.random.Generator) -> list[int]:
    """TSN-style training sampling: one random frame from each of ``num_samples`` equal segments.

    Every epoch sees other frames of the same clip (temporal jitter) while the order and coverage of the
    clip are kept. Falls back to :func:`uniform_indices` when the clip has fewer frames than samples.
    """
    length, n = num_frames_in_clip, num_samples
    if length < n:
        return uniform_indices(length, n)
    starts = [(i * length) // n for i in range(n)]
    ends = [((i + 1) * length) // n for i in range(n)]
    return [int(rng.integers(s, e)) for s, e in zip(starts, ends)]


def window_starts(num_frames_in_clip: int, window: int, stride: int) -> list[int]:
    """Start indices of sliding windows of ``window`` consecutive frames, ``stride`` apart, covering the clip.

    The last window is aligned to the clip's end so that no tail is left unseen.

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    """
    if num_frames_in_clip <= window:
        return [0]
    starts = list(range(0, num_frames_in_clip - window + 1, stride))
    if starts[-1] != num_frames_in_clip - window:
        starts.append(num_frames_in_clip - window)
    return starts


def paired_indices(indices: list[int], gap: int, num_frames_in_clip: int) -> list[int]:
    """Each index followed by its partner ``gap`` frames later (clamped to the last frame): the frame pairs
    whose differences are the motion input (``frame_input="diff"``).

    >>> paired_indices([12, 37, 62, 87], 2, 100)
    [12, 14, 37, 39, 62, 64, 87, 89]
    >>> paired_indices([0, 1, 2], 2, 3)
    [0, 2, 1, 2, 2, 2]
    """
    last = num_frames_in_clip - 1
    return [j for i in indices for j in (i, min(i + gap, last))]


def paired(sampler: Callable[[int, int], list[int]], gap: int) -> Callable[[int, int], list[int]]:
    """``sampler`` whose every index comes with its partner ``gap`` frames later (see :func:`paired_indices`);
    ``sampler`` itself when ``gap`` is 0 (plain frames)."""
    if not gap:
        return sampler
    return lambda length, n: paired_indices(sampler(length, n), gap, length)
