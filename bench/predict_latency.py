"""Prediction latency, file on disk to probabilities, for a typical UCF-101 clip, per shipped model, and
BlazePose's cost per frame (the pose stream's new cost).

cold = a new Predictor (checkpoint load) plus the first call; warm = later calls, median.

    python -m bench.predict_latency [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from bench.common import ROOT, median_time, real_clips
from vidclf.models.pose import PoseEstimator
from vidclf.predict import DISPLAY_MAX_SIDE, Predictor
from vidclf.video import load_clip, probe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16", "auto"])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    clips = real_clips(200)
    clip = min(clips, key=lambda p: abs(probe(p).duration_s - 7.0))  # a typical ~7 s clip
    info = probe(clip)
    print(
        f"prediction latency on {clip.name} ({info.width}x{info.height}, {info.num_frames} frames, "
        f"{info.duration_s:.1f} s), {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    frames = load_clip(clip, 32, None, max_side=DISPLAY_MAX_SIDE).frames
    estimator = PoseEstimator()
    estimator(frames[:2])  # start-up
    per_clip = median_time(lambda: estimator(frames), args.repeats, warmup=0)
    print(
        f"  BlazePose (full, static image mode): {1000 * per_clip / len(frames):.1f} ms a frame, "
        f"{1000 * per_clip:.0f} ms for the {len(frames)} frames of the pose stream"
    )
    for ckpt in sorted((ROOT / "weights").glob("*.pt")):
        for precision in args.precision:
            t0 = time.perf_counter()
            predictor = Predictor(ckpt, precision=precision)
            predictor.predict(clip)
            cold = time.perf_counter() - t0
            warm = median_time(partial(predictor.predict, clip), args.repeats, warmup=1)
            streams = {s.name: s for s, _ in predictor.streams}  # an ensemble's seeds share a name
            inputs = ", ".join(
                f"{name}: {s.spec.num_frames} frames" + ("" if s.pose else f" at {s.spec.img_size} px")
                for name, s in streams.items()
            )
            print(f"  {ckpt.stem:<20} {precision}: cold {1000 * cold:7.0f} ms   warm {1000 * warm:6.0f} ms ({inputs})")


if __name__ == "__main__":
    main()
