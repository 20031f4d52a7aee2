"""Live mode's service: one workout engine per browser session, a bound on how many run at once, and what
the engine's state becomes on the page; and a workout log as the page shows it (a table, and one chart of
the clip's time axis), live or for a file.

A browser streams webcam frames to the server several times a second (Gradio's streaming ``gr.Image``). Each
frame goes to :meth:`LiveSessions.step` with the session's key: the first frame of a session opens it (or is
refused with :class:`ServerFull` when ``max_sessions`` already run). A session's frames are stamped with the
time they arrived and queued for its engine, which runs on the session's own thread: a frame that takes the
engine long (a classification on a busy machine can take seconds) delays what the page shows, never the
times of the frames behind it (a gap in them would look like a person standing still). The page is sent
what the engine has made of the latest frame it handled.

A session ends when its stream stops (no frame for ``idle_s``: the next call to the registry or its reaper
thread closes it), when the page unloads (:meth:`LiveSessions.close`), or when the registry is closed.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from vidclf.errors import VidclfError
from vidclf.answer import plain_name

log = logging.getLogger(__name__)

# Frames are kept at most this large (the engine tracks at most 320 px; the page is shown this): encoding the
# image sent back is most of the cost of an update
VIEW_MAX_SIDE = 480
# A busy engine's frames wait at most this long (a decision on an overloaded machine took up to 10 s; past it
# the oldest go, and the gap they leave reads as standing still: a log that is right but late beats a set cut
# in two), and at most this many of them, as evenly spread as they can be (the engine reads a movement from 3
# samples a second, and catches up sooner on fewer)
MAX_WAITING_S = 10.0
MAX_WAITING = 30


class Engine(Protocol):
    """What the registry needs of an engine (:class:`vidclf.engine.WorkoutEngine`)."""

    def push(self, frame: np.ndarray, t_s: float) -> Any: ...

    def close(self) -> None: ...


class ServerFull(VidclfError):
    """Every live place of this server is taken (``places``: how many it has; 0: live mode is off)."""

    def __init__(self, places: int):
        super().__init__(_full_words(places))
        self.places = places


@dataclass(eq=False)
class LiveSession:
    """One browser's live session: its engine, built and fed from ``waiting`` by the session's own thread."""

    make_engine: Callable[[], Engine]
    started: float  # clock time of its first frame
    last_seen: float  # clock time of its latest frame
    queued: int = 0  # frames put
    frames: int = 0  # handled by the engine
    dropped: int = 0  # frames that waited too long for a busy engine
    step_s: list[float] = field(default_factory=list)  # how long the engine took on each frame (the latest 1000)
    latest: tuple[np.ndarray, Any] | None = None  # the latest frame the engine handled, and its state after it
    handled: int = 0  # how many frames made ``latest`` (the page was sent ``sent`` of them)
    sent: int = 0
    shown: Any = None  # the log the page was last sent (unchanged: not sent again)
    error: BaseException | None = None  # what stopped the engine, if anything did
    waiting: collections.deque = field(default_factory=collections.deque)
    wake: threading.Condition = field(default_factory=threading.Condition)
    view_lock: threading.Lock = field(default_factory=threading.Lock)
    closing: bool = False
    worker: threading.Thread | None = None
    engine: Engine | None = None

    def feed(self) -> None:
        """The session's thread: builds the engine (loading a model takes seconds: the frames wait, with their
        times), then gives it the frames from ``waiting``, in order, until the session closes."""
        try:
            self.engine = self.make_engine()
        except Exception as e:
            log.exception("live session stopped: its engine could not be built")
            with self.wake:
                self.error = e
                self.wake.notify_all()
            return
        while True:
            with self.wake:
                while not self.waiting and not self.closing:
                    self.wake.wait()
                if self.closing:
                    return
                frame, t_s = self.waiting.popleft()
            t0 = time.perf_counter()
            try:
                state = self.engine.push(frame, t_s)
            except Exception as e:  # the page says the session stopped; the server goes on
                log.exception("live session stopped: its engine failed")
                with self.wake:
                    self.error = e
                    self.wake.notify_all()
                return
            with self.wake:
                self.latest = (frame, state)
                self.handled += 1
                self.frames += 1
                self.step_s = self.step_s[-999:] + [time.perf_counter() - t0]
                self.wake.notify_all()

    def put(self, frame: np.ndarray, t_s: float) -> None:
        with self.wake:
            self.waiting.append((frame, t_s))
            self.queued += 1
            while self.waiting[-1][1] - self.waiting[0][1] > MAX_WAITING_S:
                self.waiting.popleft()
                self.dropped += 1
            while len(self.waiting) > MAX_WAITING:
                self._thin()
            self.wake.notify_all()

    def _thin(self) -> None:
        """One waiting frame out, neither the oldest nor the newest: the one whose neighbours are closest."""
        t = [ts for _, ts in self.waiting]
        i = min(range(1, len(t) - 1), key=lambda j: t[j + 1] - t[j - 1])
        del self.waiting[i]
        self.dropped += 1

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until the engine has handled every frame put so far (tests, benchmarks); False on timeout or
        when the engine has failed."""
        deadline = time.monotonic() + timeout_s
        with self.wake:
            while self.frames + self.dropped < self.queued and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.wake.wait(left)
            return self.error is None


