"""Static PNG charts drawn with OpenCV (already a dependency), for training runs and evaluation reports.

The app uses interactive plotly figures (``vidclf.plots``); these are for files a run leaves behind.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]  # RGB


def _text(img: np.ndarray, s: str, xy: tuple[int, int], *, scale: float = 0.4, color=(0, 0, 0)) -> None:
    cv2.putText(img, s, xy, _FONT, scale, color, 1, cv2.LINE_AA)


def _save(path: str | Path, rgb: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def _panel(series: dict[str, Sequence[float | None]], title: str, w: int, h: int) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 50, 15, 25, 30
    _text(img, title, (left, 16), scale=0.5)
    values = [v for s in series.values() for v in s if v is not None]
    if not values:
        return img
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(s) for s in series.values())
    x_of = lambda i: left + (w - left - right) * (i / max(n - 1, 1))  # noqa: E731
    y_of = lambda v: top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))  # noqa: E731
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (200, 200, 200), 1)
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        _text(img, f"{v:.2f}", (4, int(y_of(v)) + 4), scale=0.35)
    _text(img, "epoch", (w // 2 - 15, h - 8), scale=0.4)
    _text(img, "1", (left - 3, h - bottom + 14), scale=0.35)
    _text(img, f"{n}", (w - right - 10, h - bottom + 14), scale=0.35)
    for k, (name, s) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        pts = [(int(x_of(i)), int(y_of(v))) for i, v in enumerate(s) if v is not None]
        if len(pts) > 1:
            cv2.polylines(
                img, [np.array(pts, np.int32)], isClosed=False, color=color, thickness=2, lineType=cv2.LINE_AA
            )
        for p in pts:
            cv2.circle(img, p, 2, color, -1)
        _text(img, name, (left + 10 + 110 * k, top + 15), scale=0.4, color=color)
    return img


def save_curves_png(history: Sequence[dict], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train and validation, side by side."""
    get = lambda key: [h.get(key) for h in history]  # noqa: E731
    loss = _panel({"train loss": get("train_loss"), "val loss": get("val_loss")}, "loss", 420, 300)
    acc = _panel({"train acc": get("train_acc"), "val acc": get("val_acc")}, "accuracy", 420, 300)
    return _save(path, np.concatenate([loss, acc], axis=1))


def save_confusion_png(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path) -> Path:
    """Confusion matrix, rows = true class, columns = predicted; cells shaded by row share, counts written."""
    m = np.asarray(confusion, dtype=np.float64)
    k = len(classes)
    cell = max(18, min(48, 900 // max(k, 1)))
    label_w = 10 + 7 * max(len(c) for c in classes)
    top = 30
    img = np.full((top + k * cell + label_w, label_w + k * cell + 10, 3), 255, np.uint8)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    for i in range(k):
        _text(img, classes[i], (4, top + i * cell + cell // 2 + 4), scale=0.35)
        for j in range(k):
            shade = int(255 - 200 * share[i, j])
            x0, y0 = label_w + j * cell, top + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (shade, shade, 255), -1)
            if m[i, j] and cell >= 22:
                _text(
                    img,
                    str(int(m[i, j])),
                    (x0 + 3, y0 + cell // 2 + 4),
                    scale=0.33,
                    color=(0, 0, 0) if shade > 120 else (255, 255, 255),
                )
    for j in range(k):  # column labels, written vertically
        label = np.full((cell, label_w, 3), 255, np.uint8)
        _text(label, classes[j], (2, cell // 2 + 4), scale=0.35)
        rot = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
        y0 = top + k * cell
        img[y0 : y0 + label_w, label_w + j * cell : label_w + (j + 1) * cell] = rot
    _text(img, "true class (rows) vs predicted (columns)", (4, 18), scale=0.45)
    return _save(path, img)
