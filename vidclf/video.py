"""Decode video files with OpenCV: probe a clip's length and read the frames at given indices.

Only the frames that are kept become images: the others are ``grab()``-ed past. ``grab()`` still decodes
(a codec must, to reach the next frame) but skips ``read()``'s conversion to BGR and its copy: about half of
``read()``'s time on UCF-101's 320x240 XviD clips (``python -m bench.decode``). Reading stops after the last
wanted frame, and only kept frames are resized. Reading is sequential because
seeking (``CAP_PROP_POS_FRAMES``) is several times slower on clips with few keyframes, such as UCF-101's XviD
AVIs, and can land on the wrong frame.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from vidclf.errors import VideoError
from vidclf.sampling import uniform_indices

# OpenCV's own warnings ("Unable to read codec parameters...") would duplicate the VideoError we raise.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
# OpenCV's own thread pool off: its calls here are small (a frame's conversion and resizes) and run beside
# other busy threads (the decoder's, the workout engine's, BlazePose's); split across the pool they cost more
# CPU in hand-offs and waits than they save, and give the same pixels (docs/benchmarks.md, "Phone-sized clips,
# third round"). FFmpeg's decoding threads are its own, not this pool's.
cv2.setNumThreads(1)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".gif")

# Headers that claim more than this are treated as lies (WebM from browsers reports huge negative counts).
_MAX_PLAUSIBLE_FRAMES = 10_000_000


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    """What is known of a clip before its frames are read."""

    num_frames: int
    fps: float
    width: int
    height: int
    counted: bool  # True when num_frames was counted by reading, not taken from the header

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Clip:
    """Frames sampled from one video: ``frames`` is uint8 ``[T, H, W, 3]`` RGB, ``indices`` their positions."""

    frames: np.ndarray
    indices: list[int]
    info: VideoInfo


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    p = Path(path)
    if not p.exists():
        raise VideoError(f"video file not found: {p}")
    if p.is_dir():
        raise VideoError(f"expected a video file but got a folder: {p}")
    if p.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"cannot open {p.name} as a video: not a video file, or a codec OpenCV/FFmpeg lacks")
    return cap


def _count_by_reading(cap: cv2.VideoCapture) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of a clip. Falls back to counting frames when the header is implausible."""
    cap = _open(path)
    try:
        header = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        counted = not (1 <= header <= _MAX_PLAUSIBLE_FRAMES)
        num_frames = _count_by_reading(cap) if counted else int(header)
    finally:
        cap.release()
    if num_frames < 1:
        raise VideoError(f"{Path(path).name} has no readable video frames (empty, corrupt, or audio only)")
    fps = fps if 0 < fps < 1000 else 25.0  # the rule of clip_fps too
    return VideoInfo(num_frames=num_frames, fps=float(fps), width=width, height=height, counted=counted)


