"""Live mode's sessions: the bound on how many run at once, and each one closed when its stream ends or its page
goes (a fake engine and a fake clock: no model, no waiting)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vidclf.live import LiveSession, LiveSessions, ServerFull, live_view, log_table, view_image

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
    return sessions, engines, clock


def test_at_most_max_sessions_run_and_a_freed_slot_is_taken(live):
    sessions, engines, clock = live
    sessions.push("a", FRAME)
    sessions.push("b", FRAME)
    with pytest.raises(ServerFull, match="All 2 of its live places are taken"):
        sessions.push("c", FRAME)
    assert len(sessions) == 2 and len(engines) == 2  # the refused session built no engine
    sessions.push("a", FRAME)  # the sessions already running go on
    assert sessions.close("b") and engines[1].closed and not engines[0].closed
    _, state = sessions.push("c", FRAME)
    assert state == 1 and len(engines) == 3 and "c" in sessions


def test_frames_go_to_their_own_session_timed_from_its_first_frame(live):
    sessions, engines, clock = live
    sessions.push("a", FRAME)
    clock.now += 0.1
    sessions.push("b", FRAME)
    clock.now += 0.25
    session, state = sessions.push("a", FRAME)
    assert engines[0].times == pytest.approx([0.0, 0.35]) and engines[1].times == [0.0]
    assert state == 2 and session.frames == 2


def test_a_stopped_stream_is_closed_and_its_slot_freed(live):
    sessions, engines, clock = live
    sessions.push("a", FRAME)
    sessions.push("b", FRAME)
    clock.now += 4.0
    sessions.push("b", FRAME)  # b still streams, a has stopped
    clock.now += 1.5  # a: 5.5 s without a frame
    sessions.push("c", FRAME)  # a new session finds a's slot free
    assert engines[0].closed and "a" not in sessions and not engines[1].closed and "c" in sessions
    # a comes back: a new workout, a new engine, timed from zero
    sessions.close("c")
    sessions.push("a", FRAME)
    assert len(engines) == 4 and engines[3].times == [0.0]


def test_the_reaper_closes_a_stopped_stream_with_no_other_frame_coming():
    engines: list[FakeEngine] = []
    sessions = LiveSessions(lambda: engines.append(FakeEngine()) or engines[-1], max_sessions=1, idle_s=0.05)
    reaper = sessions.start_reaper(every_s=0.02)
    try:
        sessions.push("a", FRAME)
        for _ in range(200):
            if engines[0].closed:
                break
            threading.Event().wait(0.01)
        assert engines[0].closed and len(sessions) == 0
    finally:
        sessions.close_all()
    reaper.join(2)
    assert not reaper.is_alive()


def test_the_page_unloading_closes_its_session_once(live):
    sessions, engines, _ = live
    sessions.push("a", FRAME)
    assert sessions.close("a") and engines[0].closed and len(sessions) == 0
    assert not sessions.close("a") and not sessions.close("never-streamed")
    sessions.push("b", FRAME)
    sessions.close_all()
    assert engines[1].closed and len(sessions) == 0


def test_a_frame_that_arrives_while_the_previous_is_handled_is_dropped(live):
    sessions, engines, _ = live
    entered, release = threading.Event(), threading.Event()

    class SlowEngine(FakeEngine):
        def push(self, frame, t_s):
            entered.set()
            release.wait(5)
            return super().push(frame, t_s)

    sessions.make_engine = SlowEngine
    first = threading.Thread(target=sessions.push, args=("a", FRAME))
    first.start()
    assert entered.wait(5)
    assert sessions.push("a", FRAME) is None  # busy: dropped, not queued behind
    release.set()
    first.join(5)
    assert sessions.push("a", FRAME)[1] == 2


def test_no_live_sessions_when_the_bound_is_zero():
    sessions = LiveSessions(FakeEngine, max_sessions=0)
    with pytest.raises(ServerFull, match="turned off"):
        sessions.push("a", FRAME)


def test_the_view_is_small_and_shows_the_skeleton():
    frame = np.zeros((720, 1280, 3), np.uint8)
    lm = np.full((33, 4), np.nan)
    lm[:, 0], lm[:, 1], lm[:, 3] = 0.5, np.linspace(0.05, 0.5, 33), 1.0  # a standing line of joints
    shown = view_image(frame, lm)
    assert shown.shape == (270, 480, 3) and shown.any()
    assert not view_image(frame, None).any()


def test_the_log_in_words():
    segments = [
        {"label": "JumpingJack", "known": True, "start_s": 0.0, "end_s": 10.4, "reps": 5,
         "rep_times": [(1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 6.0)]},
        {"label": "rest", "known": True, "start_s": 10.4, "end_s": 70.0, "reps": 0, "rep_times": []},
        {"label": "PushUps", "known": False, "start_s": 70.0, "end_s": 75.0, "reps": 0, "rep_times": []},
    ]  # fmt: skip
    assert log_table(segments) == [
        ["Jumping Jack", "0:00.0 - 0:10.4", "5", "1.0 s a rep"],
        ["resting", "0:10.4 - 1:10.0", "", ""],
        ["not one of these", "1:10.0 - 1:15.0", "", ""],
    ]


def test_what_the_page_shows_of_a_live_state():
    from types import SimpleNamespace as NS

    jacks = NS(label="JumpingJack", known=True, kind="exercise", start_s=2.0, end_s=9.0, reps=4,
               rep_times=[(2.5, 4.0), (4.0, 5.5), (5.5, 7.0), (7.0, 8.5)])  # fmt: skip
    rest = NS(label="rest", known=False, kind="rest", start_s=0.0, end_s=2.0, reps=0, rep_times=[])
    session = LiveSession(FakeEngine(), started=0.0, last_seen=9.0)
    state = NS(t_s=9.0, status="exercise", label="JumpingJack", set_reps=4, landmarks=None, segments=[rest, jacks])
    view = live_view(FRAME, state, session)
    assert view.status.startswith("### Jumping Jack: 4  \nrepetitions in this set")
    assert "1 set so far" in view.status and "0:09.0 into the workout" in view.status
    assert view.table == [["resting", "0:00.0 - 0:02.0", "", ""], ["Jumping Jack", "0:02.0 - now", "4", "1.5 s a rep"]]
    # the same log a frame later: not sent again
    later = NS(**{**vars(state), "t_s": 9.1, "segments": [rest, NS(**{**vars(jacks), "end_s": 9.1})]})
    assert live_view(FRAME, later, session).table is None
    resting = NS(t_s=12.0, status="rest", label=None, set_reps=0, landmarks=None, segments=[rest])
    assert live_view(FRAME, resting, session).status.startswith("### Resting")
    warming = NS(t_s=1.0, status="warming up", label=None, set_reps=0, landmarks=None, segments=[])
    assert "### Looking for you" in live_view(FRAME, warming, session).status


def test_a_full_server_says_so_on_the_page():
    sessions = LiveSessions(FakeEngine, max_sessions=1)
    sessions.push("a", FRAME)
    view = sessions.step("b", FRAME)
    assert view.status.startswith("### The server is full") and "one live place is taken" in view.status
    assert view.table is None and view.image.shape == FRAME.shape
