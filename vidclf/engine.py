"""The online engine: frames in time order -> a workout log (segments of exercise, rest and "not one of these",
each with its repetitions), the same for a file and for a live webcam.

A :class:`WorkoutEngine` takes frames at whatever rate they come and keeps those it needs at
:attr:`EngineSettings.rate_hz` (10 a second: the webcam stream delivers about that many, a repetition needs
three samples or more, and BlazePose's tracking mode costs ~17.5 ms a frame, under a fifth of one core).
For each kept frame it has the body's landmarks (one BlazePose tracker per stream) and for every frame a
small grey picture (the pixels' signal, for what the joints cannot see). Every
:attr:`EngineSettings.decide_every_s` it decides:

1. **moving or still**: the joints' range over the last :attr:`EngineSettings.still_s` in torso lengths
   (where a person is found; the picture's change where nobody is). Still means **rest**.
2. **what**: while moving, the last :attr:`EngineSettings.window_s` seconds of the current movement are
   classified, the pose stream on the window resampled to the frames it was trained on and the motion stream
   (more costly) every :attr:`EngineSettings.motion_every_s`; :meth:`vidclf.predict.Predictor.verdict` says
   which class, or "not one of these".

A segment starts when the decision changes and holds (rest and movement at once: the still window is its own
hysteresis; a new label after :attr:`EngineSettings.hold` decisions in a row). Its repetitions come from
:class:`vidclf.reps.RepCounter`: events in the signal, each with its own start and end.

Memory is bounded whatever the length: frames are kept for one window, signals for
:attr:`EngineSettings.history_s`; the log itself grows with segments and repetitions only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from vidclf.reps import RepCounter, grey_signal
from vidclf.sampling import uniform_indices

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What the engine asks of a model (:class:`vidclf.predict.Predictor` is one; the engine sits below it, so
    that a file's prediction can ride the engine on its own decoding pass)."""

    streams: list[tuple[Any, float]]  # (stream, weight): a stream has ``.pose`` and ``.spec.pair_gap``

    @property
    def classes(self) -> tuple[str, ...]: ...

    def new_tracker(self) -> Callable[[np.ndarray], np.ndarray]: ...

    def window_logits(
        self, *, landmarks: Any, frames: Any, partners: Any = None, reuse: Any = None, cache: Any = None
    ) -> Any: ...

    def verdict(
        self, fused: torch.Tensor, pose_found: float | None, novelty: float | None = None
    ) -> tuple[torch.Tensor, bool, float]: ...

    def movement_novelty(self, landmarks: np.ndarray | None, fused: torch.Tensor) -> float | None: ...

    @property
    def pose_frames(self) -> int | None: ...


REST, UNKNOWN, WARMING_UP, EXERCISE = "rest", "unknown", "warming up", "exercise"
_UCF_FPS = 25.0  # the rate the motion stream's frame pairs were trained at (its gap is in these frames)
# The joints that say whether a person moves and what repeats: nose, shoulders, elbows, wrists, hips, knees,
# ankles (vidclf.models.pose.COUNT_JOINTS).
_JOINTS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


@dataclass(frozen=True)
class EngineSettings:
    """How the engine samples and decides (see the module's docstring)."""

    rate_hz: float = 10.0  # frames a second tracked and classified
    window_s: float = 4.0  # what one decision classifies: the last seconds of the movement (the pose stream)
    motion_window_s: float = 8.0  # the motion stream's window: its pairs as dense as in training (~3 a second)
    min_window_s: float = 2.0  # a movement is classified once it is this long
    decide_every_s: float = 0.5
    # the motion stream's logits are refreshed this often (reused in between); each frame's CNN features are
    # computed once, and a whole number of the decisions' strides keeps a window's frames on the same samples
    motion_every_s: float = 2.0
    still_s: float = 1.5  # nobody moving for this long is rest
    hold: int = 3  # a new label must win this many decisions in a row to start a segment
    still_joint_range: float = 0.1  # a still person's second most moving joint moves less (torso lengths)
    still_pixel_std: float = 10.0  # a still picture's most changing pixels change less (grey levels)
    max_side: int = 320  # frames are tracked at most this large
    history_s: float = 30.0  # how long the repetition counter's signal is kept
    # refuse a window whose movement is unlike its answer's class (the checkpoint's movement profile,
    # vidclf.novelty); off by default: the profile is fit and calibrated on whole clips, and on workouts it was
    # measured on three recordings only (bench/movement_windows.py)
    movement_check: bool = False


