"""Live mode's sessions: the bound on how many run at once, and each one closed when its stream ends or its page
goes (a fake engine and a fake clock: no model, no waiting)."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from vidclf.errors import VidclfError

from vidclf.live import LiveSession, LiveSessions, ServerFull, live_view, log_rows, log_table, view_image

FRAME = np.zeros((240, 320, 3), np.uint8)


class FakeEngine:
    def __init__(self):
        self.times: list[float] = []
        self.closed = False

    def push(self, frame, t_s):
        assert not self.closed
        self.times.append(t_s)
        return len(self.times)

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def live():
    engines: list[FakeEngine] = []

    def make():
        engines.append(FakeEngine())
        return engines[-1]

    clock = Clock()
    sessions = LiveSessions(make, max_sessions=2, idle_s=5.0, clock=clock)
    yield sessions, engines, clock
    sessions.close_all()


def push(sessions: LiveSessions, key: str) -> LiveSession:
    """A frame for ``key``, once its engine has handled it."""
    session = sessions.put(key, FRAME)
    assert session.drain(5)
    return session


def test_at_most_max_sessions_run_and_a_freed_place_is_taken(live):
    sessions, engines, clock = live
    push(sessions, "a")
    push(sessions, "b")
    with pytest.raises(ServerFull, match="All 2 of its live places are taken"):
        sessions.put("c", FRAME)
    assert len(sessions) == 2 and len(engines) == 2  # the refused session built no engine
    push(sessions, "a")  # the sessions already running go on
    assert sessions.close("b") and engines[1].closed and not engines[0].closed
    assert push(sessions, "c").latest[1] == 1 and len(engines) == 3 and "c" in sessions


def test_frames_go_to_their_own_session_timed_from_its_first_frame(live):
    sessions, engines, clock = live
    push(sessions, "a")
    clock.now += 0.1
    push(sessions, "b")
    clock.now += 0.25
    session = push(sessions, "a")
    assert engines[0].times == pytest.approx([0.0, 0.35]) and engines[1].times == [0.0]
    assert session.latest[1] == 2 and session.frames == 2


def test_a_stopped_stream_is_closed_and_its_place_freed(live):
    sessions, engines, clock = live
    push(sessions, "a")
    push(sessions, "b")
    clock.now += 4.0
    push(sessions, "b")  # b still streams, a has stopped
    clock.now += 1.5  # a: 5.5 s without a frame
    push(sessions, "c")  # a new session finds a's place free
    assert engines[0].closed and "a" not in sessions and not engines[1].closed and "c" in sessions
    # a comes back: a new workout, a new engine, timed from zero
    sessions.close("c")
    push(sessions, "a")
    assert len(engines) == 4 and engines[3].times == [0.0]


def test_the_reaper_closes_a_stopped_stream_with_no_other_frame_coming():
    engines: list[FakeEngine] = []
    sessions = LiveSessions(lambda: engines.append(FakeEngine()) or engines[-1], max_sessions=1, idle_s=0.05)
    reaper = sessions.start_reaper(every_s=0.02)
    try:
        push(sessions, "a")
        for _ in range(200):
            if engines[0].closed:
                break
            threading.Event().wait(0.01)
        assert engines[0].closed and len(sessions) == 0
    finally:
        sessions.close_all()
    reaper.join(2)
    assert not reaper.is_alive()


def test_the_page_unloading_closes_its_session_and_its_thread(live):
    sessions, engines, _ = live
    session = push(sessions, "a")
    assert sessions.close("a") and engines[0].closed and len(sessions) == 0
    assert not session.worker.is_alive()
    assert not sessions.close("a") and not sessions.close("never-streamed")
    push(sessions, "b")
    sessions.close_all()
    assert engines[1].closed and len(sessions) == 0


def test_a_slow_frame_delays_the_page_not_the_times_of_the_frames_behind_it(live):
    """A classification that takes the engine seconds must not leave a gap in the frames' times: a gap looks
    like a person standing still."""
    sessions, engines, clock = live
    entered, release = threading.Event(), threading.Event()

    class SlowEngine(FakeEngine):
        def push(self, frame, t_s):
            if not self.times:
                entered.set()
                release.wait(5)
            return super().push(frame, t_s)

    sessions.make_engine = lambda: engines.append(SlowEngine()) or engines[-1]
    assert sessions.step("a", FRAME) is None  # nothing handled yet: nothing new to show
    assert entered.wait(5)
    for _ in range(5):  # the stream goes on while the engine is busy
        clock.now += 0.1
        assert sessions.step("a", FRAME) is None
    release.set()
    assert sessions.get("a").drain(5)
    assert engines[0].times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])


class Broken(FakeEngine):
    def push(self, frame, t_s):
        raise RuntimeError("boom")


def unbuildable():
    raise RuntimeError("boom")


def test_a_busy_engine_gets_fewer_frames_evenly_spread_and_the_page_stays_close_behind(live):
    sessions, engines, clock = live
    entered, release = threading.Event(), threading.Event()

    class StuckEngine(FakeEngine):
        def push(self, frame, t_s):
            if not self.times:
                entered.set()
                release.wait(5)
            return super().push(frame, t_s)

    sessions.make_engine = lambda: engines.append(StuckEngine()) or engines[-1]
    sessions.put("a", FRAME)
    assert entered.wait(5)
    for _ in range(150):  # 15 s of frames while the engine is stuck on the first
        clock.now += 0.1
        sessions.put("a", FRAME)
    release.set()
    session = sessions.get("a")
    assert session.drain(5)
    times = np.array(engines[0].times[1:])
    assert times[-1] == pytest.approx(15.0)  # the newest frame is always kept
    assert times[-1] - times[0] <= 10.0 + 1e-9  # at most 10 s behind
    assert np.diff(times).max() <= 0.5 + 1e-9  # evenly spread: no gap that looks like standing still
    assert session.frames + session.dropped == 151 and session.dropped > 110


@pytest.mark.parametrize("make", [Broken, unbuildable])
def test_a_failing_engine_ends_its_session_with_a_message(live, make):
    sessions, engines, _ = live
    sessions.make_engine = make
    with pytest.raises(VidclfError, match="live mode stopped: boom"):
        for _ in range(500):  # the stream goes on until the page is told
            sessions.put("a", FRAME)
            threading.Event().wait(0.01)
    assert "a" not in sessions


def test_no_live_sessions_when_the_bound_is_zero():
    sessions = LiveSessions(FakeEngine, max_sessions=0)
    with pytest.raises(ServerFull, match="turned off"):
        sessions.put("a", FRAME)


def test_the_view_is_small_and_shows_the_skeleton():
    frame = np.zeros((720, 1280, 3), np.uint8)
    lm = np.full((33, 4), np.nan)
    lm[:, 0], lm[:, 1], lm[:, 3] = 0.5, np.linspace(0.05, 0.5, 33), 1.0  # a standing line of joints
    shown = view_image(frame, lm)
    assert shown.shape == (270, 480, 3) and shown.any()
    assert not view_image(frame, None).any()


def test_the_log_leaves_out_what_lasted_no_time_and_joins_a_pause():
    from vidclf.engine import Segment

    segments = [
        Segment("rest", False, 0.0, 4.0),
        Segment("JumpingJack", True, 4.0, 12.0, 4, [(4.5, 6.0), (6.5, 8.0), (8.5, 10.0), (10.5, 12.0)]),
        Segment("rest", False, 12.0, 17.5),
        Segment("unknown", False, 17.5, 17.5),
        Segment("rest", False, 17.5, 21.0),
        Segment("JumpingJack", True, 21.0, 21.0),  # just begun
    ]
    assert [(r.what, r.start_s, r.end_s) for r in log_rows(segments)] == [
        ("resting", 0.0, 4.0),
        ("Jumping jacks", 4.0, 12.0),
        ("resting", 12.0, 21.0),
        ("Jumping jacks", 21.0, 21.0),
    ]


def test_the_log_in_words():
    segments = [
        {"label": "JumpingJack", "known": True, "start_s": 0.0, "end_s": 10.4, "reps": 5,
         "rep_times": [(1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 6.0)]},
        {"label": "rest", "known": True, "start_s": 10.4, "end_s": 70.0, "reps": 0, "rep_times": []},
        {"label": "PushUps", "known": False, "start_s": 70.0, "end_s": 75.0, "reps": 0, "rep_times": []},
    ]  # fmt: skip
    assert log_table(segments) == [
        ["Jumping jacks", "0:00.0 - 0:10.4", "5", "1.0 s a rep"],
        ["resting", "0:10.4 - 1:10.0", "", ""],
        ["not one of these", "1:10.0 - 1:15.0", "", ""],
    ]


def test_what_the_page_shows_of_a_live_state():
    from vidclf.engine import LiveState, Segment

    rest = Segment("rest", False, 0.0, 2.0)
    jacks = Segment("JumpingJack", True, 2.0, 9.0, 4, [(2.5, 4.0), (4.0, 5.5), (5.5, 7.0), (7.0, 8.5)], 0.9)
    session = LiveSession(FakeEngine, started=0.0, last_seen=9.0)
    state = LiveState(9.0, "exercise", "JumpingJack", 0.9, 4, None, [rest, jacks])
    view = live_view(FRAME, state, session)
    assert view.status.startswith("### Jumping jacks: 4  \nrepetitions in this set")
    assert "1 set so far" in view.status and "0:09.0 into the workout" in view.status
    assert view.table == [["resting", "0:00.0 - 0:02.0", "", ""], ["Jumping jacks", "0:02.0 - now", "4", "1.5 s a rep"]]
    # the same log a frame later: not sent again
    later = LiveState(9.1, "exercise", "JumpingJack", 0.9, 4, None, [rest, dataclasses.replace(jacks, end_s=9.1)])
    assert live_view(FRAME, later, session).table is None
    unknown = LiveState(12.0, "unknown", None, 0.3, 0, None, [rest, jacks, Segment("unknown", False, 9.0, 12.0)])
    view = live_view(FRAME, unknown, session)
    assert view.status.startswith("### Not one of these") and view.table[-1][:3] == [
        "not one of these",
        "0:09.0 - now",
        "",
    ]
    resting = LiveState(14.0, "rest", None, 0.0, 0, None, [rest, jacks, Segment("rest", False, 9.0, 14.0)])
    assert live_view(FRAME, resting, session).status.startswith("### Resting")
    person = np.zeros((33, 4), np.float32)
    warming = LiveState(1.0, "warming up", None, 0.0, 0, person, [Segment("unknown", False, 0.0, 1.0)])
    view = live_view(FRAME, warming, session)
    assert view.status.startswith("### Watching...") and view.table == [["watching...", "0:00.0 - now", "", ""]]
    nobody = LiveState(1.0, "warming up", None, 0.0, 0, np.full((33, 4), np.nan, np.float32), [])
    assert live_view(FRAME, nobody, session).status.startswith("### Looking for you")


def test_a_full_server_says_so_on_the_page():
    sessions = LiveSessions(FakeEngine, max_sessions=1)
    push(sessions, "a")
    view = sessions.step("b", FRAME)
    assert view.status.startswith("### The server is full") and "one live place is taken" in view.status
    assert view.table is None and view.image.shape == FRAME.shape


def test_a_files_log_on_the_page_one_chart_one_table_one_count():
    from vidclf.engine import Segment, WorkoutLog
    from vidclf.live import workout_view
    from vidclf.answer import log_words

    log = WorkoutLog(
        [
            Segment("JumpingJack", True, 0.0, 8.7, 4, [(0.2, 1.2), (2.3, 3.3), (4.4, 5.4), (6.5, 7.5)], 0.9),
            Segment("rest", False, 8.7, 13.7),
            Segment("BodyWeightSquats", True, 13.7, 20.1, 3, [(14.5, 16.0), (16.6, 18.1), (18.6, 20.0)], 0.8),
            Segment("unknown", False, 20.1, 23.2),
        ],
        23.2,
    )
    fig, title, table = workout_view(log)
    assert title == "When does each exercise happen? 2 sets, 7 repetitions (each one ticked)"
    assert [row[0] for row in table] == ["Jumping jacks", "resting", "Body-weight squats", "not one of these"]
    assert [row[2] for row in table] == ["4", "", "3", ""] and table[0][3] == "1.8 s a rep"
    spans = [(t.name, t.base[0], t.base[0] + t.x[0]) for t in fig.data if t.type == "bar"]
    assert spans == [
        ("Jumping jacks", 0.0, 8.7),
        ("resting", 8.7, 13.7),
        ("Body-weight squats", 13.7, 20.1),
        ("not one of these", 20.1, pytest.approx(23.2)),
    ]
    ticks = next(t for t in fig.data if t.name == "repetition")
    assert list(ticks.x) == [1.2, 3.3, 5.4, 7.5, 16.0, 18.1, 20.0] and list(ticks.text) == list("1234123")
    assert fig.layout.xaxis.range == (0, 23.2)
    assert log_words(log) == "**7 repetitions** in 2 sets (the workout log has each one)."
    one = WorkoutLog(log.segments[:1], 8.7)
    assert log_words(one) == "**4 repetitions**, about one every 1.8 s (the workout log has each one)."
    assert log_words(WorkoutLog([Segment("rest", False, 0.0, 5.0)], 5.0)) == "No repetition found."
