"""What the size of the frames BlazePose is given costs and changes: the same frames of a 720p push-up clip
at 640x360 (the static pass's size, as in training), 320x180 (the engine's tracking size) and 256x144
(BlazePose's own input is 256 px), in static image mode and in tracking mode, interleaved.

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
from vidclf.models.pose import PoseEstimator, PoseTrackers
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
    sizes = {"640x360": (360, 640), "320x180": (180, 320), "256x144": (144, 256)}
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
    marks = {name: estimator(x) for name, x in inputs.items()}
    for name in sizes:
        print(f"static {name}: {1000 * np.median(times[name]):.1f} ms a frame")
    _compare(marks, "640x360")

    trackers = PoseTrackers()
    tracked = {name: inputs[name] for name in ("320x180", "256x144")}
    ttimes: dict[str, list[float]] = {name: [] for name in tracked}
    tmarks: dict[str, np.ndarray] = {}
    for _ in range(3):
        for name, x in tracked.items():
            tracker = trackers.tracker()
            tracker(x[0])  # the graph's first frame runs the detector
            t0 = time.perf_counter()
            tmarks[name] = np.stack([tracker(f) for f in x[1:]])
            ttimes[name].append((time.perf_counter() - t0) / (len(x) - 1))
            tracker.close()
    trackers.close()
    for name in tracked:
        print(f"tracking {name}: {1000 * np.median(ttimes[name]):.1f} ms a frame")
    _compare(tmarks, "320x180")


def _compare(marks: dict[str, np.ndarray], ref: str) -> None:
    """Found shares and the median landmark shift of each size against ``ref``'s, in units of the long side."""
    for name, lm in marks.items():
        both = ~np.isnan(marks[ref][:, 0, 0]) & ~np.isnan(lm[:, 0, 0])
        shift = np.median(np.abs(marks[ref][both, :, :2] - lm[both, :, :2])) if both.any() else float("nan")
        print(f"  {name}: person found {(~np.isnan(lm[:, 0, 0])).mean():.0%}, landmarks move by a median {shift:.2%}")


if __name__ == "__main__":
    main()
