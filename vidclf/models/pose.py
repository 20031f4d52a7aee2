"""The pose stream's frame features: BlazePose landmarks, normalised so that the camera does not matter.

MediaPipe's BlazePose (a CNN, run frozen, on CPU) finds one person per frame and gives 33 landmarks
``(x, y, z, visibility)``. :class:`PoseEstimator` returns them as raw landmarks ``[T, 33, 4]`` in units of
the frame's longer side (so a portrait and a landscape frame keep a person's true proportions), with NaN
rows where no person was found: a missing frame is marked, never faked.

:func:`normalize_landmarks` turns raw landmarks into the features the LSTM reads, ``[T, POSE_FEATURE_DIM]``:
joint positions relative to the hip centre of the frame, divided by the clip's median torso length (so that
where the person stands and how large they appear cancel), the hip centre's movement over the clip (a jump,
a walk), the torso's size relative to the clip's (a lean towards the camera), visibility, a person-found
flag, the cosines of the elbow, shoulder, hip and knee angles, and the torso's direction.
:func:`augment_landmarks` works on raw landmarks: mirror (with left and right swapped), scale, rotation,
speed and temporal jitter, dropped frames and joints.

MediaPipe is imported only when an estimator is built: training and testing the stream on landmarks the
synthetic set writes needs no pose estimator.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

NUM_LANDMARKS = 33
# BlazePose's landmark order: 0 nose, 1-3 left eye, 4-6 right eye, 7/8 ears, 9/10 mouth, then left/right
# pairs: 11/12 shoulders, 13/14 elbows, 15/16 wrists, 17-22 hand points, 23/24 hips, 25/26 knees,
# 27/28 ankles, 29/30 heels, 31/32 toes.
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
MIRROR_ORDER = (0, 4, 5, 6, 1, 2, 3, 8, 7, 10, 9, *[j + (1 if j % 2 else -1) for j in range(11, 33)])
# The lines between landmarks that draw a skeleton.
SKELETON_EDGES = (
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (25, 27),
    (27, 31),
    (24, 26),
    (26, 28),
    (28, 32),
    (0, 11),
    (0, 12),
)
# The joint angles (at the middle landmark of each triple) that say what a limb is doing whatever the camera:
# elbows, shoulders, hips, knees.
ANGLES = (
    (11, 13, 15),
    (12, 14, 16),
    (13, 11, 23),
    (14, 12, 24),
    (11, 23, 25),
    (12, 24, 26),
    (23, 25, 27),
    (24, 26, 28),
)
# Per frame: 33 x (x, y) relative positions, 33 z, 33 visibilities, hip displacement (2), torso ratio, found,
# cosine of each joint angle, and the torso's direction (sin, cos; upright or upside down).
POSE_FEATURE_DIM = NUM_LANDMARKS * 4 + 4 + len(ANGLES) + 2


class PoseEstimator:
    """BlazePose (MediaPipe ``solutions.pose``, the full model bundled in the ``mediapipe==0.10.14`` wheel).

    Each frame is estimated on its own (``static_image_mode``): the frames a model samples are far apart,
    and a result must not depend on which frames came before. A MediaPipe graph is not safe to share between
    threads, so each call takes a graph of its own from a pool of idle ones (building one, ~0.35 s, only when
    every graph is busy): a server holds as many graphs as it ran calls at once, not one per thread it ever
    used. :meth:`close` closes them; a call after it builds afresh.
    """

    def __init__(self, min_detection_confidence: float = 0.5):
        self.min_detection_confidence = min_detection_confidence
        self._lock = threading.Lock()
        self._idle: list = []
        self.graphs_built = 0

    def _build(self):
        graph = _mediapipe_pose(static_image_mode=True, min_detection_confidence=self.min_detection_confidence)
        with _quiet_stderr():
            graph.process(np.zeros((64, 64, 3), np.uint8))  # the first call loads TFLite's delegates, loudly
        with self._lock:
            self.graphs_built += 1
        return graph

    @contextlib.contextmanager
    def _graph(self):
        with self._lock:
            graph = self._idle.pop() if self._idle else None
        if graph is None:
            graph = self._build()
        try:
            yield graph
        finally:
            with self._lock:
                self._idle.append(graph)

    def close(self) -> None:
        """Close the idle graphs (a call still running keeps its own, returned to the pool when it ends)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for graph in idle:
            graph.close()

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 RGB frames ``[T, H, W, 3]`` -> raw landmarks float32 ``[T, 33, 4]`` (NaN where no person)."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames [T, H, W, 3], got {tuple(frames.shape)}")
        out = np.empty((len(frames), NUM_LANDMARKS, 4), np.float32)
        with self._graph() as graph:
            for i, frame in enumerate(frames):
                out[i] = _landmarks_of(graph, frame)
        return out


