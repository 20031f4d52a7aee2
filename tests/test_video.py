import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import CLIPS, needs_shared
from vidclf.errors import VideoError
from vidclf.video import load_clip, probe, read_frames, write_video


@needs_shared
@pytest.mark.parametrize("name", sorted(p.name for p in CLIPS.glob("*")) if CLIPS.is_dir() else [])
def test_every_shared_clip_decodes(name):
    clip = load_clip(CLIPS / name, 20, (128, 128))
    assert clip.frames.shape == (20, 128, 128, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.frames.std() > 5  # real pictures, not blank frames
    assert clip.indices == sorted(clip.indices) and clip.indices[-1] < clip.info.num_frames


@needs_shared
def test_known_clip_lengths():
    assert probe(CLIPS / "mmaction2_test.mp4").num_frames == 300
    info = probe(CLIPS / "v_ApplyEyeMakeup_g01_c01.avi")
    assert (info.width, info.height) == (320, 240)


def _ramp_video(path: Path, n: int) -> Path:
    """A clip whose frame i is a flat grey of value 8*i, so decoded frames reveal their index."""
    frames = np.stack([np.full((64, 64, 3), 8 * i, np.uint8) for i in range(n)])
    return write_video(path, frames, fps=10)


def test_read_frames_returns_the_asked_indices(tmp_path):
    path = _ramp_video(tmp_path / "ramp.avi", 30)
    frames = read_frames(path, [0, 5, 5, 29, 12])
    levels = frames.reshape(len(frames), -1).mean(1) / 8
    assert np.allclose(levels, [0, 5, 5, 29, 12], atol=0.5)


def test_short_clip_repeats_frames(tmp_path):
    path = _ramp_video(tmp_path / "short.avi", 3)
    clip = load_clip(path, 8, (32, 32))
    assert clip.frames.shape == (8, 32, 32, 3)
    assert clip.indices == [0, 0, 0, 1, 1, 2, 2, 2]
    levels = clip.frames.reshape(8, -1).mean(1) / 8
    assert np.allclose(levels, clip.indices, atol=0.5)


def test_webm_with_lying_header_is_counted(tmp_path):
    # VP8 WebM, as browsers record: OpenCV's frame count header is not to be trusted there.
    path = tmp_path / "rec.webm"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 25, (64, 48))
    if not w.isOpened():
        pytest.skip("this OpenCV build cannot write VP8")
    for i in range(40):
        w.write(np.full((48, 64, 3), 5 * i, np.uint8))
    w.release()
    clip = load_clip(path, 10, (48, 64))
    assert clip.frames.shape == (10, 48, 64, 3)
    assert clip.info.num_frames == 40


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "not found"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("this is not a video\n" * 50), p)[1], "cannot open"),
    ],
)
def test_bad_files_raise_video_error(tmp_path, make, message):
    path = make(tmp_path / "bad.mp4")
    with pytest.raises(VideoError, match=message):
        load_clip(path, 8, (32, 32))


@needs_shared
def test_truncated_clip_gives_frames_or_video_error(tmp_path):
    data = (CLIPS / "v_Punch_g03_c01.avi").read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    try:
        clip = load_clip(cut, 16, (64, 64))
    except VideoError:
        return
    assert clip.frames.shape == (16, 64, 64, 3)


def test_a_quick_shrink_is_within_one_grey_level_of_the_exact_one():
    """A 1080x1920 frame's counting picture (48x64, not a whole factor) is halved first; a whole factor (720p)
    and a small frame are the exact area average itself."""
    from vidclf.video import resize_frame, shrink_quick

    rng = np.random.default_rng(0)
    smooth = lambda h, w: cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (0, 0), 4)  # noqa: E731
    portrait = smooth(1920, 1080)
    quick, exact = shrink_quick(portrait, (48, 64)), resize_frame(portrait, (48, 64))
    assert quick.shape == exact.shape == (48, 64, 3)
    diff = np.abs(quick.astype(int) - exact)
    assert diff.max() <= 1 and 0 < diff.mean() < 0.5  # not the same computation, nearly the same pixels
    for frame in (smooth(720, 1280), smooth(240, 320)):
        assert np.array_equal(shrink_quick(frame, (48, 64)), resize_frame(frame, (48, 64)))


def test_the_process_settings_a_prediction_shares_its_cores_with():
    # torch's OpenMP threads sleep after their work and OpenCV runs without its pool, unless the user said
    # otherwise: measured to cost less CPU for the same pixels while decoder, engine and BlazePose share cores
    probe_settings = "import vidclf.video, os, cv2; print(os.environ['OMP_WAIT_POLICY'], cv2.getNumThreads())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", probe_settings], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "1"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", probe_settings], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "ACTIVE"
