"""A server that runs for hours: what the second review found (docs/reliability.md has the table), each
pinned by a test that failed before its fix."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from vidclf.errors import VidclfError
from vidclf.video import write_video

SYNTH_MODEL = ROOT / "weights" / "synthetic.pt"


def test_a_frame_handed_out_again_outlives_the_sweep_of_that_request():
    """A repeated clip reused its content-named frames with their old time, and the sweep in the same write
    removed them: an hour-old server lost the frames it had just returned."""
    from vidclf.serving import FrameStore

    store = FrameStore(sweep_every_s=0.0)  # every write sweeps
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    first = store.write(frames, ["a", "b"])
    hour_ago = time.time() - 2 * store.max_age_s
    for f, _ in first:
        os.utime(f, (hour_ago, hour_ago))
    again = store.write(frames, ["a", "b"])
    assert again == first and all(os.path.isfile(f) for f, _ in again)


def test_preview_copies_are_swept_and_a_second_predict_classifies_the_upload(tmp_path, monkeypatch):
    """The player's H.264 copies were never swept, and the copy (cut to 60 s and 640 px) replaced the player's
    value: a second Predict classified the copy instead of the upload."""
    import app
    from vidclf.serving import FrameStore

    store = FrameStore()
    monkeypatch.setattr(app, "FRAMES", store)
    frames = np.stack([np.full((300, 800, 3), (9 * i) % 256, np.uint8) for i in range(12)])
    upload = write_video(tmp_path / "upload.avi", frames, fps=10)  # XviD: no browser plays it
    copy = app.preview(str(upload))
    assert Path(copy).parent == store.root and Path(copy).suffix == ".mp4"
    # Gradio hands the player's new value back from its own cache, under the same file name
    cached = tmp_path / "gradio" / "0123abcd" / Path(copy).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(Path(copy).read_bytes())
    details = app.predict(str(cached), "synthetic", progress=lambda *a, **k: None)[2]  # the answer's details
    assert "800x300" in details  # the upload's size, not the copy's 640x240
    other = tmp_path / "someone" / Path(copy).name  # another file under the copy's name stands for nothing
    other.parent.mkdir()
    write_video(other, frames[:, :100, :200], fps=10)
    details = app.predict(str(other), "synthetic", progress=lambda *a, **k: None)[2]
    assert "200x100" in details
    upload.unlink()
    with pytest.raises(app.gr.Error, match="upload the clip again"):
        app.predict(str(cached), "synthetic", progress=lambda *a, **k: None)
    old = time.time() - 2 * store.max_age_s
    os.utime(copy, (old, old))
    assert store.sweep() >= 1 and not Path(copy).exists()


def test_the_preview_transcode_never_takes_a_predictions_slot():
    """One player's copy at a time, in a group of its own (its FFmpeg at the lowest priority: test_serving):
    in the predictions' group a copy would take one of their two slots, and a second person's prediction would
    wait for it."""
    import app

    demo = app.build_app()
    fns = list(demo.fns.values())
    previews = [f for f in fns if f.name == "preview"]
    assert previews and {(f.concurrency_id, f.concurrency_limit) for f in previews} == {("preview", 1)}
    assert {f.concurrency_id for f in fns if f.name in ("predict", "predict_on_page")} == {"predict"}


class CountingEstimator:
    """A pose estimator that finds the same still person in every frame, and counts the frames it is given."""

    def __init__(self):
        from vidclf.data.synthetic import render_clip_with_landmarks

        self.person = render_clip_with_landmarks("SynthSquat", 1, 1, num_frames=8)[1][0]
        self.frames = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.frames += len(frames)
        return np.repeat(self.person[None], len(frames), axis=0)


def test_a_side_file_beside_an_upload_is_never_read(tmp_path):
    """A ``.pose.npy`` beside the clip replaced pose estimation in the serving path (and a broken one raised
    numpy's error, not a VidclfError)."""
    from vidclf.predict import Predictor

    clip = write_video(tmp_path / "upload.mp4", np.zeros((60, 64, 64, 3), np.uint8), fps=10)
    (tmp_path / "upload.pose.npy").write_bytes(b"not landmarks at all")
    estimator = CountingEstimator()
    p = Predictor(ROOT / "weights" / "pose_lstm.pt", pose_estimator=estimator).predict(clip)
    assert estimator.frames >= 32 and p.pose_found == 1.0


def test_two_graph_builds_at_once_leave_stderr_where_it_was():
    """The swap of file descriptor 2 ran unlocked: two builds at once could restore each other's /dev/null
    and leave the server's log silent for good."""
    import threading

    from vidclf.models.pose import _quiet_stderr

    before = os.fstat(2)
    first_in = threading.Event()

    def build(hold_s, signal=None):
        with _quiet_stderr():
            if signal is not None:
                signal.set()
            time.sleep(hold_s)

    a = threading.Thread(target=build, args=(0.3, first_in))
    b = threading.Thread(target=lambda: first_in.wait() and build(0.6))
    a.start(), b.start(), a.join(), b.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_pose_graphs_are_pooled_across_threads_and_closed(monkeypatch):
    """One graph per request thread was built and never closed: a server's thread pool grew graphs."""
    import threading

    from mediapipe.python.solutions import pose as mp_pose

    from vidclf.models.pose import PoseEstimator

    made, closed = [], []

    class Graph:
        def __init__(self, **kw):
            made.append(self)

        def process(self, frame):
            return type("Result", (), {"pose_landmarks": None})()

        def close(self):
            closed.append(self)

    monkeypatch.setattr(mp_pose, "Pose", Graph)
    estimator = PoseEstimator()
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    for _ in range(6):  # one request after another, each on a new thread as a server's pool hands them out
        t = threading.Thread(target=estimator, args=(frames,))
        t.start(), t.join()
    assert len(made) == 1
    estimator.close()
    assert closed == made
    assert np.isnan(estimator(frames)).all() and len(made) == 2  # usable after close: builds afresh


def test_a_high_frame_rate_header_does_not_decide_the_memory_of_counting(tmp_path):
    """Every frame of the first 120 s was kept for counting, however many frames a second the header claimed
    (up to 999): a clip of 72,000 tiny frames cost hundreds of MB. A decoding pass keeps at most its bytes'
    worth of small frames, and a prediction feeds every frame to the workout engine, which keeps a bounded
    history (tests/test_engine.py) whatever the rate."""
    import vidclf.predict as predict
    from vidclf.video import decode_pass

    clip = write_video(tmp_path / "fast.avi", np.zeros((900, 16, 16, 3), np.uint8), fps=300)
    frame_bytes = 48 * 64 * 3
    _, every = decode_pass(clip, {}, every_size=(48, 64), every_limit=10_000, every_max_bytes=120 * frame_bytes)
    assert every.shape == (120, 48, 64, 3)
    p = predict.Predictor(SYNTH_MODEL).predict(clip)
    assert p.workout is not None and p.workout.duration_s == pytest.approx(3.0, abs=0.01)
    assert p.reps is not None and p.reps.count == 0  # a black clip repeats nothing


class ResizingCapture:
    """A capture whose frames change size half-way through, as a stream that changes resolution mid-way does
    (OpenCV's FFmpeg reader scales such streams to the first size today; nothing else guarantees it)."""

    def __init__(self, n: int = 40):
        self.i, self.n = 0, n

    def isOpened(self):
        return True

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FRAME_COUNT: self.n, cv2.CAP_PROP_FPS: 10.0, cv2.CAP_PROP_FRAME_WIDTH: 64,
                cv2.CAP_PROP_FRAME_HEIGHT: 48}.get(prop, 0.0)  # fmt: skip

    def grab(self):
        ok = self.i < self.n
        self.i += ok
        return ok

    def read(self):
        if self.i >= self.n:
            return False, None
        shape = (48, 64, 3) if self.i < self.n // 2 else (80, 96, 3)
        self.i += 1
        return True, np.full(shape, (9 * self.i) % 256, np.uint8)

    def release(self):
        pass