def _mediapipe_pose(**settings):
    """A MediaPipe ``solutions.pose.Pose`` graph (BlazePose full, bundled with ``mediapipe==0.10.14``) with
    ``settings`` (``static_image_mode``, confidences), built with its start-up chatter silenced."""
    # MediaPipe's C++ logs a few lines of start-up chatter per graph: nothing a user can act on.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
    try:
        from mediapipe.python.solutions import pose as mp_pose
    except ImportError:
        from vidclf.errors import BackboneWeightsError

        raise BackboneWeightsError("the pose stream needs MediaPipe: pip install mediapipe==0.10.14") from None
    with _quiet_stderr():  # TFLite writes its start-up lines straight to file descriptor 2
        return mp_pose.Pose(model_complexity=1, enable_segmentation=False, **settings)


def _landmarks_of(graph, frame: np.ndarray) -> np.ndarray:
    """One uint8 RGB frame ``[H, W, 3]`` through a MediaPipe pose graph -> raw landmarks float32 ``[33, 4]`` in
    units of the frame's longer side (NaN: no person)."""
    out = np.full((NUM_LANDMARKS, 4), np.nan, np.float32)
    found = graph.process(np.ascontiguousarray(frame)).pose_landmarks
    if found is None:
        return out
    h, w = frame.shape[:2]
    side = float(max(h, w))
    lm = np.array([(p.x, p.y, p.z, p.visibility) for p in found.landmark], np.float32)
    # MediaPipe's x is a share of the width, y of the height, z on the scale of x.
    out[:, 0] = lm[:, 0] * w / side
    out[:, 1] = lm[:, 1] * h / side
    out[:, 2] = lm[:, 2] * w / side
    out[:, 3] = lm[:, 3]
    return out


# File descriptor 2 belongs to the whole process: two threads that swap it at once can each restore the
# other's /dev/null, silencing the server's log for good. One swap at a time.
_STDERR_LOCK = threading.Lock()


class PoseTracker:
    """BlazePose in its tracking mode for one stream of frames in time order (a clip or a live session).

    ``static_image_mode=False``: the detector runs on the first frame and whenever the person is lost; in
    between, the landmarks of one frame seed the next (17.5 ms a frame at 320 px against 29.7 ms for
    :class:`PoseEstimator`). So one tracker per stream, its frames in time order and at one resolution, and
    :meth:`close` when the stream ends (a context manager). Not safe to share between threads.
    """

    def __init__(
        self,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        *,
        pool: PoseTrackers | None = None,
    ):
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self._pool = pool  # where the graph comes from and goes back to (None: built here, closed here)
        self._graph: Any = None
        self._size: tuple[int, int] | None = None

    def _open(self):
        if self._pool is not None:
            return self._pool.take()
        return _tracking_graph(self.min_detection_confidence, self.min_tracking_confidence)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """One uint8 RGB frame ``[H, W, 3]`` (the next of the stream) -> raw landmarks float32 ``[33, 4]`` in
        units of the frame's longer side, NaN where no person was found."""
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"expected a frame [H, W, 3], got {tuple(frame.shape)}")
        h, w, _ = frame.shape
        if self._size is not None and self._size != (h, w):
            raise ValueError(f"a tracker's frames have one size: {self._size}, then {(h, w)}")
        self._size = (h, w)
        if self._graph is None:
            self._graph = self._open()
        return _landmarks_of(self._graph, frame)

    def close(self) -> None:
        """Release the MediaPipe graph (its threads and memory, or back to its pool); the tracker can start a
        new stream after."""
        graph, self._graph, self._size = self._graph, None, None
        if graph is None:
            return
        if self._pool is not None:
            self._pool.give_back(graph)
        else:
            graph.close()

    def __enter__(self) -> PoseTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tracking_graph(min_detection_confidence: float, min_tracking_confidence: float):
    return _mediapipe_pose(
        static_image_mode=False,
        smooth_landmarks=True,
        min_detection_confidence=min_detection_confidence,
        min_tracking_confidence=min_tracking_confidence,
    )


