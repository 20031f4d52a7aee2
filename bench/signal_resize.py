"""What a frame's counting picture (48x64, every frame of a clip) costs: the exact area average
(``resize_frame``) against ``shrink_quick`` (a large frame whose factor is not whole is halved first), on the
first 60 frames of the phone clips of ``bench.phone_latency``, interleaved, with the largest grey-level
difference between the two.

    python -m bench.signal_resize [--clips DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from vidclf.predict import SIGNAL_DECODE_SIZE
from vidclf.video import resize_frame, shrink_quick


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path("/tmp/vidclf-phone-clips"))
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}")
    for clip in sorted(args.clips.glob("squat_*_15s.mp4")):
        cap = cv2.VideoCapture(str(clip))
        frames = [f for f in (cap.read()[1] for _ in range(60)) if f is not None]
        cap.release()
        times: dict[str, list[float]] = {"exact": [], "quick": []}
        for _ in range(5):
            for name, fn in (("exact", resize_frame), ("quick", shrink_quick)):
                t0 = time.perf_counter()
                for f in frames:
                    fn(f, SIGNAL_DECODE_SIZE)
                times[name].append((time.perf_counter() - t0) / len(frames))
        grey = lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(int)  # noqa: E731
        diff = max(
            int(np.abs(grey(resize_frame(f, SIGNAL_DECODE_SIZE)) - grey(shrink_quick(f, SIGNAL_DECODE_SIZE))).max())
            for f in frames
        )
        exact, quick = (1000 * statistics.median(times[k]) for k in ("exact", "quick"))
        h, w = frames[0].shape[:2]
        print(
            f"{w}x{h}: exact {exact:.2f} ms a frame, quick {quick:.2f} ms ({exact / quick:.2f}x); "
            f"largest grey difference {diff}"
        )
    print(f"load average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
