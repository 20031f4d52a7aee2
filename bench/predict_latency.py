"""Prediction latency, file on disk to probabilities, for a typical UCF-101 clip, per shipped model.

cold = a new Predictor (checkpoint load) plus the first call; warm = later calls, median.

    python bench/predict_latency.py [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import ROOT, median_time, real_clips
from vidclf.predict import Predictor
from vidclf.video import probe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    clips = real_clips(200)
    clip = min(clips, key=lambda p: abs(probe(p).duration_s - 7.0))  # a typical ~7 s clip
    info = probe(clip)
    print(f"prediction latency on {clip.name} ({info.width}x{info.height}, {info.num_frames} frames, "
          f"{info.duration_s:.1f} s), {torch.get_num_threads()} threads, median of {args.repeats}")
    for ckpt in sorted((ROOT / "weights").glob("*.pt")):
        for precision in args.precision:
            t0 = time.perf_counter()
            predictor = Predictor(ckpt, precision=precision)
            predictor.predict(clip)
            cold = time.perf_counter() - t0
            warm = median_time(lambda: predictor.predict(clip), args.repeats, warmup=1)
            print(f"  {ckpt.stem:<20} {precision}: cold {1000 * cold:7.0f} ms   warm {1000 * warm:6.0f} ms "
                  f"({predictor.checkpoint.input.num_frames} frames at {predictor.checkpoint.input.img_size} px)")


if __name__ == "__main__":
    main()
