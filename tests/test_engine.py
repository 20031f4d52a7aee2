"""The online workout engine on synthetic workouts with known segments: the figures' own joints stand in for
BlazePose (an injected tracker), so no MediaPipe is needed."""

from __future__ import annotations

import numpy as np
import pytest

from vidclf.data.synthetic import render_clip_with_landmarks
from vidclf.engine import EngineSettings, WorkoutEngine, WorkoutLog

FPS = 25.0


def _part(action: str, seconds: float, cycles: float, *, group: int = 91, clip: int = 1):
    frames, marks = render_clip_with_landmarks(
        action, group, clip, num_frames=int(seconds * FPS), cycles=cycles, size=(96, 96)
    )
    return frames, marks


def _still(part, seconds: float):
    """The last frame of ``part`` held for ``seconds``: a pause where nobody moves."""
    frames, marks = part
    n = int(seconds * FPS)
    return np.repeat(frames[-1:], n, 0), np.repeat(marks[-1:], n, 0)


def _join(*parts):
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class _Tracker:
    """The figure's joints, looked up by the frame the engine tracks; counts frames tracked and closes."""

    def __init__(self, frames: np.ndarray, marks: np.ndarray):
        self.by_frame = {f.tobytes(): m for f, m in zip(frames, marks)}
        self.calls = 0
        self.closed = False

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.by_frame[frame.tobytes()]

    def close(self) -> None:
        self.closed = True


def _run(predictor, frames, marks, settings=None) -> tuple[WorkoutLog, list, _Tracker]:
    tracker = _Tracker(frames, marks)
    states = []
    with WorkoutEngine(predictor, settings, tracker=tracker) as engine:
        for i, frame in enumerate(frames):
            states.append(engine.push(frame, i / FPS))
        log = engine.finish()
    return log, states, tracker


@pytest.fixture(scope="module")
def pose_predictor(synthetic_pose_run):
    from vidclf.predict import Predictor

    return Predictor(synthetic_pose_run / "best.pt")


def test_a_workout_is_its_sets_and_rests(pose_predictor):
    """Squats, a still pause, waves, a pause, squats again: five segments with their labels, boundaries within
    one second, every repetition counted and the pauses counting nothing."""
    squats = _part("SynthSquat", 12, 6)
    waves = _part("SynthWave", 10, 5, clip=2)
    again = _part("SynthSquat", 8, 4, clip=3)
    frames, marks = _join(squats, _still(squats, 8), waves, _still(waves, 9), again)
    log, states, tracker = _run(pose_predictor, frames, marks)
    truth = [("SynthSquat", 0, 12, 6), ("rest", 12, 20, 0), ("SynthWave", 20, 30, 5), ("rest", 30, 39, 0)]
    truth.append(("SynthSquat", 39, 47, 4))
    got = [(s.label, s.start_s, s.end_s, s.reps) for s in log.segments]
    assert [g[0] for g in got] == [t[0] for t in truth], got
    for (_, start, end, reps), seg in zip(truth, log.segments):
        assert abs(seg.start_s - start) <= 1.0 and abs(seg.end_s - end) <= 1.0, got
        assert seg.reps == reps and len(seg.rep_times) == reps, got
        assert all(seg.start_s - 1e-6 <= a < b <= seg.end_s + 1e-6 for a, b in seg.rep_times), got
    assert [s.known for s in log.segments] == [True, False, True, False, True]
    assert log.reps == 15 and len(log.rep_times) == 15
    assert tracker.closed
    # frames are tracked at the engine's rate (10 a second), not at the clip's 25
    assert abs(tracker.calls - len(frames) / FPS * 10) <= 2


def test_the_count_shown_never_goes_down_and_the_live_state_follows(pose_predictor):
    squats = _part("SynthSquat", 10, 5)
    frames, marks = _join(squats, _still(squats, 6))
    log, states, _ = _run(pose_predictor, frames, marks)
    assert states[0].status == "warming up" and states[0].segments == []
    shown = [s.set_reps for s in states if s.status == "exercise"]
    assert shown == sorted(shown) and shown[-1] == 5
    assert states[-1].status == "rest" and states[-1].set_reps == 0
    assert any(s.status == "exercise" and s.label == "SynthSquat" for s in states if s.t_s < 4.0)
    assert states[-1].landmarks is not None and states[-1].landmarks.shape == (33, 4)
    assert [s.label for s in log.segments] == ["SynthSquat", "rest"] and log.segments[0].reps == 5


@pytest.mark.parametrize(("cycles", "phase"), [(4, 0.0), (4.5, 0.0), (4.5, 0.5)])
def test_half_repetitions_at_either_end_are_not_counted(pose_predictor, cycles, phase):
    """4.5 cycles hold 4 whole repetitions wherever the half is, and the count says so."""
    frames, marks = render_clip_with_landmarks(
        "SynthSquat", 91, 1, num_frames=int(9 * FPS), cycles=cycles, phase=phase, size=(96, 96)
    )
    log, _, _ = _run(pose_predictor, frames, marks)
    assert len(log.segments) == 1 and log.segments[0].label == "SynthSquat"
    assert log.reps == 4


