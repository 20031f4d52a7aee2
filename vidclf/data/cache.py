"""Disk caches of decoded frames and of frozen-backbone features, so expensive work happens once.

Each entry is one ``.npy`` file (read back memory-mapped) plus a ``.json`` with the key it was made from.
A key holds the clip's content (its size and a hash of its first and last MiB, not its path or modification time,
so a data set copied or moved elsewhere still hits) and every setting the array depends on; the file name is a
hash of the key, so a changed clip or setting simply misses and is computed again.
Entries are written to a temporary name and renamed, so several processes (DataLoader workers, torchrun
ranks) can fill one cache without reading half-written files. No pickles: a cache is data only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import logging
import tempfile
from pathlib import Path

import numpy as np

from vidclf.sampling import paired, uniform_indices
from vidclf.video import load_clip

log = logging.getLogger(__name__)

# Bump when the decoding or sampling rule changes, so old entries stop matching.
CACHE_VERSION = 2
_HASHED = 1 << 20  # bytes read from each end of a clip for its content key


def clip_key(path: str | os.PathLike, **settings) -> dict:
    """What identifies a clip's derived data: the file's content as it is now, and the settings."""
    p = Path(path).resolve()
    st = p.stat()
    return {
        "version": CACHE_VERSION,
        "size": st.st_size,
        "content": _content(str(p), st.st_size, st.st_mtime_ns),
        **settings,
    }


@functools.lru_cache(maxsize=65536)
def _content(path: str, size: int, mtime_ns: int) -> str:
    """A hash of the file's first and last MiB (the whole of a small clip): a video's header and index sit
    there, so two different clips of one size differ in it. Remembered per path, size and time, so an
    epoch over a data set reads each file once."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        h.update(f.read(_HASHED))
        if size > 2 * _HASHED:
            f.seek(size - _HASHED)
        h.update(f.read(_HASHED))
    return h.hexdigest()


class NpyStore:
    """A folder of arrays addressed by JSON-able keys."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _entry(self, key: dict) -> Path:
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest[:2] / f"{digest}.npy"

    def path(self, key: dict) -> Path:
        """Where the array of ``key`` is (or would be) stored."""
        return self._entry(key)

    def load(
        self, key: dict, shape: tuple[int, ...] | None = None, dtype=None, *, mmap: bool = True
    ) -> np.ndarray | None:
        """The stored array (memory-mapped unless ``mmap=False``), or None if absent, damaged or not of
        ``shape``/``dtype``. A damaged entry is said in the log (it is computed again and overwritten)."""
        entry = self._entry(key)
        if entry.exists():
            try:
                arr = np.load(entry, mmap_mode="r" if mmap else None, allow_pickle=False)
                if (shape is None or arr.shape == shape) and (dtype is None or arr.dtype == dtype):
                    self.hits += 1
                    return arr
                log.warning(
                    "cache entry %s holds %s %s, not %s %s: computing it again",
                    entry,
                    arr.shape,
                    arr.dtype,
                    shape,
                    dtype,
                )
            except (ValueError, OSError) as e:
                log.warning("cache entry %s cannot be read (%s: %s): computing it again", entry, type(e).__name__, e)
        self.misses += 1
        return None

    def save(self, key: dict, array: np.ndarray) -> None:
        entry = self._entry(key)
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(tmp, entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entry.with_suffix(".json").write_text(json.dumps(key, indent=1))


class FrameCache:
    """Uniformly sampled, resized uint8 frames ``[T, H, W, 3]`` of clips, stored once per (clip, settings)."""

    def __init__(self, root: str | os.PathLike):
        self.store = NpyStore(Path(root) / "frames")

    @property
    def hits(self) -> int:
        return self.store.hits

    @property
    def misses(self) -> int:
        return self.store.misses

    def frames(self, path: str | os.PathLike, num_frames: int, img_size: int, pair_gap: int = 0) -> np.ndarray:
        """``[T, H, W, 3]``, or with ``pair_gap`` (frames of this clip) the frame pairs ``[2T, H, W, 3]`` of a
        motion input."""
        key = clip_key(path, kind="frames", sampling="uniform", num_frames=num_frames, img_size=img_size)
        if pair_gap:  # plain frames keep the key they always had, so old caches still hit
            key["pair_gap"] = pair_gap
        count = 2 * num_frames if pair_gap else num_frames
        arr = self.store.load(key, (count, img_size, img_size, 3), np.uint8)
        if arr is None:
            arr = load_clip(path, num_frames, (img_size, img_size), sampler=paired(uniform_indices, pair_gap)).frames
            self.store.save(key, arr)
        return arr