@dataclass(frozen=True)
class Segment:
    """One stretch of a workout: ``label`` a class name, or ``"rest"`` / ``"unknown"`` ("not one of these");
    ``known`` whether it is one of the classes; ``reps`` and each repetition's ``(start_s, end_s)``."""

    label: str
    known: bool
    start_s: float
    end_s: float
    reps: int = 0
    rep_times: list[tuple[float, float]] = field(default_factory=list)
    confidence: float = 0.0
    rep_source: str = ""  # what was counted: "pose" (the joints) or "pixels" (the picture); "" for none

    @property
    def kind(self) -> str:
        """``"exercise"``, ``"rest"`` or ``"unknown"``."""
        return EXERCISE if self.known else (REST if self.label == REST else UNKNOWN)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "known": self.known,
            "start_s": round(self.start_s, 2),
            "end_s": round(self.end_s, 2),
            "reps": self.reps,
            "rep_times": [[round(a, 2), round(b, 2)] for a, b in self.rep_times],
            "confidence": round(self.confidence, 3),
            "rep_source": self.rep_source,
        }


@dataclass(frozen=True)
class LiveState:
    """What the engine knows at ``t_s``: ``status`` one of "warming up", "exercise", "rest", "unknown";
    ``label`` the current exercise (None otherwise); ``set_reps`` the current segment's count (it never goes
    down); ``landmarks`` ``[33, 4]`` of the latest tracked frame (units of its longer side, NaN: nobody) or
    None; ``segments`` the closed ones and the open one."""

    t_s: float
    status: str
    label: str | None
    confidence: float
    set_reps: int
    landmarks: np.ndarray | None
    segments: list[Segment]


@dataclass(frozen=True)
class WorkoutLog:
    """The segments of a clip or a live session, in time order, and how long it was."""

    segments: list[Segment]
    duration_s: float

    @property
    def exercises(self) -> list[Segment]:
        return [s for s in self.segments if s.known]

    @property
    def reps(self) -> int:
        """Repetitions over the exercise segments."""
        return sum(s.reps for s in self.exercises)

    @property
    def rep_times(self) -> list[tuple[float, float]]:
        return [t for s in self.exercises for t in s.rep_times]

    def to_dict(self) -> dict:
        return {
            "duration_s": round(self.duration_s, 2),
            "reps": self.reps,
            "segments": [s.to_dict() for s in self.segments],
        }

    def to_csv(self) -> str:
        """One row a segment: label, known, start_s, end_s, reps, pace (repetitions a minute), confidence,
        rep_times (``start-end`` pairs separated by spaces)."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["label", "known", "start_s", "end_s", "reps", "reps_per_min", "confidence", "rep_times"])
        for s in self.segments:
            pace = 60.0 * s.reps / s.duration_s if s.reps and s.duration_s > 0 else 0.0
            times = " ".join(f"{a:.2f}-{b:.2f}" for a, b in s.rep_times)
            w.writerow(
                [
                    s.label,
                    s.known,
                    f"{s.start_s:.2f}",
                    f"{s.end_s:.2f}",
                    s.reps,
                    f"{pace:.1f}",
                    f"{s.confidence:.3f}",
                    times,
                ]
            )
        return out.getvalue()


@dataclass
class _Sample:
    """One tracked frame: its time, its frame (at most ``max_side``) and its partner for the motion stream,
    its landmarks ``[33, 4]``."""

    t: float
    frame: np.ndarray
    landmarks: np.ndarray
    partner: np.ndarray | None = None
    partner_due: float = 0.0
    features: dict = field(default_factory=dict)  # the motion stream's CNN features, computed once


@dataclass
class _Open:
    """The open segment: what it is, since when, its counter and its decisions' confidences."""

    label: str | None  # None: a movement not classified yet
    known: bool
    start: float
    counter: RepCounter
    shown: int = 0  # the count shown so far (never goes down)
    confidences: list[float] = field(default_factory=list)


