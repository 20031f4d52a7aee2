"""Contact sheets for counting repetitions by eye (the ground truth of docs/rep_counts.csv).

Each sheet shows a clip's frames at about 12 a second, numbered by frame, in rows of 16, and under them a
kymograph: one column of pixels per frame, taken through the middle of what moves, so an up-and-down
movement draws one wave per repetition. The waves are a help to see where to look; the counts are made
on the frames.

    python -m bench.contact_sheet JumpRope/v_JumpRope_g10_c01.avi [...] --out /tmp/sheets
    python -m bench.contact_sheet ../shared/real/positive/PushUps/*.mp4 --out /tmp/sheets --rate 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from bench import common
from vidclf.video import probe, read_all_frames

THUMB = (72, 96)  # (H, W)
PER_ROW = 16


def sheet(path: Path, rate: float = 12.5) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 RGB images: numbered thumbnails at about ``rate`` frames a second; the kymographs (a column
    and a row through the motion over time, 6 pixels a frame)."""
    fps = probe(path).fps
    frames = read_all_frames(path)
    step = max(1, int(round(fps / rate)))
    shown = list(range(0, len(frames), step))
    h, w = THUMB
    rows = (len(shown) + PER_ROW - 1) // PER_ROW
    grid = np.full((rows * (h + 2), PER_ROW * (w + 2), 3), 255, np.uint8)
    for k, i in enumerate(shown):
        r, c = divmod(k, PER_ROW)
        thumb = cv2.resize(frames[i], (w, h), interpolation=cv2.INTER_AREA)
        cv2.putText(thumb, str(i), (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1)
        grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = thumb
    grey = frames.mean(-1)  # [T, H, W]
    moving = np.abs(np.diff(grey, axis=0)).mean(0)  # [H, W]: where frames differ most
    x = int(np.argmax(np.convolve(moving.mean(0), np.ones(31) / 31, mode="same")))
    y = int(np.argmax(np.convolve(moving.mean(1), np.ones(31) / 31, mode="same")))
    vertical = grey[:, :, max(0, x - 8) : x + 8].mean(-1).T  # [H, T]: a column through the motion
    horizontal = grey[:, max(0, y - 8) : y + 8, :].mean(1).T  # [W, T]: a row through it
    strips = [_kymograph(k, fps, 1500, px=6) for k in (vertical, horizontal)]
    return grid, np.concatenate(strips)


def _kymograph(slice_: np.ndarray, fps: float, width: int, px: int = 3) -> np.ndarray:
    """``[S, T]`` grey values -> rows of ``width`` pixels, ``px`` pixels a frame, a tick every 5 frames."""
    per_row = width // px
    rows = []
    for start in range(0, slice_.shape[1], per_row):
        part = slice_[:, start : start + per_row]
        img = cv2.resize(part.clip(0, 255).astype(np.uint8), (part.shape[1] * px, 120), interpolation=cv2.INTER_NEAREST)
        img = np.repeat(img[:, :, None], 3, -1)
        canvas = np.full((140, width, 3), 255, np.uint8)
        canvas[20:, : img.shape[1]] = img
        for i in range(0, part.shape[1], 5):
            cv2.line(canvas, (i * px, 14), (i * px, 19 if (start + i) % 25 else 8), (255, 0, 0), 1)
            if (start + i) % 25 == 0:
                cv2.putText(canvas, str(start + i), (i * px + 2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 0, 0), 1)
        rows.append(canvas)
    return np.concatenate(rows)


def _resolve(clip: str) -> Path:
    """A clip named on the command line: a file where one is, else a path under UCF-101/."""
    path = Path(clip)
    return path if path.is_file() else common.UCF_ROOT / "UCF-101" / clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "clips", nargs="+", help="clips: a path to any file, or one under UCF-101/ (JumpRope/v_JumpRope_g10_c01.avi)"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rate", type=float, default=12.5, help="frames a second shown")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for rel in args.clips:
        images = sheet(_resolve(rel), args.rate)
        for suffix, image in zip(("", "_k"), images):
            dest = args.out / f"{Path(rel).stem}{suffix}.png"
            cv2.imwrite(str(dest), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            print(dest)


if __name__ == "__main__":
    main()
