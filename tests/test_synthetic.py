import numpy as np

from vidclf.data.synthetic import SYNTH_CLASSES, render_clip
from vidclf.video import load_clip


def test_deterministic_from_seed():
    a = render_clip("SynthJumpingJack", 1, 1, seed=3, size=(48, 48), num_frames=8)
    assert np.array_equal(a, render_clip("SynthJumpingJack", 1, 1, seed=3, size=(48, 48), num_frames=8))
    assert not np.array_equal(a, render_clip("SynthJumpingJack", 1, 1, seed=4, size=(48, 48), num_frames=8))


def test_lower_arms_is_raise_arms_backwards():
    up = render_clip("SynthRaiseArms", 2, 1, size=(48, 48), num_frames=10)
    down = render_clip("SynthLowerArms", 2, 1, size=(48, 48), num_frames=10)
    assert np.array_equal(down, up[::-1])  # same frames: only their order tells the classes apart
    assert not np.array_equal(down, up)


def test_classes_move_and_differ():
    clips = {c: render_clip(c, 1, 1, size=(48, 48), num_frames=12).astype(float) for c in SYNTH_CLASSES}
    for c, clip in clips.items():
        assert np.abs(np.diff(clip, axis=0)).mean() > 0.5, f"{c} does not move"


def test_files_on_disk_are_labelled_synthetic(synth_root):
    assert "SYNTHETIC" in (synth_root / "README.txt").read_text()
    clip = load_clip(next((synth_root / "UCF-101" / "SynthWave").glob("*.avi")), 8, (64, 64))
    assert clip.frames.shape == (8, 64, 64, 3) and clip.info.num_frames == 32