def test_a_change_of_tempo_within_a_set_is_counted(pose_predictor):
    slow = _part("SynthSquat", 9, 3)  # 3 s a repetition
    fast = _part("SynthSquat", 6, 4)  # 1.5 s a repetition, the same figure
    frames, marks = _join(slow, fast)
    log, _, _ = _run(pose_predictor, frames, marks)
    assert log.reps == 7, log.to_csv()
    assert all(s.label == "SynthSquat" for s in log.segments)


def test_nobody_and_nothing_moving_is_rest(pose_predictor):
    frames, marks = _still(_part("SynthSquat", 1, 1), 12)
    nobody = np.full_like(marks, np.nan)
    log, states, _ = _run(pose_predictor, frames, nobody)
    assert [s.label for s in log.segments] == ["rest"] and log.reps == 0
    assert states[-1].status == "rest"


def test_memory_is_bounded_on_a_long_stream(pose_predictor):
    """Four minutes of squats at 10 frames a second (12 times the history kept): the frames and signals kept
    stay what one window needs."""
    frames, marks = render_clip_with_landmarks("SynthSquat", 91, 1, num_frames=100, cycles=1, size=(48, 48))
    tracker = _Tracker(frames, marks)
    engine = WorkoutEngine(pose_predictor, EngineSettings(history_s=20.0), tracker=tracker)
    sizes = []
    for i in range(2400):  # 240 s at 10 frames a second: a 10 s squat, looped
        engine.push(frames[i % 100], i / 10.0)
        if i % 400 == 399:
            sizes.append(engine.buffered())
    log = engine.finish()
    assert max(sizes[1:]) <= sizes[0] + 5, sizes  # what it holds after 40 s is what it holds after 240 s
    assert sizes[0] < 1000
    assert log.reps >= 22


def test_frames_out_of_order_are_refused(pose_predictor):
    frames, marks = _part("SynthSquat", 1, 1)
    with WorkoutEngine(pose_predictor, tracker=_Tracker(frames, marks)) as engine:
        engine.push(frames[0], 1.0)
        with pytest.raises(ValueError, match="time order"):
            engine.push(frames[1], 0.5)
        with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
            engine.push(frames[:, :, :, 0], 1.5)


def test_the_log_as_csv_and_json():
    from vidclf.engine import Segment

    log = WorkoutLog(
        [
            Segment("SynthSquat", True, 0.0, 12.0, 2, [(1.0, 3.0), (4.0, 6.5)], 0.9),
            Segment("rest", False, 12.0, 20.0),
        ],
        20.0,
    )
    rows = log.to_csv().splitlines()
    assert rows[0].startswith("label,known,start_s,end_s,reps,reps_per_min")
    assert rows[1].split(",")[:6] == ["SynthSquat", "True", "0.00", "12.00", "2", "10.0"]
    assert rows[1].endswith("1.00-3.00 4.00-6.50") and rows[2].startswith("rest,False,12.00,20.00,0")
    d = log.to_dict()
    assert d["reps"] == 2 and d["segments"][0]["rep_times"] == [[1.0, 3.0], [4.0, 6.5]]


class _Recording(_Tracker):
    """The figure's joints, and ``(t, landmarks)`` of every frame tracked, as a file's pass records them."""

    def __init__(self, frames: np.ndarray, marks: np.ndarray):
        super().__init__(frames, marks)
        self.t, self.marks = 0.0, []

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        lm = super().__call__(frame)
        self.marks.append((self.t, lm))
        return lm


def _file_log(predictor, frames, marks) -> tuple[WorkoutLog, list, list]:
    """The engine's log of the frames as a file's pass makes it, with every frame's picture signal and the
    tracked joints: what counting a set whole reads."""
    from vidclf.reps import frame_signal

    tracker = _Recording(frames, marks)
    with WorkoutEngine(predictor, tracker=tracker) as engine:
        for i, frame in enumerate(frames):
            tracker.t = i / FPS
            engine.push(frame, tracker.t)
        log = engine.finish()
    return log, list(frame_signal(frames)), tracker.marks


def _answer(label: str):
    from types import SimpleNamespace

    return SimpleNamespace(label=label, known=True, confidence=0.9)