class LiveSessions:
    """The live sessions of one server, keyed by the browser session, at most ``max_sessions`` at once.

    ``make_engine()`` builds a fresh engine for a new session; ``clock`` gives seconds (monotonic). Safe to
    call from the server's request threads.
    """

    def __init__(
        self,
        make_engine: Callable[[], Engine],
        *,
        max_sessions: int,
        idle_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_sessions < 0:
            raise VidclfError(f"the number of live sessions must be 0 or more, got {max_sessions}")
        self.make_engine = make_engine
        self.max_sessions = max_sessions
        self.idle_s = idle_s
        self.clock = clock
        self._sessions: dict[str, LiveSession] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start_reaper(self, every_s: float = 1.0) -> threading.Thread:
        """Sweep every ``every_s`` seconds in a daemon thread, so that a stopped stream's engine is closed even
        when no other frame comes; :meth:`close_all` stops it."""

        def reap() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.sweep()
                except Exception:  # an engine that fails to close must not end the reaper
                    log.exception("closing an idle live session failed")

        thread = threading.Thread(target=reap, name="vidclf-live-reaper", daemon=True)
        thread.start()
        return thread

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._sessions

    def get(self, key: str) -> LiveSession | None:
        with self._lock:
            return self._sessions.get(key)

    def put(self, key: str, frame: np.ndarray) -> LiveSession:
        """Queue one webcam frame (uint8 RGB ``[H, W, 3]``) for ``key``'s engine, stamped with the time it
        came, opening the session on its first frame. Raises :class:`ServerFull` when a new session finds
        every place taken, and :class:`VidclfError` when the session's engine has failed."""
        self.sweep()
        now = self.clock()
        opened = None
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    raise ServerFull(self.max_sessions)
                session = opened = self._sessions[key] = LiveSession(self.make_engine, started=now, last_seen=now)
            session.last_seen = now
        if opened is not None:
            opened.worker = threading.Thread(target=opened.feed, name="vidclf-live-session", daemon=True)
            opened.worker.start()
            log.info("live session opened (%d running)", len(self))
        if session.error is not None:
            self.close(key)
            raise VidclfError(f"live mode stopped: {session.error}")
        session.put(_smaller(frame, VIEW_MAX_SIDE), now - session.started)
        return session

    def step(self, key: str, frame: np.ndarray) -> LiveView | None:
        """:meth:`put`, and what the page shows now (:func:`live_view` of the latest frame the engine handled);
        the server being full is shown too. None when the page already shows the latest."""
        try:
            session = self.put(key, frame)
        except ServerFull as e:
            return full_view(frame, e)
        if not session.view_lock.acquire(blocking=False):
            return None
        try:
            with session.wake:
                latest, handled = session.latest, session.handled
            if latest is None or handled == session.sent:
                return None
            session.sent = handled
            return live_view(latest[0], latest[1], session)
        finally:
            session.view_lock.release()

    def close(self, key: str) -> bool:
        """End ``key``'s session (the page unloaded, the stream stopped); False if it had none."""
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is None:
            return False
        with session.wake:
            session.closing = True
            session.wake.notify_all()
        if session.worker is not None and session.worker is not threading.current_thread():
            session.worker.join(timeout=30)  # after the frame the engine is on, if any
        if session.engine is not None:
            session.engine.close()
        steps = np.asarray(session.step_s or [0.0]) * 1000
        log.info(
            "live session closed: %d frames handled in %.0f s, %d dropped, %.0f ms a frame (median; p95 %.0f ms,"
            " max %.0f ms); %d running",
            session.frames,
            session.last_seen - session.started,
            session.dropped,
            np.median(steps),
            np.percentile(steps, 95),
            steps.max(),
            len(self),
        )
        return True

    def sweep(self) -> int:
        """Close every session whose stream has sent nothing for ``idle_s``; returns how many."""
        now = self.clock()
        with self._lock:
            idle = [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]
        return sum(self.close(k) for k in idle)

    def close_all(self) -> None:
        self._stop.set()
        with self._lock:
            keys = list(self._sessions)
        for k in keys:
            self.close(k)


def _smaller(frame: np.ndarray, max_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(frame)
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _full_words(places: int) -> str:
    if places == 0:
        return "Live mode is turned off on this server. Record a clip in the Predict tab instead."
    taken = "Its one live place is" if places == 1 else f"All {places} of its live places are"
    return (
        f"{taken} taken right now: live mode starts by itself as soon as one is free. Or record a clip in the "
        "Predict tab."
    )


def view_image(frame: np.ndarray, landmarks: np.ndarray | None, max_side: int = VIEW_MAX_SIDE) -> np.ndarray:
    """The frame the page shows: at most ``max_side`` pixels, the skeleton (``[33, 4]``, units of the longer
    side, as the engine gives them) drawn on it."""
    from vidclf.overlay import draw_skeleton

    frame = _smaller(frame, max_side)
    return draw_skeleton(frame, landmarks) if landmarks is not None else np.ascontiguousarray(frame)


LOG_HEADERS = ["exercise", "from - to", "reps", "pace"]
LOG_COLUMN_WIDTHS = ["31%", "30%", "16%", "23%"]  # a phone's width holds all four
REST_WORDS = "resting"
UNKNOWN_WORDS = "not one of these"


def segment_words(label: str | None, kind: str) -> str:
    """What a segment is, in words: the exercise, "resting" or "not one of these"."""
    if kind == "rest":
        return REST_WORDS
    if kind == "unknown" or not label:
        return UNKNOWN_WORDS
    return plain_name(label)


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def pace_words(rep_times: Sequence[tuple[float, float]]) -> str:
    """How fast the repetitions came: seconds per repetition, from the first's start to the last's end."""
    if len(rep_times) < 2:
        return ""
    span = rep_times[-1][1] - rep_times[0][0]
    return f"{span / len(rep_times):.1f} s a rep" if span > 0 else ""


@dataclass(frozen=True)
class LogRow:
    """One segment of a workout log as the page shows it."""

    what: str
    start_s: float
    end_s: float
    reps: int
    rep_times: tuple[tuple[float, float], ...]
    kind: str  # "exercise", "rest" or "unknown"

    def cells(self, *, going: bool = False) -> list[str]:
        """The row's cells; ``going``: the set still goes on (live), it ends "now"."""
        reps = str(self.reps) if self.kind == "exercise" else ""
        end = "now" if going else _clock(self.end_s)
        return [self.what, f"{_clock(self.start_s)} - {end}", reps, pace_words(self.rep_times)]


def log_rows(segments: Sequence[Any]) -> list[LogRow]:
    """The engine's segments (objects or ``to_dict`` dicts with label, known, start_s, end_s, reps, rep_times;
    a rest has label "rest") -> rows of the log table, in time order. A segment that lasted no time (a
    decision that changed at once) is left out, except the last (it has just begun), and a rest or "not one of
    these" next to another of its kind joins it: a person reads one pause, not three."""
    rows: list[LogRow] = []
    for i, s in enumerate(segments):
        get = s.get if isinstance(s, dict) else (lambda k, d=None, s=s: getattr(s, k, d))
        kind = _kind(get("label"), get("known", True), get("kind"))
        start, end = float(get("start_s", 0.0)), float(get("end_s", 0.0))
        if end <= start and i < len(segments) - 1:
            continue
        what = segment_words(get("label"), kind)
        if rows and kind != "exercise" and rows[-1].what == what:
            rows[-1] = dataclasses.replace(rows[-1], end_s=end)
            continue
        rows.append(
            LogRow(
                what=what,
                start_s=start,
                end_s=end,
                reps=int(get("reps", 0) or 0) if kind == "exercise" else 0,
                rep_times=tuple((float(a), float(b)) for a, b in (get("rep_times") or ())),
                kind=kind,
            )
        )
    return rows


def _kind(label: str | None, known: bool, kind: str | None) -> str:
    if kind in ("exercise", "rest", "unknown"):
        return kind
    if label is None or str(label).lower() in ("rest", "resting"):
        return "rest"
    return "exercise" if known else "unknown"


def log_table(segments: Sequence[Any]) -> list[list[str]]:
    """The workout log as table cells (:data:`LOG_HEADERS`)."""
    return [r.cells() for r in log_rows(segments)]


@dataclass(frozen=True)
class LiveView:
    """What one streamed frame updates on the page: the image with the skeleton, the line saying what is
    happening now (Markdown), and the log of the sets (None: unchanged since it was last sent)."""

    image: np.ndarray
    status: str
    table: list[list[str]] | None


def live_view(frame: np.ndarray, state: Any, session: LiveSession) -> LiveView:
    """The engine's state after ``frame`` (:class:`vidclf.engine.LiveState`: ``status`` "warming up",
    "exercise", "rest" or "unknown", ``label``, ``set_reps``, ``landmarks`` ``[33, 4]`` or None, ``segments``)
    -> what the page shows."""
    landmarks = state.landmarks
    person = landmarks is not None and not np.isnan(np.asarray(landmarks)[:, :2]).all()
    nobody = "Nobody in view: stand back until your whole body is in the picture."
    if state.status == "exercise":
        head = f"### {segment_words(state.label, 'exercise')}: {int(state.set_reps)}"
        tip = "repetitions in this set"
    elif state.status in ("rest", "unknown"):
        head = f"### {segment_words(state.label, state.status).capitalize()}"
        tip = "" if person else nobody
    else:
        head = "### Watching..." if person else "### Looking for you"
        tip = "Keep going: the exercise shows here after a few seconds." if person else nobody
    rows = log_rows(state.segments)
    sets = sum(1 for r in rows if r.kind == "exercise")
    elapsed = f"{_clock(session.last_seen - session.started)} into the workout"
    counted = "1 set so far" if sets == 1 else f"{sets} sets so far"
    # the last segment ends at the state's time while it goes on: "now", so that the table changes (and is sent
    # again) only when a set starts, changes or counts, not with every frame
    going = bool(rows) and rows[-1].end_s >= state.t_s
    table = [r.cells(going=going and i == len(rows) - 1) for i, r in enumerate(rows)]
    if going and state.status == "warming up":
        table[-1][0] = "watching..."
    changed = table != session.shown
    session.shown = table
    return LiveView(
        view_image(frame, landmarks),
        "  \n".join([head, " · ".join(t for t in (tip, counted, elapsed) if t)]),
        table if changed else None,
    )


def full_view(frame: np.ndarray, error: ServerFull) -> LiveView:
    """The page when every live slot is taken: the camera's own picture and why nothing else happens."""
    head = "### The server is full" if error.places else "### Live mode is off"
    return LiveView(view_image(frame, None), f"{head}\n{error}", None)


def workout_view(log: Any) -> tuple[Any, str, list[list[str]]]:
    """A file's :class:`vidclf.engine.WorkoutLog` for the page: the chart of its time axis (segments coloured,
    each repetition ticked), the chart's title, and the log table (:data:`LOG_HEADERS`)."""
    from vidclf.plots import workout_figure

    rows = log_rows(log.segments)
    sets = sum(1 for r in rows if r.kind == "exercise")
    reps = sum(r.reps for r in rows)
    title = (
        f"When does each exercise happen? {sets} {'set' if sets == 1 else 'sets'}, {reps} "
        f"{'repetition' if reps == 1 else 'repetitions'} (each one ticked)"
    )
    return workout_figure(log.duration_s, rows), title, [r.cells() for r in rows]
