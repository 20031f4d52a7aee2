"""Counting repetitions: exact on synthetic clips whose repetitions are known, nothing invented elsewhere."""

import numpy as np
import pytest

from conftest import needs_shared
from vidclf.data.synthetic import render_clip_with_landmarks
from vidclf.reps import count_repetitions, frame_signal


@pytest.mark.parametrize("action", ["SynthJumpingJack", "SynthSquat", "SynthWave"])
@pytest.mark.parametrize("cycles, num_frames, phase", [(3, 120, 0.0), (5, 200, 0.3), (8, 160, 0.0), (12, 200, 0.6)])
def test_exact_counts_on_clips_with_known_repetitions(action, cycles, num_frames, phase):
    frames, _ = render_clip_with_landmarks(
        action, 3, 1, num_frames=num_frames, cycles=cycles, phase=phase, size=(96, 128)
    )
    reps = count_repetitions(frame_signal(frames), 25.0)
    assert reps.count == cycles
    assert reps.period_s == pytest.approx(num_frames / cycles / 25.0, rel=0.1)
    assert len(reps.times) == cycles and all(a < b for a, b in reps.times)
    assert reps.times == sorted(reps.times) and reps.times[-1][1] <= num_frames / 25.0 + 1e-6
    assert 0.3 <= reps.confidence <= 1.0


@pytest.mark.parametrize("cycles", [2.5, 4.5])
def test_a_partial_repetition_at_the_end_moves_the_count_by_at_most_one(cycles):
    frames, _ = render_clip_with_landmarks("SynthJumpingJack", 4, 2, num_frames=150, cycles=cycles, size=(96, 128))
    assert abs(count_repetitions(frame_signal(frames), 25.0).count - cycles) <= 0.5


@pytest.mark.parametrize("action", ["SynthSquat", "SynthJumpingJack"])
def test_a_single_repetition_is_one(action):
    frames, _ = render_clip_with_landmarks(action, 5, 1, num_frames=60, cycles=1, size=(96, 128))
    reps = count_repetitions(frame_signal(frames), 25.0)
    assert reps.count == 1 and reps.period_s is None
    ((start, end),) = reps.times
    assert 0.3 < start < 1.2 < end < 2.1  # the movement is out of its rest pose around the middle of the clip


@pytest.mark.parametrize("action, cycles, num_frames", [("SynthSquat", 3, 90), ("SynthWave", 2, 70)])
def test_a_short_clip_that_drifts_is_counted(action, cycles, num_frames):
    """Two or three repetitions in a clip of 3-4 s while the person moves across the frame (or the camera
    pans): the drift is a straight line in the joints' path, slower than any period the clip can hold, and
    is removed; left in, it hid the period (0 counted)."""
    from vidclf.models.pose import landmark_signal

    _, marks = render_clip_with_landmarks(action, 3, 1, num_frames=num_frames, cycles=cycles, size=(96, 128))
    marks = marks.copy()
    marks[:, :, 0] += np.linspace(0.0, 0.3, num_frames)[:, None]  # a third of the frame in the clip's time
    joints = marks[::2]  # 12.5 a second, about the workout engine's rate
    reps = count_repetitions(landmark_signal(joints), 12.5)
    assert reps.count == cycles
    assert reps.period_s == pytest.approx(num_frames / cycles / 25.0, rel=0.15)


def test_no_repetition_is_invented():
    still = np.full((100, 96, 128, 3), 120, np.uint8)
    noise = (np.random.default_rng(0).random((100, 96, 128, 3)) * 255).astype(np.uint8)
    for frames in (still, noise, still[:5]):
        reps = count_repetitions(frame_signal(frames), 25.0)
        assert reps.count == 0 and not reps.found and reps.times == []


def test_prediction_carries_the_count(tmp_path):
    from conftest import ROOT
    from vidclf.predict import Predictor

    frames, _ = render_clip_with_landmarks("SynthSquat", 90, 1, num_frames=150, cycles=5, size=(96, 96))
    p = Predictor(ROOT / "weights" / "synthetic.pt").predict_frames(frames, fps=25.0)
    d = p.to_dict()
    assert d["reps"] == 5 and len(d["rep_times"]) == 5 and d["rep_period_s"] == pytest.approx(1.2, rel=0.1)