def test_a_long_set_keeps_its_online_events(pose_predictor):
    """24 s of squats, four slow (3 s each), then ten fast (1.2 s): one period over the whole set counts 10;
    the online events count all 14, and a set this long keeps them (where it has any)."""
    from vidclf.predict import LONG_SET_S, _counted_whole, _one_set_counted_whole

    frames, marks = _join(_part("SynthSquat", 12, 4), _part("SynthSquat", 12, 10))
    log, pictures, tracked = _file_log(pose_predictor, frames, marks)
    assert log.reps == 14, log.to_csv()
    assert (
        len(frames) / FPS > LONG_SET_S and _counted_whole(pictures, tracked, fps=FPS, start=0.0, end=24.0).count != 14
    )
    assert _one_set_counted_whole(log, _answer("SynthSquat"), pictures=pictures, marks=tracked, fps=FPS).reps == 14
    # a long set the online counter found nothing in is counted whole: a count, never 0 for a clear set
    from vidclf.engine import Segment

    uncounted = WorkoutLog([Segment("SynthSquat", True, 0.0, 24.0)], 24.0)
    whole = _counted_whole(pictures, tracked, fps=FPS, start=0.0, end=24.0).count
    assert (
        whole > 0
        and _one_set_counted_whole(uncounted, _answer("SynthSquat"), pictures=pictures, marks=tracked, fps=FPS).reps
        == whole
    )


def test_a_set_whose_label_wavers_is_counted_whole_as_one_movement(pose_predictor):
    """A short set the engine split between two labels with no rest between (its label wavered; each part's
    counter started afresh and completed nothing) is one movement: counted whole, its repetitions go to the
    parts they happen in. With a rest between, they are two sets and keep their own counts."""
    from vidclf.engine import Segment
    from vidclf.predict import _one_set_counted_whole

    frames, marks = _part("SynthSquat", 10, 5)
    log, pictures, tracked = _file_log(pose_predictor, frames, marks)
    wavered = WorkoutLog([Segment("SynthSquat", True, 0.0, 4.0), Segment("SynthWave", True, 4.0, 10.0)], 10.0)
    counted = _one_set_counted_whole(wavered, _answer("SynthSquat"), pictures=pictures, marks=tracked, fps=FPS)
    assert counted.reps == 5 and [s.reps for s in counted.segments] == [len(s.rep_times) for s in counted.segments]
    for s in counted.segments:
        assert all(s.start_s - 1.0 <= (a + b) / 2 <= s.end_s + 1.0 for a, b in s.rep_times)
    rested = WorkoutLog(
        [wavered.segments[0], Segment("rest", False, 4.0, 5.0), Segment("SynthWave", True, 5.0, 10.0)], 10.0
    )
    assert _one_set_counted_whole(rested, _answer("SynthSquat"), pictures=pictures, marks=tracked, fps=FPS).reps == 0


def test_a_frame_feed_consumes_in_order_behind_the_reader_and_gives_back_its_error():
    """The engine's thread takes the frames in order, within its memory bound, with its torch on one thread;
    the reader's thread keeps its own threads, and a failure on the engine's side reaches the reader."""
    import threading

    import torch

    from vidclf.engine import FrameFeed

    own = torch.get_num_threads()
    torch.set_num_threads(2)  # the process's count (a Space's 2 cores), whatever the suite runs with
    before = torch.get_num_threads()
    seen, threads, queued = [], [], []
    frame = np.zeros((64, 64, 3), np.uint8)

    def consume(f, t):
        seen.append(t)
        threads.append((threading.current_thread().name, torch.get_num_threads()))

    with FrameFeed(consume, max_bytes=4 * frame.nbytes) as feed:
        for i in range(50):
            feed.put(frame.copy(), i / 10)
            queued.append(feed._queue.qsize())
        feed.close()
    assert seen == [i / 10 for i in range(50)] and max(queued) <= 4
    assert {n for n, _ in threads} == {"vidclf-engine"} and {k for _, k in threads} == {1}
    assert torch.get_num_threads() == before  # this thread's count, untouched
    fresh: list[int] = []
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    torch.set_num_threads(own)
    assert before == 2 and fresh == [2]  # the count a new thread starts with is put back

    def broken(f, t):
        if t >= 0.3:
            raise ValueError("the tracker failed")

    with pytest.raises(ValueError, match="the tracker failed"):
        with FrameFeed(broken, max_bytes=2 * frame.nbytes) as feed:
            for i in range(1000):  # the reader stops on the error, not after 1000 frames
                feed.put(frame, i / 10)
            feed.close()


def test_a_720p_frame_is_tracked_at_320x180_within_one_grey_level_of_the_exact_average(pose_predictor):
    """The engine halves a frame whose factor is a multiple of 4 before averaging (a third of the cost); other
    factors (1080x1920's 6) are the exact area average."""
    import cv2

    rng = np.random.default_rng(0)
    for shape, size, most in (((720, 1280, 3), (180, 320), 1), ((1920, 1080, 3), (320, 180), 0)):
        frame = cv2.GaussianBlur(rng.integers(0, 256, shape, np.uint8), (0, 0), 3)
        with WorkoutEngine(pose_predictor, tracker=lambda f: np.full((33, 4), np.nan, np.float32)) as engine:
            small = engine._resize(frame, bgr=True)
        exact = cv2.cvtColor(cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        assert small.shape == exact.shape and np.abs(small.astype(int) - exact).max() == most
