"""Draw what the pose stream saw: its skeleton on the frames shown to a person."""

from __future__ import annotations

import cv2
import numpy as np

from vidclf.models.pose import SKELETON_EDGES


def draw_skeleton(frame: np.ndarray, landmarks: np.ndarray, *, min_visibility: float = 0.3) -> np.ndarray:
    """A copy of uint8 RGB ``frame [H, W, 3]`` with ``landmarks [33, 4]`` (units of the longer side, NaN where
    no person was found) drawn on it: bones in green, joints in white; hidden joints are left out."""
    out = np.ascontiguousarray(frame).copy()
    if np.isnan(landmarks[:, :2]).any():
        return out
    side = max(frame.shape[:2])
    width = max(1, round(side / 160))
    pts = [(int(round(x * side)), int(round(y * side))) for x, y in landmarks[:, :2]]
    seen = landmarks[:, 3] >= min_visibility
    for a, b in SKELETON_EDGES:
        if seen[a] and seen[b]:
            cv2.line(out, pts[a], pts[b], (40, 220, 90), width + 1, cv2.LINE_AA)
    for i in np.flatnonzero(seen[11:]) + 11:
        cv2.circle(out, pts[i], width + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out


def skeleton_frames(frames: np.ndarray, landmarks: np.ndarray | None) -> list[np.ndarray]:
    """Each frame ``[T, H, W, 3]`` with its skeleton from ``landmarks [T, 33, 4]`` (frames as they are if None)."""
    if landmarks is None:
        return list(frames)
    return [draw_skeleton(f, lm) for f, lm in zip(frames, landmarks)]