def test_a_clip_whose_resolution_changes_midway_gives_frames_of_one_shape(monkeypatch):
    """Frames kept at their decoded size made ``np.stack`` raise numpy's error, not a VidclfError."""
    import vidclf.video as video
    from vidclf.predict import Predictor

    monkeypatch.setattr(video, "_open", lambda path: ResizingCapture())
    p = Predictor(SYNTH_MODEL).predict("resizing.webm")
    assert p.frames.shape[1:] == (48, 64, 3)
    clip = video.load_clip("resizing.webm", 8, None)
    assert clip.frames.shape == (8, 48, 64, 3)
    assert video.read_all_frames("resizing.webm").shape == (40, 48, 64, 3)


def test_only_the_page_that_started_a_run_stops_it_and_its_errors_name_no_server_path(monkeypatch):
    """Any visitor could stop anyone's run, and a run's error reached the page as ``str(e)``, server paths
    and all."""
    import dataclasses
    import threading

    import gradio as gr

    import app
    from vidclf.config import load_config
    from vidclf.training.job import TrainingJob

    job = TrainingJob()
    monkeypatch.setattr(app, "JOB", job)
    monkeypatch.setattr(app, "SETTINGS", dataclasses.replace(app.SETTINGS, training_enabled=True))
    release = threading.Event()

    def prepare():
        release.wait(10)
        raise VidclfError("cannot read /srv/private/datasets/UCF-101/v_X_g01_c01.avi")

    import vidclf.training.train_request as train_request

    monkeypatch.setattr(
        train_request, "training_request", lambda form, settings, root: (load_config(), prepare, "/srv/data")
    )
    owner, stranger = gr.Request(session_hash="owner"), gr.Request(session_hash="stranger")
    started, _ = app.start_training(owner, train_request.OWN, False, *[None] * len(app.TRAIN_FORM_FIELDS))
    assert "/srv" not in started
    with pytest.raises(gr.Error, match="only the page that started"):
        app.stop_training(stranger)
    assert job.status().running
    release.set()
    for _ in range(100):
        if not job.status().running:
            break
        time.sleep(0.05)
    text = app.poll_training(0, None)[0]
    assert "failed" in text and "v_X_g01_c01.avi" in text and "/srv" not in text
    assert "Stopping" in app.stop_training(stranger)  # nothing is running: nothing to guard