def _known_estimator(frames, landmarks):
    """A pose estimator that knows the joints the synthetic figure was drawn with."""
    by_frame = {f.tobytes(): lm for f, lm in zip(frames, landmarks)}
    return lambda batch: np.stack([by_frame[f.tobytes()] for f in batch])


@pytest.mark.parametrize("cycles", [3, 4])
def test_a_shaking_camera_is_counted_from_the_joints(synthetic_pose_run, cycles):
    """A hand-held camera shakes the picture, not the person's joints: the joints are the surer count."""
    from vidclf.predict import Predictor

    frames, landmarks = render_clip_with_landmarks("SynthSquat", 91, 1, num_frames=200, cycles=cycles, size=(96, 96))
    shake = np.random.default_rng(cycles).integers(-8, 9, size=(len(frames), 2))
    frames = np.stack([np.roll(f, tuple(d), axis=(0, 1)) for f, d in zip(frames, shake)])
    predictor = Predictor(synthetic_pose_run / "best.pt", pose_estimator=_known_estimator(frames, landmarks))
    reps = predictor.predict_frames(frames, fps=25.0).reps
    assert reps.source == "pose" and reps.count == cycles
    assert reps.period_s == pytest.approx(200 / cycles / 25.0, rel=0.15)
    assert len(reps.times) == cycles and reps.times == sorted(reps.times) and reps.times[-1][1] <= 8.0 + 1e-6


def test_a_long_hand_held_clip_is_counted_from_the_joints(synthetic_pose_run):
    """Half a minute of squats filmed by a shaking hand: the picture's motion is mostly the camera, and the
    pose stream's own 16 frames would see one squat in two; the clip's pose grid (8 frames a second) counts
    every one."""
    from vidclf.predict import Predictor

    frames, landmarks = render_clip_with_landmarks("SynthSquat", 93, 1, num_frames=750, cycles=15, size=(64, 64))
    shake = np.random.default_rng(0).integers(-6, 7, size=(len(frames), 2))
    frames = np.stack([np.roll(f, tuple(d), axis=(0, 1)) for f, d in zip(frames, shake)])
    predictor = Predictor(synthetic_pose_run / "best.pt", pose_estimator=_known_estimator(frames, landmarks))
    reps = predictor.predict_frames(frames, fps=25.0).reps
    assert reps.source == "pose" and reps.count == 15 and reps.period_s == pytest.approx(2.0, rel=0.1)


def test_a_movement_too_fast_for_the_joints_is_counted_from_the_picture(synthetic_pose_run):
    """The model estimates the body 10 times a second here: nearly 4 repetitions a second are too fast for
    that (an alias of a slower movement is what the joints would show), so the picture's motion counts them."""
    from vidclf.predict import Predictor

    frames, landmarks = render_clip_with_landmarks("SynthSquat", 91, 1, num_frames=200, cycles=30, size=(96, 96))
    predictor = Predictor(synthetic_pose_run / "best.pt", pose_estimator=_known_estimator(frames, landmarks))
    reps = predictor.predict_frames(frames, fps=25.0).reps
    # the period is a whole number of frames: at under 7 frames a repetition the count is near, not exact
    assert reps.source == "pixels" and abs(reps.count - 30) <= 2


def test_without_a_person_the_picture_is_counted(synthetic_pose_run):
    """A model of the picture counts the picture's motion where nobody is found; a model that reads the body
    cannot vouch for a clip with no body in it ("not one of these"), and a segment that is not one of the
    classes counts nothing."""
    from conftest import ROOT
    from vidclf.predict import Predictor

    frames, landmarks = render_clip_with_landmarks("SynthSquat", 92, 1, num_frames=150, cycles=5, size=(96, 96))
    nobody = lambda batch: np.full((len(batch), 33, 4), np.nan, np.float32)  # noqa: E731
    reps = Predictor(ROOT / "weights" / "synthetic.pt", pose_estimator=nobody).predict_frames(frames, fps=25.0).reps
    assert reps.source == "pixels" and reps.count == 5
    p = Predictor(synthetic_pose_run / "best.pt", pose_estimator=nobody).predict_frames(frames, fps=25.0)
    assert p.workout is not None and [s.label for s in p.workout.segments] == ["unknown"]
    assert p.reps is not None and p.reps.count == 0 and p.to_dict()["segments"][0]["reps"] == 0