class PoseTrackers:
    """Started BlazePose tracking graphs, handed from one stream to the next (a server's clips and live
    sessions), so that no stream waits for a graph to start.

    A graph's first frame costs ~0.35 s (its calculators open and its models load), after a ``reset()`` too.
    So a stream's graph, once its :class:`PoseTracker` is closed, is reset (its tracking state and landmark
    smoothing are gone: the next stream starts from a detection, exactly as on a new graph) and given one
    blank frame, on a background thread, before the next stream takes it. At most ``max_idle`` wait; a
    stream that finds none builds its own. :meth:`close` closes the idle ones and stops taking graphs back.
    """

    def __init__(self, max_idle: int = 4, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        self.max_idle = max_idle
        self._confidences = (min_detection_confidence, min_tracking_confidence)
        self._lock = threading.Lock()
        self._idle: list = []
        self._closed = False
        self._recycling: list[threading.Thread] = []
        self.graphs_built = 0

    def tracker(self) -> PoseTracker:
        """A tracker for one stream whose graph comes from this pool (and goes back when it is closed)."""
        return PoseTracker(*self._confidences, pool=self)

    def take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.graphs_built += 1
        return _tracking_graph(*self._confidences)

    def give_back(self, graph, *, wait: bool = False) -> None:
        """Reset ``graph`` and prime it, then keep it for the next stream (on a thread of its own unless
        ``wait``)."""
        if wait:
            self._recycle(graph)
            return
        thread = threading.Thread(target=self._recycle, args=(graph,), name="vidclf-tracker-reset", daemon=True)
        with self._lock:
            self._recycling = [t for t in self._recycling if t.is_alive()] + [thread]
        thread.start()

    def settle(self) -> None:
        """Wait until the graphs given back so far are ready for the next stream."""
        with self._lock:
            pending = list(self._recycling)
        for thread in pending:
            thread.join()

    def warm(self, n: int = 1) -> None:
        """Start and prime ``n`` graphs now (a server's start), so that the first streams find them ready."""
        for _ in range(n):
            with self._lock:
                self.graphs_built += 1
            self.give_back(_tracking_graph(*self._confidences), wait=True)

    def _recycle(self, graph) -> None:
        try:
            graph.reset()
            # opens the calculators now: the next stream's first frame costs a frame
            graph.process(np.zeros((64, 64, 3), np.uint8))
        except Exception:
            graph.close()
            return
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(graph)
                return
        graph.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for graph in idle:
            graph.close()


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the duration (C++ libraries write there, past Python). Other
    threads' writes to stderr in that time (a graph's build, ~0.35 s) are lost; the descriptor is always
    restored."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def found_mask(raw: np.ndarray) -> np.ndarray:
    """Raw landmarks ``[..., 33, 4]`` (a clip ``[T, 33, 4]``, clips ``[N, T, 33, 4]``) -> bool ``[...]``: the
    frames where a person was found (BlazePose gives every coordinate of a frame without one as NaN)."""
    return ~np.isnan(raw[..., :2]).any(axis=(-2, -1))


# The joints whose path shows a repetition: nose, shoulders, elbows, wrists, hips, knees, ankles.
COUNT_JOINTS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def landmark_signal(raw: np.ndarray, min_found: float = 0.5) -> np.ndarray | None:
    """Raw landmarks ``[T, 33, 4]`` -> float32 ``[T, 2 * len(COUNT_JOINTS)]``, a per-frame signal for counting
    repetitions (:mod:`vidclf.reps`): the joints' positions in the frame in the clip's median torso lengths.
    Not hip-centred: in a jump or a bounce the whole body is what moves. Frames without a person are filled
    in from the frames around them; None if a person is found in fewer than ``min_found`` of the frames."""
    t = raw.shape[0]
    found = found_mask(raw)
    if t == 0 or found.sum() < max(4, min_found * t):
        return None
    xy = raw[:, COUNT_JOINTS, :2].astype(np.float64)
    when = np.arange(t)
    for j in range(xy.shape[1]):
        for d in range(2):
            xy[:, j, d] = np.interp(when, when[found], xy[found, j, d])
    lm = raw[found].astype(np.float64)
    torso = np.linalg.norm(
        lm[:, [LEFT_SHOULDER, RIGHT_SHOULDER], :2].mean(1) - lm[:, [LEFT_HIP, RIGHT_HIP], :2].mean(1), axis=1
    )
    return (xy / max(float(np.median(torso)), 1e-3)).reshape(t, -1).astype(np.float32)


