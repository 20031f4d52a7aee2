"""A disk cache of decoded, sampled, resized clips, so that later epochs and later runs skip decoding.

Each entry is one ``.npy`` file of uint8 ``[T, H, W, 3]`` (read back memory-mapped) plus a ``.json`` with the
key it was made from. The key holds the clip's absolute path, size and modification time and the sampling
settings; the file name is a hash of the key, so a changed clip or setting simply misses and is decoded
again. Entries are written to a temporary name and renamed, so several processes (DataLoader workers,
torchrun ranks) can fill one cache without reading half-written files. No pickles: a cache is data only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from vidclf.video import load_clip

# Bump when the decoding or sampling rule changes, so old entries stop matching.
CACHE_VERSION = 1


class FrameCache:
    """Uniformly sampled frames of clips, stored once per (clip, settings)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(path: str | os.PathLike, num_frames: int, img_size: int) -> dict:
        p = Path(path).resolve()
        st = p.stat()
        return {
            "version": CACHE_VERSION,
            "path": str(p),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sampling": "uniform",
            "num_frames": num_frames,
            "img_size": img_size,
        }

    def _entry(self, key: dict) -> Path:
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest[:2] / f"{digest}.npy"

    def frames(self, path: str | os.PathLike, num_frames: int, img_size: int) -> np.ndarray:
        """uint8 ``[T, H, W, 3]`` for ``path``: from the cache, or decoded and stored."""
        key = self.key(path, num_frames, img_size)
        entry = self._entry(key)
        if entry.exists():
            try:
                arr = np.load(entry, mmap_mode="r", allow_pickle=False)
                if arr.shape == (num_frames, img_size, img_size, 3) and arr.dtype == np.uint8:
                    self.hits += 1
                    return arr
            except (ValueError, OSError):
                pass  # a damaged entry is decoded again and overwritten
        self.misses += 1
        frames = load_clip(path, num_frames, (img_size, img_size)).frames
        self._write(entry, key, frames)
        return frames

    def _write(self, entry: Path, key: dict, frames: np.ndarray) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, frames, allow_pickle=False)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entry.with_suffix(".json").write_text(json.dumps(key, indent=1))