@needs_shared
def test_predict_json_gives_the_repetitions_of_a_real_clip(capsys, tmp_path):
    """A real jumping-jack clip counted by eye at 3 (docs/rep_counts.csv), through the command line: one set,
    one segment, its repetitions the clip's; the log as CSV."""
    import json

    from conftest import ROOT, UCF_ROOT
    from train_cli import main

    clip = UCF_ROOT / "UCF-101" / "JumpingJack" / "v_JumpingJack_g10_c01.avi"
    csv_path = tmp_path / "log.csv"
    args = ["predict", "--checkpoint", str(ROOT / "weights" / "fusion.pt"), str(clip), "--json", "--csv", str(csv_path)]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["label"] == "JumpingJack" and abs(out["reps"] - 3) <= 1
    assert len(out["rep_times"]) == out["reps"] and out["rep_source"] in ("pose", "pixels")
    assert all(0 <= a < b <= 2.4 for a, b in out["rep_times"])  # the clip is 2.3 s long
    [segment] = out["segments"]
    assert segment["label"] == "JumpingJack" and segment["known"] and segment["reps"] == out["reps"]
    assert segment["rep_times"] == out["rep_times"] and segment["start_s"] == 0.0 and segment["end_s"] <= 2.4
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("video,label,known,start_s,end_s,reps") and len(rows) == 2
    assert rows[1].startswith(f"{clip},JumpingJack,True,0.00,") and f",{out['reps']}," in rows[1]


@pytest.fixture(scope="module")
def fusion_predictor():
    from conftest import ROOT
    from vidclf.predict import Predictor

    return Predictor(ROOT / "weights" / "fusion.pt")


def training_frames(num_frames_in_clip: int, num_frames: int, monkeypatch) -> list[int]:
    """The frames the pose stream's training estimates the body on for a clip of ``num_frames_in_clip``
    (``vidclf.data.landmarks.clip_landmarks``, run on a stand-in clip: the indices it decodes)."""
    import vidclf.video as video
    from vidclf.data.landmarks import clip_landmarks
    from vidclf.video import VideoInfo

    read: list[int] = []
    info = VideoInfo(num_frames=num_frames_in_clip, fps=30.0, width=320, height=240, counted=True)
    monkeypatch.setattr(video, "probe", lambda path: info)
    monkeypatch.setattr(
        video, "_read_indices", lambda path, idx, size: read.extend(idx) or np.zeros((len(idx), 4, 4, 3), np.uint8)
    )
    clip_landmarks("stand-in.avi", num_frames, lambda frames: np.full((len(frames), 33, 4), np.nan, np.float32))
    return read


@pytest.mark.parametrize("seconds", [2.0, 7.0, 12.0, 30.0, 300.0])
def test_the_pose_stream_classifies_the_frames_it_was_trained_on(seconds, fusion_predictor, monkeypatch):
    from vidclf.video import VideoInfo

    predictor = fusion_predictor
    info = VideoInfo(num_frames=int(seconds * 30), fps=30.0, width=320, height=240, counted=True)
    pose = [i for i, (stream, _) in enumerate(predictor.streams) if stream.pose]
    trained = training_frames(info.num_frames, predictor.streams[pose[0]][0].spec.num_frames, monkeypatch)
    assert len(trained) == 32 and pose
    assert all(predictor._wanted(info)[i] == trained for i in pose)  # classified on exactly these frames