class WorkoutEngine:
    """Frames in time order -> :class:`LiveState` after each, and a :class:`WorkoutLog` at the end.

    One engine per clip or live session (it owns a pose tracker): use it as a context manager, or call
    :meth:`close`. ``tracker`` (a frame ``[H, W, 3]`` -> landmarks ``[33, 4]``) replaces the predictor's.
    """

    def __init__(
        self,
        predictor: Predictor,
        settings: EngineSettings | None = None,
        *,
        tracker: Callable[[np.ndarray], np.ndarray] | None = None,
    ):
        self.predictor = predictor
        self.settings = settings or EngineSettings()
        self._tracker = tracker or predictor.new_tracker()
        s = self.settings
        keep = int(math.ceil((max(s.window_s, s.motion_window_s) + 1.0) * s.rate_hz)) + 2
        self._samples: deque[_Sample] = deque(maxlen=keep)
        self._awaiting: deque[_Sample] = deque()  # samples whose motion partner has not come yet
        self._size: tuple[int, int] | None = None
        self._next_sample = -math.inf
        self._next_decision = -math.inf
        self._t = 0.0
        self._t0: float | None = None
        self._closed: list[Segment] = []
        self._open: _Open | None = None
        self._rest_since: float | None = None  # rest: the open segment is a rest (label "rest")
        self._moving_run = 0
        self._label_run: tuple[str, int, float] | None = None  # (label, decisions in a row, first one's time)
        self._motion: dict[int, torch.Tensor] = {}
        self._motion_at = -math.inf
        self._motion_gap = max((st.spec.pair_gap for st, _ in predictor.streams if not st.pose), default=0) / _UCF_FPS
        self._has_motion = any(not st.pose for st, _ in predictor.streams)
        # every frame's small grey picture (for the count and for stillness when nobody is found)
        self._pixels: deque[tuple[float, np.ndarray]] = deque()
        self._keep_s = max(s.window_s, s.motion_window_s, s.still_s) + 1.0  # what a new segment may reach back to
        self._landmarks: np.ndarray | None = None
        self._finished: WorkoutLog | None = None

    # -- the stream -------------------------------------------------------------------------------------
    def push(self, frame: np.ndarray, t_s: float, *, bgr: bool = False) -> LiveState:
        """One uint8 RGB frame ``[H, W, 3]`` (in OpenCV's BGR order with ``bgr``: a file's decoder gives that,
        and only the frames the engine samples are converted, once shrunk) at ``t_s`` seconds (after the
        previous one's). Frames between the engine's samples cost a small grey picture only."""
        if self._finished is not None:
            raise RuntimeError("the engine has finished; start a new one")
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"expected a frame [H, W, 3], got {tuple(frame.shape)}")
        if t_s < self._t:
            raise ValueError(f"frames must come in time order: {t_s:.3f} s after {self._t:.3f} s")
        if self._t0 is None:
            self._t0 = t_s
        self._t = t_s
        thin = _thinned(frame)
        grey = grey_signal(cv2.cvtColor(thin, cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY)[None])[0]
        self._pixels.append((t_s, grey))
        while t_s - self._pixels[0][0] > self._keep_s:
            self._pixels.popleft()
        if self._open is not None:
            self._open.counter.add_pixels(t_s, grey)
        self._give_partners(frame, t_s, bgr)
        if t_s >= self._next_sample:
            self._next_sample = max(self._next_sample + 1.0 / self.settings.rate_hz, t_s + 0.5 / self.settings.rate_hz)
            small = self._resize(frame, bgr)
            lm = np.asarray(self._tracker(small), np.float32)
            self._landmarks = lm
            sample = _Sample(t_s, small, lm, partner_due=t_s + self._motion_gap)
            self._samples.append(sample)
            if self._has_motion:
                self._awaiting.append(sample)
            if self._open is not None:
                self._open.counter.add_joints(t_s, lm)
            if t_s >= self._next_decision:
                self._next_decision = max(self._next_decision + self.settings.decide_every_s, t_s)
                self._decide(t_s)
                if self._open is not None and self._open.known:
                    self._open.counter.update()
                    self._update_shown(self._open)
        return self.state()

    def _resize(self, frame: np.ndarray, bgr: bool = False) -> np.ndarray:
        """The frame at most ``max_side`` (area averaging), RGB (a channel swap commutes with the averaging: the
        same pixels either way, for a fifth of the work on a 720p frame)."""
        if self._size is None:
            h, w = frame.shape[:2]
            scale = min(1.0, self.settings.max_side / max(h, w))
            self._size = (max(1, round(h * scale)), max(1, round(w * scale)))
        h, w = self._size
        if frame.shape[:2] == (h, w):
            small = np.ascontiguousarray(frame)
        else:
            # a whole factor that is a multiple of 4 (720p to 320x180) is halved first: OpenCV's 2x2 means cost a
            # third of its 4x4 ones, within one grey level
            factor = frame.shape[0] // h
            while factor % 4 == 0 and frame.shape[:2] == (factor * h, factor * w):
                frame = cv2.resize(frame, (w * factor // 2, h * factor // 2), interpolation=cv2.INTER_AREA)
                factor //= 2
            small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB) if bgr else small

    def _give_partners(self, frame: np.ndarray, t_s: float, bgr: bool = False) -> None:
        while self._awaiting and t_s >= self._awaiting[0].partner_due and t_s > self._awaiting[0].t:
            self._awaiting.popleft().partner = self._resize(frame, bgr)

    # -- deciding ---------------------------------------------------------------------------------------
    def _window(self, since: float) -> list[_Sample]:
        return [x for x in self._samples if x.t >= since]

    def _still(self, t: float) -> tuple[bool, float]:
        """Whether nothing moved over the last ``still_s``, and when the movement began if something did.

        Still is both: the person's second most moving joint (where one is found) within
        :attr:`EngineSettings.still_joint_range`, and the picture's most changing pixels (the 98th percentile
        of each pixel's spread over time) within :attr:`EngineSettings.still_pixel_std`."""
        s = self.settings
        pix = [(tt, g) for tt, g in self._pixels if tt >= t - s.still_s]
        grey = np.stack([g for _, g in pix])
        pixels_still = float(np.percentile(grey.std(0), 98)) < s.still_pixel_std
        recent = self._window(t - s.still_s)
        marks = np.stack([x.landmarks for x in recent])
        found = ~np.isnan(marks[:, _JOINTS, :2]).any(axis=(1, 2))
        if found.sum() >= max(2, 0.5 * len(recent)):
            xy = marks[found][:, _JOINTS, :2].astype(np.float64)
            torso = _torso(marks[found])
            # how far the second most moving joint goes (10th to 90th percentile): one joint's jitter is not a
            # movement, and a movement moves two joints or more
            reach = (np.percentile(xy, 90, axis=0) - np.percentile(xy, 10, axis=0)).max(1) / torso
            if float(np.sort(reach)[-2]) < s.still_joint_range and pixels_still:
                return True, t
            dev = np.sort(np.linalg.norm(xy - xy[:1], axis=2), axis=1)[:, -2] / torso  # from the window's first pose
            onset = np.nonzero(dev > 0.5 * s.still_joint_range)[0]
            if len(onset):
                return False, float(np.array([x.t for x in recent])[found][onset[0]])
        elif pixels_still:
            return True, t
        change = np.abs(grey - grey[:1])
        onset = np.nonzero(np.percentile(change, 98, axis=1) > s.still_pixel_std)[0]
        return False, pix[onset[0]][0] if len(onset) else t

    def _decide(self, t: float) -> None:
        s = self.settings
        assert self._t0 is not None
        if t - self._t0 < s.still_s - 0.5 / s.rate_hz:
            return  # warming up: not yet a still window
        still, onset = self._still(t)
        if still:
            self._moving_run = 0
            if self._rest_since is None:
                start = self._t0 if self._open is None else t - s.still_s
                self._start(REST, known=False, at=start)
            return
        self._moving_run += 1
        if self._open is None or (self._rest_since is not None and self._moving_run >= 2):
            self._start(None, known=False, at=self._t0 if self._open is None else onset)
        if self._rest_since is not None:
            return
        assert self._open is not None
        begun = self._open.start
        if t - begun < s.min_window_s - 0.5 / s.rate_hz:
            return
        label, known, confidence = self._classify(t, since=begun)
        op = self._open
        if op.label is None:
            op.label, op.known = label, known
            op.confidences.append(confidence)
            self._label_run = None
            return
        if label == op.label:
            op.confidences.append(confidence)
            self._label_run = None
            return
        run = self._label_run
        self._label_run = (label, run[1] + 1, run[2]) if run is not None and run[0] == label else (label, 1, t)
        if self._label_run[1] >= s.hold:
            at = max(self._label_run[2] - s.window_s / 2, begun + s.min_window_s)
            self._start(label, known=known, at=at, confidence=confidence)

    def _classify(self, t: float, since: float) -> tuple[str, bool, float]:
        """The verdict on the movement since ``since`` (the pose stream's last ``window_s`` of it, the motion
        stream's last ``motion_window_s``)."""
        landmarks = np.stack([x.landmarks for x in self._window(max(since, t - self.settings.window_s))])
        frames = partners = None
        cache = None
        if self._has_motion and (t - self._motion_at >= self.settings.motion_every_s or not self._motion):
            window = self._window(max(since, t - self.settings.motion_window_s))
            frames = np.stack([x.frame for x in window])
            partners = np.stack([x.partner if x.partner is not None else x.frame for x in window])
            cache = [x.features for x in window]
            self._motion_at = t
        out = self.predictor.window_logits(
            landmarks=landmarks,
            frames=frames,
            partners=partners,
            reuse=self._motion,
            cache=cache,
        )
        if frames is not None:
            self._motion = {i: lg for i, lg in out.per_stream.items() if not self.predictor.streams[i][0].pose}
        if self.settings.movement_check:
            # the signature of the window's movement on as many frames as the profile's clips had
            count = self.predictor.pose_frames or len(landmarks)
            picked = landmarks[uniform_indices(len(landmarks), count)]
            novelty = self.predictor.movement_novelty(picked, out.fused)
            probs, known, _ = self.predictor.verdict(out.fused, out.pose_found, novelty)
        else:
            probs, known, _ = self.predictor.verdict(out.fused, out.pose_found)
        top = int(probs.argmax())
        return (self.predictor.classes[top] if known else UNKNOWN), known, float(probs[top])

    # -- segments ---------------------------------------------------------------------------------------
    def _start(self, label: str | None, *, known: bool, at: float, confidence: float | None = None) -> None:
        """Close the open segment at ``at`` (never before its last repetition shown ended) and open one."""
        op = self._open
        if op is not None:
            times = op.counter.times[: op.shown]
            at = max(at, op.start, times[-1][1] if times else -math.inf)
            self._closed.append(self._segment(op, end=at))
        counter = RepCounter(history_s=self.settings.history_s)
        self._open = _Open(label, known, at, counter, confidences=[] if confidence is None else [confidence])
        self._rest_since = at if label == REST else None
        self._label_run = None
        self._motion = {}  # a new movement is classified on its own frames
        for x in self._samples:
            if x.t >= at:
                counter.add_joints(x.t, x.landmarks)
        for t, g in self._pixels:
            if t >= at:
                counter.add_pixels(t, g)

    def _segment(self, op: _Open, *, end: float) -> Segment:
        label = op.label if op.label is not None else UNKNOWN
        if op.known:
            self._update_shown(op)
            times = op.counter.times[: op.shown]
        else:
            times = []
        conf = float(np.mean(op.confidences)) if op.confidences else 0.0
        source = (op.counter.source or "") if times else ""
        return Segment(
            label=label,
            known=op.known,
            start_s=op.start,
            end_s=end,
            reps=len(times),
            rep_times=list(times),
            confidence=conf,
            rep_source=source,
        )

    def _update_shown(self, op: _Open) -> None:
        op.shown = max(op.shown, len(op.counter.times))

    def buffered(self) -> int:
        """How many frames and signal samples the engine holds (bounded whatever the stream's length)."""
        held = len(self._samples) + len(self._awaiting) + len(self._pixels)
        if self._open is not None:
            held += self._open.counter.buffered()
        return held

    def state(self) -> LiveState:
        """What the engine knows now."""
        segments = list(self._closed)
        op = self._open
        if op is None:
            return LiveState(
                t_s=self._t,
                status=WARMING_UP,
                label=None,
                confidence=0.0,
                set_reps=0,
                landmarks=self._landmarks,
                segments=segments,
            )
        current = self._segment(op, end=self._t)
        segments.append(current)
        if op.label is None:
            status, label = WARMING_UP, None
        else:
            status = EXERCISE if op.known else (REST if op.label == REST else UNKNOWN)
            label = op.label if op.known else None
        return LiveState(
            t_s=self._t,
            status=status,
            label=label,
            confidence=current.confidence,
            set_reps=current.reps,
            landmarks=self._landmarks,
            segments=segments,
        )

    def finish(self) -> WorkoutLog:
        """Close the stream: the open segment ends at the last frame (a movement never classified for being
        short is classified on what there is) and the tracker is released."""
        if self._finished is not None:
            return self._finished
        op = self._open
        if op is None and self._samples:
            self._start(None, known=False, at=self._t0 or 0.0)
            op = self._open
        if op is not None and op.label is None and self._samples:
            op.label, op.known, conf = self._classify(self._t, since=op.start)
            op.confidences.append(conf)
        if op is not None:
            op.counter.update(final=True)
            self._closed.append(self._segment(op, end=self._t))
            self._open = None
        self.close()
        t0 = self._t0 or 0.0
        self._finished = WorkoutLog(
            [s for s in self._closed if s.end_s > s.start_s or len(self._closed) == 1], self._t - t0
        )
        return self._finished

    def close(self) -> None:
        """Release the tracker (finish() does too)."""
        closer = getattr(self._tracker, "close", None)
        if closer is not None:
            closer()

    def __enter__(self) -> WorkoutEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameFeed:
    """Frames handed, in order, to ``consume(frame, t_s)`` on a thread of its own through a bounded queue: the
    reader (a decoder) runs ahead while a :class:`WorkoutEngine` tracks and classifies, so the two share the
    cores instead of taking turns. At most ``max_frames`` frames and ``max_bytes`` of them wait (a 1080x1920
    frame is 6 MB): the reader is never more than about a second ahead, so its progress is the engine's. The
    consumer's torch runs on ``torch_threads`` threads: its calls are small (a batch-1 LSTM, one window's CNN
    features) and gain nothing from more while the reader holds a core (threads that wait spin).

    :meth:`put` raises what the consumer raised (and stops taking frames); :meth:`close` waits for the last
    frame to be consumed and raises it too. Use it as a context manager: leaving it stops the thread."""

    def __init__(
        self,
        consume: Callable[[np.ndarray, float], object],
        *,
        max_bytes: int = 64 << 20,
        max_frames: int = 32,
        torch_threads: int | None = 1,
        name: str = "vidclf-engine",
    ):
        self._consume, self._max_bytes, self._max_frames, self._threads = consume, max_bytes, max_frames, torch_threads
        self._queue: queue.Queue[tuple[np.ndarray, float] | None] | None = None
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def put(self, frame: np.ndarray, t_s: float) -> None:
        """One frame (kept as given: the caller must not write to it again)."""
        if self._queue is None:
            # the bound in frames, from the first frame's size (a clip's frames are all one size)
            self._queue = queue.Queue(maxsize=max(2, min(self._max_frames, self._max_bytes // max(1, frame.nbytes))))
            self._thread.start()
        self._raise()
        while True:
            try:
                self._queue.put((frame, t_s), timeout=0.5)
                return
            except queue.Full:
                self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        assert self._queue is not None
        with contextlib.ExitStack() as stack:
            if self._threads is not None:
                from vidclf.runtime import torch_threads

                stack.enter_context(torch_threads(self._threads))
            while (item := self._queue.get()) is not None:
                if self._error is not None or self._stop:
                    continue  # drained, not consumed
                try:
                    self._consume(*item)
                except BaseException as e:  # given to the reader's thread by put() and close()
                    self._error = e

    def close(self) -> None:
        """Wait until every frame put is consumed; raise what the consumer raised."""
        self._end()
        self._raise()

    def _end(self) -> None:
        """The thread takes what is queued (consumed, or dropped once stopped), then ends; wait for it."""
        if self._queue is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def __enter__(self) -> FrameFeed:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:  # the reader failed: what is queued is dropped
            self._stop = True
            self._end()


def _thinned(frame: np.ndarray, side: int = 128) -> np.ndarray:
    """Every s-th pixel of a large frame (a 720p frame's area average costs more than the signal needs)."""
    step = max(1, max(frame.shape[:2]) // side)
    return frame[::step, ::step] if step > 1 else frame


def _torso(marks: np.ndarray) -> float:
    """Median shoulder-centre to hip-centre length of landmarks ``[T, 33, 4]`` (found frames)."""
    sh = marks[:, [11, 12], :2].mean(1)
    hp = marks[:, [23, 24], :2].mean(1)
    return max(float(np.median(np.linalg.norm(sh - hp, axis=1))), 1e-3)


def run_file(
    predictor: Predictor,
    path: str | os.PathLike,
    *,
    settings: EngineSettings | None = None,
    progress: Callable[[float, str], None] | None = None,
    max_seconds: float | None = None,
) -> WorkoutLog:
    """The workout log of a video file: its frames read in order and fed to a :class:`WorkoutEngine` as fast as
    the CPU allows. Memory is bounded whatever the length; reading stops at ``max_seconds``
    (default ``VIDCLF_MAX_SECONDS``, 600). ``progress(share, words)`` is told how far it got."""
    from vidclf.video import iter_frames, probe

    info = probe(path)
    limit = float(os.environ.get("VIDCLF_MAX_SECONDS", 600)) if max_seconds is None else max_seconds
    total = min(info.duration_s, limit)
    with WorkoutEngine(predictor, settings) as engine:
        step = max(1, int(info.fps))
        with FrameFeed(engine.push) as feed:  # decoding runs ahead of the engine, on the other core
            for i, frame in enumerate(iter_frames(path)):
                t = i / info.fps
                if t > limit:
                    break
                feed.put(frame, t)
                if progress is not None and i % step == 0:
                    progress(min(1.0, t / max(total, 1e-9)), f"{t:.0f} of {total:.0f} s")
            feed.close()
        return engine.finish()
