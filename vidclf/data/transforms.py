"""Clip transforms: uint8 frames ``[T, H, W, 3]`` -> normalised float ``[T, C, H, W]``.

Training augmentation draws one random crop, scale and flip per *clip* and applies it to every frame:
different crops per frame would add a jitter that looks like motion.

With ``diff=True`` the frames come in pairs ``(a, b)`` (``[2T, H, W, 3]``, see
:func:`vidclf.sampling.paired_indices`) and each output frame is ``b - a`` of the normalised frames: TSN's
"RGB difference". What stands still (the room, the clothes, the face) cancels; what moves remains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``[T, H, W, 3]`` -> float ``[T, 3, H, W]`` in [0, 1]."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames [T, H, W, 3], got {tuple(frames.shape)}")
    # np.array copies: cached frames are read-only memory maps, which torch must not wrap.
    return torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass(frozen=True)
class ClipTransform:
    """Normalise a clip, with optional clip-consistent random resized crop and horizontal flip.

    ``scale`` is the range of the crop's area as a share of the frame; the crop is resized back to the
    frame's size, so the output has the input's ``H, W``.
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    augment: bool = False
    scale: tuple[float, float] = (0.6, 1.0)
    flip_p: float = 0.5
    diff: bool = False

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` (with ``diff``: pairs ``[2T, H, W, 3]``) -> float ``[T, 3, H, W]``."""
        if self.diff and len(frames) % 2:
            raise ValueError(f"diff input needs frame pairs, got {len(frames)} frames")
        x = frames_to_tensor(frames)
        if self.augment:
            x = self._augment(x, rng if rng is not None else np.random.default_rng())
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        x = (x - mean) / std
        return x[1::2] - x[0::2] if self.diff else x

    def _augment(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        _, _, h, w = x.shape
        area = rng.uniform(*self.scale)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(round(min(h, np.sqrt(area * h * w / aspect))))
        cw = int(round(min(w, np.sqrt(area * h * w * aspect))))
        top = int(rng.integers(0, h - ch + 1))
        left = int(rng.integers(0, w - cw + 1))
        x = x[:, :, top : top + ch, left : left + cw]
        if (ch, cw) != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        if rng.random() < self.flip_p:
            x = x.flip(-1)
        return x
