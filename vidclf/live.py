"""Live mode's service: one workout engine per browser session, a bound on how many run at once, and what
the engine's state becomes on the page.

A browser streams webcam frames to the server a few times a second (Gradio's streaming ``gr.Image``). Each
frame goes to :meth:`LiveSessions.push` with the session's key: the first frame of a session opens its engine
(or is refused with :class:`ServerFull` when ``max_sessions`` already run), later ones are fed to it in the
order they arrive. A session ends when its stream stops (no frame for ``idle_s``: the next call to the
registry or its reaper thread closes it), when the page unloads (:meth:`LiveSessions.close`), or when the
registry is closed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from vidclf.errors import VidclfError
from vidclf.serving import readable

log = logging.getLogger(__name__)

# The image sent back to the page: at most this many pixels on its longer side (encoding it is most of the
# cost of an update)
VIEW_MAX_SIDE = 480


class Engine(Protocol):
    """What the registry needs of an engine (:class:`vidclf.engine.WorkoutEngine`)."""

    def push(self, frame: np.ndarray, t_s: float) -> Any: ...

    def close(self) -> None: ...


class ServerFull(VidclfError):
    """Every live place of this server is taken (``places``: how many it has; 0: live mode is off)."""

    def __init__(self, places: int):
        super().__init__(_full_words(places))
        self.places = places


@dataclass
class LiveSession:
    engine: Engine
    started: float  # clock time of its first frame
    last_seen: float  # clock time of its latest frame
    frames: int = 0
    shown: Any = None  # what the page was last sent for the log (unchanged: not sent again)
    lock: threading.Lock = field(default_factory=threading.Lock)


class LiveSessions:
    """The live sessions of one server, keyed by the browser session, at most ``max_sessions`` at once.

    ``make_engine()`` builds a fresh engine for a new session; ``clock`` gives seconds (monotonic). Safe to
    call from the server's worker threads: one session's frames are handled one at a time, in order.
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

    def push(self, key: str, frame: np.ndarray) -> tuple[LiveSession, Any] | None:
        """Feed one webcam frame (uint8 RGB ``[H, W, 3]``) to ``key``'s engine, opening it on the session's
        first frame: ``(session, the engine's state)``, or None when the session is still busy with its
        previous frame (this one is dropped: a late frame is worth less than a prompt answer). Raises
        :class:`ServerFull` when a new session finds every slot taken."""
        return self._handle(key, frame, lambda session, state: (session, state))

    def step(self, key: str, frame: np.ndarray) -> LiveView | None:
        """:meth:`push`, and what the page shows after it (:func:`live_view`); the server being full is shown
        too. None when the frame was dropped."""
        try:
            return self._handle(key, frame, lambda session, state: live_view(frame, state, session))
        except ServerFull as e:
            return full_view(frame, e)

    def _handle(self, key: str, frame: np.ndarray, then: Callable[[LiveSession, Any], Any]) -> Any:
        self.sweep()
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    raise ServerFull(self.max_sessions)
                session = self._sessions[key] = LiveSession(self.make_engine(), started=now, last_seen=now)
                log.info("live session opened (%d running)", len(self._sessions))
            session.last_seen = now
        if not session.lock.acquire(blocking=False):
            return None
        try:
            if self._sessions.get(key) is not session:  # closed meanwhile
                return None
            state = session.engine.push(frame, now - session.started)
            session.frames += 1
            return then(session, state)
        finally:
            session.lock.release()

    def close(self, key: str) -> bool:
        """End ``key``'s session (the page unloaded, the stream stopped); False if it had none."""
        with self._lock:
            session = self._sessions.pop(key, None)
        if session is None:
            return False
        with session.lock:  # after the frame being handled, if any
            session.engine.close()
        log.info("live session closed after %d frames (%d running)", session.frames, len(self))
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

    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return draw_skeleton(frame, landmarks) if landmarks is not None else np.ascontiguousarray(frame)


LOG_HEADERS = ["exercise", "from - to", "reps", "pace"]
LOG_COLUMN_WIDTHS = ["34%", "30%", "13%", "23%"]  # a phone's width holds all four
REST_WORDS = "resting"
UNKNOWN_WORDS = "not one of these"


def segment_words(label: str | None, kind: str) -> str:
    """What a segment is, in words: the exercise, "resting" or "not one of these"."""
    if kind == "rest":
        return REST_WORDS
    if kind == "unknown" or not label:
        return UNKNOWN_WORDS
    return readable(label)


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
    a rest has label "rest" or kind "rest") -> rows of the log table, in time order."""
    rows = []
    for s in segments:
        get = s.get if isinstance(s, dict) else (lambda k, d=None, s=s: getattr(s, k, d))
        kind = _kind(get("label"), get("known", True), get("kind"))
        rows.append(
            LogRow(
                what=segment_words(get("label"), kind),
                start_s=float(get("start_s", 0.0)),
                end_s=float(get("end_s", 0.0)),
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