def normalize_landmarks(raw: np.ndarray) -> np.ndarray:
    """Raw landmarks ``[T, 33, 4]`` (NaN rows: no person) -> features float32 ``[T, POSE_FEATURE_DIM]``.

    Frames without a person are all zeros with the found flag 0. Joints are hip-centred per frame and
    divided by the clip's median torso length (shoulder centre to hip centre), so position and size in the
    frame cancel, but the hip centre's path over the clip is kept, relative to its mean and in torso
    lengths: a jumping jack moves the whole body, a wall push-up hardly does.
    """
    t = raw.shape[0]
    feats = np.zeros((t, POSE_FEATURE_DIM), np.float32)
    found = found_mask(raw)
    if not found.any():
        return feats
    lm = raw[found].astype(np.float64)
    hip = lm[:, [LEFT_HIP, RIGHT_HIP], :2].mean(1)
    shoulder = lm[:, [LEFT_SHOULDER, RIGHT_SHOULDER], :2].mean(1)
    torso = np.linalg.norm(shoulder - hip, axis=1)
    scale = max(float(np.median(torso)), 1e-3)
    n = NUM_LANDMARKS
    rel = (lm[:, :, :2] - hip[:, None, :]) / scale
    feats[found, : 2 * n] = rel.reshape(len(lm), -1)
    feats[found, 2 * n : 3 * n] = lm[:, :, 2] / scale
    feats[found, 3 * n : 4 * n] = lm[:, :, 3]
    feats[found, 4 * n : 4 * n + 2] = (hip - hip.mean(0)) / scale
    feats[found, 4 * n + 2] = torso / scale - 1.0
    feats[found, 4 * n + 3] = 1.0
    xy = lm[:, :, :2]
    for k, (a, b, c) in enumerate(ANGLES):
        u, v = xy[:, a] - xy[:, b], xy[:, c] - xy[:, b]
        denom = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
        feats[found, 4 * n + 4 + k] = np.where(denom > 1e-9, (u * v).sum(1) / np.maximum(denom, 1e-9), 0.0)
    up = (shoulder - hip) / np.maximum(torso, 1e-9)[:, None]
    feats[found, 4 * n + 4 + len(ANGLES)] = up[:, 0]
    feats[found, 4 * n + 5 + len(ANGLES)] = up[:, 1]
    return feats


def mirror_landmarks(raw: np.ndarray) -> np.ndarray:
    """The landmarks of the mirrored frames: x reflected about the clip's mean x, left and right swapped."""
    out = raw[:, list(MIRROR_ORDER)].copy()
    centre = np.nanmean(raw[:, :, 0]) if found_mask(raw).any() else 0.5
    out[:, :, 0] = 2 * centre - out[:, :, 0]
    return out


@dataclass(frozen=True, kw_only=True)
class ViewAugment:
    """Landmark augmentations that change the camera's view of the body (all off by default).

    ``yaw``: with p 0.5, turn the skeleton about the vertical axis through the clip's mean hip centre by an
    angle drawn from +-``yaw`` degrees, BlazePose's z as depth: a side view becomes an oblique or front one.
    ``squeeze``: with p 0.5, compress x about the same axis by a factor drawn from ``[1 - squeeze, 1]`` (a turn
    that needs no depth). ``in_place``: the probability of removing the hip centre's horizontal travel, so that
    a clip filmed while the person moves across the frame also teaches the same movement done on the spot.
    """

    yaw: float = 0.0
    squeeze: float = 0.0
    in_place: float = 0.0

    def __post_init__(self) -> None:
        if not (0 <= self.yaw <= 90 and 0 <= self.squeeze < 1 and 0 <= self.in_place <= 1):
            raise ValueError(f"view augmentation out of range (yaw 0-90, squeeze 0-<1, in_place 0-1): {self}")

    @property
    def active(self) -> bool:
        return bool(self.yaw or self.squeeze or self.in_place)


