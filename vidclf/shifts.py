"""Domain shifts: the same clip as another camera, phone or player would give it.

Each shift maps a whole clip, uint8 RGB ``[N, H, W, 3]`` (every frame), to the shifted clip. They stand in
for the real-world clips a user brings (portrait phone video, a person small in a wide shot, a mirrored
webcam, low resolution, odd colour, blur, heavy compression, another speed), to measure on validation groups
how far each model's accuracy falls when the camera changes and the action does not.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from collections.abc import Callable

import cv2
import numpy as np

from vidclf.video import read_all_frames

Shift = Callable[[np.ndarray], np.ndarray]


def portrait(frames: np.ndarray) -> np.ndarray:
    """A 9:16 portrait crop from the middle of the frame, as a phone held upright would film."""
    h, w = frames.shape[1:3]
    cw = min(w, max(2, round(h * 9 / 16)))
    left = (w - cw) // 2
    return np.ascontiguousarray(frames[:, :, left : left + cw])


def zoomed_out(frames: np.ndarray, scale: float = 0.55) -> np.ndarray:
    """The clip shrunk to ``scale`` inside black bars: the person far away in a wide shot."""
    n, h, w, _ = frames.shape
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros_like(frames)
    top, left = (h - sh) // 2, (w - sw) // 2
    for i, f in enumerate(frames):
        out[i, top : top + sh, left : left + sw] = cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA)
    return out


def mirrored(frames: np.ndarray) -> np.ndarray:
    """Left and right swapped, as a front camera shows its user."""
    return np.ascontiguousarray(frames[:, :, ::-1])


def low_resolution(frames: np.ndarray, side: int = 160) -> np.ndarray:
    """The longer side at ``side`` pixels."""
    h, w = frames.shape[1:3]
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


def colour_shift(frames: np.ndarray) -> np.ndarray:
    """Warm, brighter light: red up, blue down."""
    gain = np.array([1.25, 1.05, 0.8], np.float32)
    return np.clip(frames.astype(np.float32) * gain + 12, 0, 255).astype(np.uint8)


def blurred(frames: np.ndarray) -> np.ndarray:
    """Out of focus (a Gaussian blur of sigma 2 px on 320 px wide frames)."""
    sigma = 2.0 * max(frames.shape[1:3]) / 320
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def h264_low_bitrate(frames: np.ndarray, kbps: int = 120, fps: float = 25.0) -> np.ndarray:
    """Encoded to H.264 at ``kbps`` and decoded again (heavy blocking, as a messaging app sends it).

    Needs an FFmpeg binary: the one of the PyPI package ``imageio-ffmpeg``.
    """
    import imageio_ffmpeg

    n, h, w, _ = frames.shape
    w2, h2 = w - w % 2, h - h % 2  # yuv420p wants even sizes
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w2}x{h2}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "libx264",
            "-b:v",
            f"{kbps}k",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ]
        subprocess.run(cmd, input=np.ascontiguousarray(frames[:, :h2, :w2]).tobytes(), check=True, capture_output=True)
        return read_all_frames(out)


def half_speed(frames: np.ndarray) -> np.ndarray:
    """Played at half speed: every frame twice."""
    return np.repeat(frames, 2, axis=0)


def double_speed(frames: np.ndarray) -> np.ndarray:
    """Played at twice the speed: every other frame."""
    return np.ascontiguousarray(frames[::2])


SHIFTS: dict[str, Shift] = {
    "original": lambda f: f,
    "portrait 9:16": portrait,
    "zoomed out (black bars)": zoomed_out,
    "mirrored": mirrored,
    "160 px": low_resolution,
    "colour shift": colour_shift,
    "blurred": blurred,
    "H.264 120 kbit/s": h264_low_bitrate,
    "0.5x speed": half_speed,
    "2x speed": double_speed,
}