def test_the_progress_says_how_far_the_pass_is_and_how_many_tracked_frames_show_a_body():
    import re

    from conftest import ROOT
    from vidclf.predict import Predictor

    clip = ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4"
    told: list[tuple[float, str]] = []
    predictor = Predictor(ROOT / "weights" / "synthetic.pt")
    predictor.predict(clip, progress=lambda share, words: told.append((share, words)))
    shares = [s for s, _ in told]
    assert len(told) >= 5 and shares == sorted(shares) and 0 <= shares[0] and shares[-1] <= 1
    bodies = [re.fullmatch(r"(\d+) of (\d+) s(?:; a body in (\d+) of (\d+) frames)?", w) for _, w in told]
    assert all(bodies) and all(m[2] == bodies[0][2] for m in bodies)  # the same length throughout
    later = [(int(m[3]), int(m[4])) for m in bodies if m[3] is not None]
    assert later and all(0 <= found <= n for found, n in later) and later[-1][1] > later[0][1]


def _standing(lift: float, shift: float) -> np.ndarray:
    """Landmarks ``[33, 4]`` of a person facing the camera whose upper body is ``lift`` higher (a squat's
    depth: the legs stay), the whole figure ``shift`` lower in the frame (a camera cut); torso 0.2 high."""
    from vidclf.models.pose import COUNT_JOINTS

    lm = np.zeros((33, 4), np.float32)
    lm[:, 3] = 1.0
    lm[:, 0] = np.linspace(0.4, 0.6, 33)
    lm[:, 1] = 0.5
    upper = [0, 11, 12, 13, 14, 15, 16]  # nose, shoulders, elbows, wrists
    lm[upper, 1] = 0.3 - lift
    lm[[23, 24], 1] = 0.5 - lift
    lm[[25, 26, 27, 28], 1] = [0.65, 0.65, 0.8, 0.8]
    lm[list(COUNT_JOINTS), 1] += shift
    return lm


def test_repetitions_after_a_camera_cut_are_counted():
    """A cut shifts the whole figure in one frame. Once repetitions are counted, the thresholds' range is that
    of the last two (3 s here), so the repetitions after the step are lost for 3 s, not for the whole 6 s
    window (a real clip with a cut lost three of nine lunges so)."""
    from vidclf.reps import RepCounter

    counter = RepCounter()
    for i in range(150):  # 15 s at 10 a second, a repetition every 1.5 s, the cut at 6.05 s
        t = i / 10
        lift = 0.06 * (1 - np.cos(2 * np.pi * t / 1.5)) / 2
        counter.add_joints(t, _standing(lift, 0.3 if t > 6.0 else 0.0))
        if i >= 20 and i % 5 == 0:
            counter.update()
    counter.update(final=True)
    assert counter.count == 8  # of ten: two lost in the 3 s after the cut (7 with the window's range)


def test_a_set_that_drifts_slowly_is_counted_from_its_first_repetition():
    """Twelve jumping jacks while the person comes closer and goes back (a slow hump under the movement, too
    short a clip for the drift window): the repetitions are found on the main direction less its mean over one
    period, so the hump does not lift the middle ones above the first ones (10 of 12 counted so)."""
    from vidclf.models.pose import landmark_signal

    _, marks = render_clip_with_landmarks("SynthJumpingJack", 3, 1, num_frames=200, cycles=12, size=(48, 64))
    hump = 0.1 * np.sin(np.pi * np.arange(200) / 200)[:, None]
    marks = marks.copy()
    marks[:, :, 0] += hump
    marks[:, :, 1] += hump
    assert count_repetitions(landmark_signal(marks[::2]), 12.5).count == 12


def test_a_long_fast_set_is_counted_with_a_period_finer_than_a_frame():
    """30 jumping jacks at 30 frames a second, one every 14.7 frames: a period of whole frames (15) is 2 % off
    and, over 30 periods, one repetition short; the autocorrelation's peak is placed between frames."""
    frames, _ = render_clip_with_landmarks("SynthJumpingJack", 3, 1, num_frames=441, cycles=30, size=(48, 64))
    reps = count_repetitions(frame_signal(frames), 30.0)
    assert reps.count == 30
    assert reps.period_s == pytest.approx(14.7 / 30.0, abs=0.003)
