import os
import shutil

import numpy as np

from vidclf.data.cache import FrameCache
from vidclf.video import write_video


def _clip(path, level):
    return write_video(path, np.full((12, 32, 32, 3), level, np.uint8))


def test_frame_cache_hits_and_invalidates(tmp_path):
    clip = _clip(tmp_path / "a.avi", 50)
    cache = FrameCache(tmp_path / "cache")
    first = np.array(cache.frames(clip, 4, 32))
    assert (cache.hits, cache.misses) == (0, 1)
    again = cache.frames(clip, 4, 32)
    assert (cache.hits, cache.misses) == (1, 1) and np.array_equal(first, again)
    assert isinstance(again, np.memmap)  # read back memory-mapped, not decoded

    cache.frames(clip, 6, 32)  # another setting: a separate entry
    cache.frames(clip, 4, 48)
    assert cache.misses == 3

    _clip(clip, 200)  # the clip changes on disk
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = cache.frames(clip, 4, 32)
    assert cache.misses == 4 and changed.mean() > first.mean() + 100

    # a copy of the clip elsewhere, with another modification time, is the same content: it hits
    copy = tmp_path / "moved" / "b.avi"
    copy.parent.mkdir()
    shutil.copyfile(clip, copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))
    assert np.array_equal(cache.frames(copy, 4, 32), changed) and cache.misses == 4

    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert all(p.suffix in (".npy", ".json") for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_damaged_entry_is_recomputed(tmp_path):
    clip = _clip(tmp_path / "a.avi", 80)
    cache = FrameCache(tmp_path / "cache")
    cache.frames(clip, 4, 32)
    entry = next((tmp_path / "cache").rglob("*.npy"))
    entry.write_bytes(b"garbage")
    assert cache.frames(clip, 4, 32).shape == (4, 32, 32, 3)
    assert cache.misses == 2
