"""Decode benchmark: sampling 20 frames by grabbing past the others vs decoding every frame then sampling,
and what one ``grab()`` costs against one ``read()`` (``grab()`` decodes; ``read()`` adds the conversion to
BGR and the copy).

python -m bench.decode [--clips 20]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from bench.common import median_time, real_clips
from vidclf.sampling import uniform_indices
from vidclf.video import load_clip


def naive(path, num_frames: int, size: int) -> np.ndarray:
    """Decode and resize every frame, then keep the sampled ones (what a simple loader does)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA))
    cap.release()
    return np.stack([frames[i] for i in uniform_indices(len(frames), num_frames)])


def per_frame(path, op: str) -> float:
    """Seconds a frame to go through a whole clip with ``op`` ("grab" or "read")."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab() if op == "grab" else cap.read()[0]:
        n += 1
    cap.release()
    return 1.0 / max(n, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    clips = real_clips(args.clips)
    ours = [median_time(lambda p=p: load_clip(p, 20, (128, 128)), args.repeats) for p in clips]
    base = [median_time(lambda p=p: naive(p, 20, 128), args.repeats) for p in clips]
    for p in clips[:1]:
        assert np.array_equal(load_clip(p, 20, (128, 128)).frames, naive(p, 20, 128)), (
            "both ways must give the same frames"
        )
    print(f"decode, {len(clips)} real UCF-101 clips, 20 frames at 128 px, median of {args.repeats} per clip")
    print(f"  naive (decode all, then sample): {1000 * np.median(base):7.1f} ms/clip")
    print(f"  vidclf (grab past, decode kept): {1000 * np.median(ours):7.1f} ms/clip")
    print(f"  speed-up: {np.median(base) / np.median(ours):.2f}x")
    grab = [median_time(lambda p=p: per_frame(p, "grab"), args.repeats) * per_frame(p, "grab") for p in clips]
    read = [median_time(lambda p=p: per_frame(p, "read"), args.repeats) * per_frame(p, "read") for p in clips]
    print(f"  grab() {1000 * np.median(grab):.2f} ms/frame, read() {1000 * np.median(read):.2f} ms/frame: grab is "
          f"{np.median(grab) / np.median(read):.0%} of read")  # fmt: skip


if __name__ == "__main__":
    main()
