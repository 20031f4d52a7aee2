"""What the size of the frames BlazePose is given costs and changes: the same frames of a 720p push-up clip
at 640x360 (the pose grid's size now) and 320x180 (its size before), interleaved.

    python -m bench.pose_size

The clip: the first 16 s of ``real/long/APKA-llc__exercise-tracking__pushups.mp4`` (../shared) upscaled to
1280x720 with imageio-ffmpeg's FFmpeg, written to a temporary folder.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import UCF_ROOT
from vidclf.models.pose import PoseEstimator
from vidclf.video import read_all_frames, resize_frame

SOURCE = UCF_ROOT.parent / "real" / "long" / "APKA-llc__exercise-tracking__pushups.mp4"


def main() -> None:
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "pushups720.mp4"
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-t", "16", "-i", str(SOURCE),
               "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast", "-an", str(clip)]  # fmt: skip
        subprocess.run(cmd, check=True)
        frames = read_all_frames(clip)[::4][:64]
    sizes = {"640x360": (360, 640), "320x180": (180, 320)}
    inputs = {name: np.stack([resize_frame(f, hw) for f in frames]) for name, hw in sizes.items()}
    estimator = PoseEstimator()
    for x in inputs.values():
        estimator(x[:2])  # the graph built and warm
    times: dict[str, list[float]] = {name: [] for name in sizes}
    for _ in range(3):
        for name, x in inputs.items():
            t0 = time.perf_counter()
            estimator(x)
            times[name].append((time.perf_counter() - t0) / len(x))
    big, small = (estimator(x) for x in inputs.values())
    both = ~np.isnan(big[:, 0, 0]) & ~np.isnan(small[:, 0, 0])
    for name in sizes:
        print(f"{name}: {1000 * np.median(times[name]):.1f} ms a frame")
    print(f"ratio {np.median(times['640x360']) / np.median(times['320x180']):.2f}x")
    print(f"person found: {(~np.isnan(big[:, 0, 0])).mean():.0%} / {(~np.isnan(small[:, 0, 0])).mean():.0%}")
    print(f"landmarks move by a median {np.median(np.abs(big[both, :, :2] - small[both, :, :2])):.2%} of the long side")


if __name__ == "__main__":
    main()