def test_a_motion_pair_is_the_same_time_apart_at_60_fps(tmp_path):
    """The difference was taken 2 frames apart whatever the clip: 33 ms in a 60 fps phone clip where training
    saw 80 ms at 25 fps. Now the pair is 80 ms apart in prediction and in training alike."""
    from vidclf.checkpoint import load_checkpoint
    from vidclf.predict import Predictor
    from vidclf.video import VideoInfo

    motion = load_checkpoint(ROOT / "weights" / "custom.pt")  # trained on 25 fps UCF-101, before the field existed
    assert (motion.input.frame_input, motion.input.diff_gap, motion.input.diff_fps) == ("diff", 2, 25.0)
    predictor = Predictor(motion)
    for fps, gap in ((25.0, 2), (30.0, 2), (60.0, 5), (12.5, 1)):
        info = VideoInfo(num_frames=int(20 * fps), fps=fps, width=320, height=240, counted=True)
        wanted = predictor._wanted(info)[0]
        assert len(wanted) == 40 and {b - a for a, b in zip(wanted[::2], wanted[1::2])} == {gap}

    # training: a 60 fps clip whose frame i is grey level 2i, so a pair's difference says how far apart it is
    from vidclf.data.cache import FrameCache
    from vidclf.data.dataset import VideoClipDataset
    from vidclf.data.index import VideoRecord

    frames = np.stack([np.full((64, 64, 3), 2 * i, np.uint8) for i in range(120)])
    clip = write_video(tmp_path / "phone.mp4", frames, fps=60)
    record = VideoRecord(path=clip, label=0, group="g01")
    for cache in (None, FrameCache(tmp_path / "cache")):
        ds = VideoClipDataset([record], num_frames=4, img_size=32, transform=motion.input.transform(), cache=cache,
                              pair_gap=2, gap_fps=25.0)  # fmt: skip
        pairs = ds.frames(0, np.random.default_rng(0)).astype(float)
        steps = pairs[1::2].mean((1, 2, 3)) - pairs[0::2].mean((1, 2, 3))
        assert np.allclose(steps, 10, atol=1.5), steps  # 5 frames of 2 grey levels


def test_every_landmark_of_a_clip_is_estimated_at_one_size(tmp_path, monkeypatch):
    """Landmarks in one signal came from two resolutions: the classified frames up to 640 px, the rest of the
    pose grid 320 px. Now each signal has one: the classification at the size training estimated the body at,
    the workout engine's tracked frames at its own."""
    from vidclf.predict import Predictor

    clip = write_video(tmp_path / "big.mp4", np.zeros((100, 600, 800, 3), np.uint8), fps=10)
    estimator = CountingEstimator()
    shapes, tracked = [], []

    def recording(frames):
        shapes.append(frames.shape[1:])
        return estimator(frames)

    def tracker(self):
        def track(frame):
            tracked.append(frame.shape)
            return estimator(frame[None])[0]

        return track

    monkeypatch.setattr(Predictor, "new_tracker", tracker)
    p = Predictor(ROOT / "weights" / "pose_lstm.pt", pose_estimator=recording).predict(clip)
    assert p.landmarks is not None and len(shapes) >= 1 and len(tracked) > 32
    assert set(shapes) == {(480, 640, 3)}  # the size training estimated the body at (POSE_MAX_SIDE)
    assert set(tracked) == {(240, 320, 3)}  # the engine's one size (EngineSettings.max_side)
