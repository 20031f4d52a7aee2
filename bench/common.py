"""Shared helpers for the benchmarks: the real clips, medians of repeated timings."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
UCF_ROOT = Path(os.environ.get("VIDCLF_SHARED", ROOT.parent / "shared")) / "ucf101"


def real_clips(n: int) -> list[Path]:
    """``n`` real UCF-101 clips spread over the classes (sorted, so every run takes the same)."""
    clips = sorted((UCF_ROOT / "UCF-101").rglob("*.avi"))
    if not clips:
        raise SystemExit(f"no clips under {UCF_ROOT}: set VIDCLF_SHARED to the folder holding ucf101/")
    step = max(1, len(clips) // n)
    return clips[::step][:n]


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