def change_view(raw: np.ndarray, rng: np.random.Generator, view: ViewAugment) -> np.ndarray:
    """Raw landmarks ``[T, 33, 4]`` as another view would show them (:class:`ViewAugment`); a copy."""
    x = raw.copy()
    found = found_mask(x)
    if not found.any():
        return x
    hip_x = x[:, [LEFT_HIP, RIGHT_HIP], 0].mean(1)  # [T], NaN where no person
    if view.in_place and rng.random() < view.in_place:
        x[found, :, 0] -= (hip_x[found] - hip_x[found].mean())[:, None]
    pivot = float(np.nanmean(x[found][:, [LEFT_HIP, RIGHT_HIP], 0]))
    if view.yaw and rng.random() < 0.5:
        angle = np.deg2rad(rng.uniform(-view.yaw, view.yaw))
        across, depth = x[:, :, 0] - pivot, x[:, :, 2]
        x[:, :, 0] = pivot + across * np.cos(angle) + depth * np.sin(angle)
        x[:, :, 2] = depth * np.cos(angle) - across * np.sin(angle)
    if view.squeeze and rng.random() < 0.5:
        x[:, :, 0] = pivot + (x[:, :, 0] - pivot) * rng.uniform(1 - view.squeeze, 1)
    return x


def augment_landmarks(
    raw: np.ndarray,
    rng: np.random.Generator,
    *,
    num_frames: int | None = None,
    view: ViewAugment | None = None,
) -> np.ndarray:
    """A random, clip-consistent variant of raw landmarks ``[T, 33, 4]`` -> ``[num_frames or T, 33, 4]``.

    Mirror (p 0.5), scale x and y independently (0.85-1.15, an aspect change), rotate (+-12 degrees),
    play a random 65-100 % stretch of the clip at a matching speed, drop frames (p 0.1) and joints (p 0.05),
    and add a little jitter (0.5 % of the frame). ``view``: first, a change of view (:func:`change_view`);
    without it (or with every part off) the random draws are exactly those of the other steps.
    """
    t = raw.shape[0]
    out_t = num_frames or t
    x = mirror_landmarks(raw) if rng.random() < 0.5 else raw.copy()
    if view is not None and view.active:
        x = change_view(x, rng, view)
    found = found_mask(x)
    if found.any():
        centre = np.nanmean(x[:, :, :2].reshape(-1, 2), axis=0)
        angle = np.deg2rad(rng.uniform(-12, 12))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        scale = rng.uniform(0.85, 1.15, size=2)
        xy = (x[:, :, :2] - centre) @ rot.T * scale + centre
        x[:, :, :2] = xy + rng.normal(0, 0.005, size=xy.shape)
    length = rng.uniform(0.65, 1.0)
    start = rng.uniform(0, 1 - length)
    pos = (start + length * (np.arange(out_t) + rng.uniform(0.25, 0.75)) / out_t) * t
    x = x[np.clip(pos.astype(int), 0, t - 1)]
    x[rng.random(out_t) < 0.1] = np.nan
    x[rng.random((out_t, NUM_LANDMARKS)) < 0.05] = np.nan
    # A dropped hip or shoulder would move the frame's centre: fill it from its partner instead.
    for a, b in ((LEFT_HIP, RIGHT_HIP), (LEFT_SHOULDER, RIGHT_SHOULDER)):
        for i, j in ((a, b), (b, a)):
            gone = np.isnan(x[:, i, 0]) & ~np.isnan(x[:, j, 0])
            x[gone, i] = x[gone, j]
    partial = np.isnan(x[:, :, 0]).any(1) & ~np.isnan(x[:, :, 0]).all(1)
    sub = x[partial]
    missing = np.isnan(sub[:, :, 0])
    # A dropped joint is reported at the hip centre with visibility 0, as BlazePose reports a hidden joint.
    hips = sub[:, [LEFT_HIP, RIGHT_HIP], :3].mean(1)
    sub[:, :, :3] = np.where(missing[:, :, None], hips[:, None, :], sub[:, :, :3])
    sub[:, :, 3] = np.where(missing, 0.0, sub[:, :, 3])
    x[partial] = sub
    return x.astype(np.float32)