def _to_rgb(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    # resized before the colour conversion: a frame read small costs a small conversion
    if size is not None:
        frame = resize_frame(frame, size)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` at ``size=(H, W)``: area averaging when it shrinks both sides, bilinear otherwise. The one
    resize rule of decoding, training and prediction."""
    if frame.shape[:2] == size:
        return frame
    h, w = size
    shrinking = h < frame.shape[0] and w < frame.shape[1]
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def shrink_quick(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` shrunk to ``size=(H, W)`` by area averaging, cheaply where the factor is large and not whole:
    such a frame is first halved (2x2 means: OpenCV's fast path), then averaged exactly. On a 1080x1920 frame
    to 48x64 that is half the time, within one grey level of :func:`resize_frame`; a whole factor (720p to
    48x64) or a small frame is :func:`resize_frame` itself."""
    h, w = size
    fh, fw = frame.shape[:2]
    if (fh % h == 0 and fw % w == 0) or fh < 4 * h or fw < 4 * w:
        return resize_frame(frame, size)
    even = frame[: fh - fh % 2, : fw - fw % 2]
    half = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return resize_frame(half, size)


class StreamEnded(VideoError):
    """The clip ended after ``frames_read`` frames, before a frame that was asked for: its header over-states
    its length (truncated or re-muxed files, browser recordings)."""

    def __init__(self, name: str, frames_read: int):
        super().__init__(f"{name} ended after {frames_read} frames, sooner than its header says")
        self.frames_read = frames_read


def _read_indices(path: str | os.PathLike, indices: Sequence[int], size: tuple[int, int] | None) -> np.ndarray:
    wanted = sorted(set(indices))
    cap = _open(path)
    got: dict[int, np.ndarray] = {}
    try:
        pos = 0
        for target in wanted:
            while pos < target:
                if not cap.grab():
                    raise StreamEnded(Path(path).name, pos)
                pos += 1
            ok, frame = cap.read()
            if not ok or frame is None:
                raise StreamEnded(Path(path).name, pos)
            size = size or frame.shape[:2]  # later frames take the first's size: one shape per clip
            got[target] = _to_rgb(frame, size)
            pos += 1
    finally:
        cap.release()
    return np.stack([got[i] for i in indices])


def read_frames(path: str | os.PathLike, indices: Sequence[int], size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames at ``indices`` (any order, repeats allowed) as uint8 RGB ``[T, H, W, 3]``, resized to ``size=(H, W)``.

    Raises :class:`VideoError` if the clip ends before the largest index.
    """
    if len(indices) == 0:
        raise ValueError("no frame indices given")
    try:
        return _read_indices(path, indices, size)
    except StreamEnded as e:
        raise VideoError(f"{Path(path).name} ended after {e.frames_read} frames, before frame {max(indices)}") from None


def read_all_frames(
    path: str | os.PathLike, size: tuple[int, int] | None = None, max_frames: int = 100_000
) -> np.ndarray:
    """Every frame of a clip (up to ``max_frames``) as uint8 RGB ``[N, H, W, 3]``, read until the stream ends:
    a header that over-states the length costs nothing here."""
    cap = _open(path)
    frames: list[np.ndarray] = []
    try:
        while len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            size = size or frame.shape[:2]  # later frames take the first's size: one shape per clip
            frames.append(_to_rgb(frame, size))
    finally:
        cap.release()
    if not frames:
        raise VideoError(f"{Path(path).name} has no decodable video frames (corrupt or truncated)")
    return np.stack(frames)


def decode_pass(
    path: str | os.PathLike,
    sizes: Mapping[int, tuple[int, int] | None],
    *,
    every_size: tuple[int, int],
    every_limit: int,
    every_max_bytes: int,
    each: Callable[[int, np.ndarray], None] | None = None,
    each_kept: Callable[[int, np.ndarray], None] | None = None,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """One sequential pass over a clip for everything a prediction reads: the frames at the indices of
    ``sizes``, each at its size (``(H, W)``, or None for the clip's own), and every frame of the first
    ``every_limit`` small (``every_size``, uint8 RGB ``[N, h, w, 3]``) for a per-frame signal, at most
    ``every_max_bytes`` of them: a header's frame rate (up to 999 fps) must not decide a request's memory.
    Frames wanted by neither are only ``grab()``-ed past, and reading stops after the last one wanted.

    Every frame kept at its own size takes the size of the clip's first frame: a stream whose resolution
    changes part-way still gives frames of one shape.

    ``each(i, frame)``, if given, sees every frame in order as decoded, in OpenCV's BGR order (uint8
    ``[H, W, 3]``: converting a phone's whole frame to RGB costs more than what is taken from it), and the
    pass reads to the clip's end: the workout engine rides on the same pass. ``each_kept(i, frame)``, if
    given, sees each kept frame (RGB, at its size) as soon as it is decoded.

    Raises :class:`StreamEnded` (with the clip's true length) if it ends before a wanted index.
    """
    every_limit = min(every_limit, every_max_bytes // (every_size[0] * every_size[1] * 3))
    cap = _open(path)
    kept: dict[int, np.ndarray] = {}
    every: list[np.ndarray] = []
    own: tuple[int, int] | None = None
    last = max(sizes, default=-1)
    pos = 0
    try:
        while pos <= last or pos < every_limit or each is not None:
            if pos in sizes or pos < every_limit or each is not None:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                own = own or frame.shape[:2]
                if each is not None:
                    each(pos, frame)
                if pos in sizes:
                    kept[pos] = _to_rgb(frame, sizes[pos] or own)
                    if each_kept is not None:
                        each_kept(pos, kept[pos])
                if pos < every_limit:
                    every.append(_to_rgb(_thinned(frame, every_size), every_size))
            elif not cap.grab():
                break
            pos += 1
    finally:
        cap.release()
    if pos <= last:
        raise StreamEnded(Path(path).name, pos)
    if not every:
        return kept, np.zeros((0, *every_size, 3), np.uint8)
    return kept, np.stack(every)


def iter_frames(path: str | os.PathLike, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Every frame of a clip in order, uint8 RGB ``[H, W, 3]`` (``size``: ``(H, W)``, or None for as decoded),
    one at a time: memory does not grow with the clip's length."""
    cap = _open(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield _to_rgb(frame, size)
    finally:
        cap.release()


def _thinned(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Every s-th pixel of a frame far larger than ``size``, keeping at least 4x ``size``: averaging a 1080p
    frame down to 48 x 64 costs more than decoding it, and the small signal does not need every pixel."""
    step = max(1, min(frame.shape[0] // (4 * size[0]), frame.shape[1] // (4 * size[1])))
    return frame[::step, ::step] if step > 1 else frame


Sampler = Callable[[int, int], list[int]]


def load_clip(
    path: str | os.PathLike,
    num_frames: int,
    size: tuple[int, int] | None,
    sampler: Sampler = uniform_indices,
    max_side: int | None = None,
    info: VideoInfo | None = None,
) -> Clip:
    """Sample ``num_frames`` frames from the whole clip and decode only those.

    ``size=(H, W)`` resizes every frame; with ``size=None``, ``max_side`` shrinks frames whose longer side
    is larger, keeping their aspect ratio (a phone's 1080x1920 clip need not be held at full size).

    If the header over-states the length (truncated or re-muxed files), the clip is counted by reading and
    sampled again, so a lying header costs time but never a wrong or failed sample.
    """
    info = info or probe(path)  # a caller that probed already passes what it found: one probe per request
    if size is None and max_side is not None:
        size = fit_within(info, max_side)
    indices = sampler(info.num_frames, num_frames)
    try:
        frames = _read_indices(path, indices, size)
    except StreamEnded as e:
        if e.frames_read < 1:
            raise VideoError(f"{Path(path).name} has no decodable video frames (corrupt or truncated)") from None
        true_length = e.frames_read if info.counted else _recount(path)
        info = dataclasses.replace(info, num_frames=true_length, counted=True)
        indices = sampler(info.num_frames, num_frames)
        try:
            frames = _read_indices(path, indices, size)
        except StreamEnded as e2:
            raise VideoError(f"{Path(path).name} could not be read consistently ({e2.frames_read} frames)") from None
    return Clip(frames=frames, indices=list(indices), info=info)


def clip_fps(path: str | os.PathLike) -> float:
    """The frame rate a clip's header states (25 where it states none that is plausible), read once per file
    version in a process: a motion input's pairs are a time apart, so every epoch needs it, cached or not."""
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        raise VideoError(f"video file not found: {p}") from None
    return _header_fps(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=65536)
def _header_fps(path: str, size: int, mtime_ns: int) -> float:
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if 0 < fps < 1000 else 25.0


def fit_within(info: VideoInfo, max_side: int) -> tuple[int, int] | None:
    """``(H, W)`` of the clip's frames shrunk so that the longer side is at most ``max_side``; None if they fit."""
    longest = max(info.width, info.height)
    if longest <= max_side or info.width < 1 or info.height < 1:
        return None
    scale = max_side / longest
    return max(1, round(info.height * scale)), max(1, round(info.width * scale))


def _recount(path: str | os.PathLike) -> int:
    cap = _open(path)
    try:
        return _count_by_reading(cap)
    finally:
        cap.release()


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write uint8 RGB ``[T, H, W, 3]`` frames to ``path``; the codec follows the extension (.avi XviD, .mp4 mp4v)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = {".avi": "XVID", ".mp4": "mp4v", ".mkv": "XVID"}.get(path.suffix.lower())
    if fourcc is None:
        raise VideoError(f"cannot write {path.suffix} files; use .avi or .mp4")
    t, h, w, _ = frames.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        raise VideoError(f"OpenCV cannot write {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path
