"""The pose stream: landmark normalisation, mirroring, augmentation, the cache, and a model that learns."""

import numpy as np
import pytest
import torch

from conftest import CLIPS, needs_shared
from vidclf.data.synthetic import render_clip_with_landmarks
from vidclf.models.pose import (
    LEFT_HIP,
    MIRROR_ORDER,
    NUM_LANDMARKS,
    POSE_FEATURE_DIM,
    RIGHT_HIP,
    ViewAugment,
    augment_landmarks,
    change_view,
    found_mask,
    mirror_landmarks,
    normalize_landmarks,
)


def synth_landmarks(action="SynthJumpingJack", num_frames=16):
    return render_clip_with_landmarks(action, 1, 1, num_frames=num_frames)[1]


def test_features_ignore_where_the_person_stands_and_how_large_they_appear():
    raw = synth_landmarks()
    moved = raw.copy()
    moved[:, :, :3] *= 0.5  # half as large (farther from the camera)
    moved[:, :, 0] += 0.3  # and elsewhere in the frame
    moved[:, :, 1] -= 0.1
    a, b = normalize_landmarks(raw), normalize_landmarks(moved)
    assert a.shape == (16, POSE_FEATURE_DIM) == (16, 146)
    assert np.allclose(a, b, atol=1e-5)
    assert not np.allclose(a[0], a[8])  # the pose itself changes over the clip


def test_a_frame_without_a_person_is_marked_not_faked():
    raw = synth_landmarks()
    raw[3] = np.nan
    feats = normalize_landmarks(raw)
    assert found_mask(raw).tolist() == [i != 3 for i in range(16)]
    flag = NUM_LANDMARKS * 4 + 3  # the person-found flag
    assert (feats[3] == 0).all() and feats[2, flag] == 1.0 and feats[3, flag] == 0.0
    assert (normalize_landmarks(np.full((4, 33, 4), np.nan, np.float32)) == 0).all()


def test_mirror_swaps_left_and_right_and_is_its_own_inverse():
    assert sorted(MIRROR_ORDER) == list(range(NUM_LANDMARKS))
    assert MIRROR_ORDER[11] == 12 and MIRROR_ORDER[LEFT_HIP] == RIGHT_HIP and MIRROR_ORDER[0] == 0
    raw = synth_landmarks("SynthWave")  # the figure waves one arm only: mirroring must move it to the other side
    mirrored = mirror_landmarks(raw)
    assert np.allclose(mirror_landmarks(mirrored), raw, atol=1e-6)
    # the person's left wrist (15) in the mirror is where their right wrist (16) was, reflected
    centre = np.nanmean(raw[:, :, 0])
    assert np.allclose(mirrored[:, 15, 0], 2 * centre - raw[:, 16, 0], atol=1e-6)
    assert np.allclose(mirrored[:, 15, 1], raw[:, 16, 1], atol=1e-6)
    # normalised features of a mirror: x negated, joints swapped
    a, b = normalize_landmarks(raw), normalize_landmarks(mirrored)
    assert np.allclose(b[:, 2 * 15], -a[:, 2 * 16], atol=1e-5)


def test_augmentation_keeps_shape_and_marks_and_is_reproducible():
    raw = synth_landmarks(num_frames=32)
    x = augment_landmarks(raw, np.random.default_rng(3))
    y = augment_landmarks(raw, np.random.default_rng(3))
    assert x.shape == raw.shape and x.dtype == np.float32 and np.array_equal(x, y, equal_nan=True)
    assert not np.array_equal(x, augment_landmarks(raw, np.random.default_rng(4)), equal_nan=True)
    feats = normalize_landmarks(x)
    assert np.isfinite(feats).all()
    assert found_mask(x).mean() > 0.7  # ~10 % of frames dropped, not more


class _Always:
    """An RNG stand-in whose every draw takes the augmentation: random() 0, uniform() its upper end."""

    def random(self):
        return 0.0

    def uniform(self, low, high):
        return high


def test_a_change_of_view_turns_squeezes_and_stills_the_body():
    raw = synth_landmarks(num_frames=8)
    raw[:, :, 2] = 0.05 * np.arange(NUM_LANDMARKS)[None, :]  # a depth per joint, to see it turn into x
    raw[:, :, 0] += np.linspace(0, 0.2, 8)[:, None]  # the person travels across the frame
    hip_x = raw[:, [LEFT_HIP, RIGHT_HIP], 0].mean(1)
    pivot = hip_x.mean()

    turned = change_view(raw, _Always(), ViewAugment(yaw=90))  # a side view seen from the front
    assert np.allclose(turned[:, :, 0], pivot + raw[:, :, 2], atol=1e-5)  # depth became across
    assert np.allclose(turned[:, :, 2], -(raw[:, :, 0] - pivot), atol=1e-5)
    assert np.array_equal(turned[:, :, 1], raw[:, :, 1])  # up stays up

    squeezed = change_view(raw, _Always(), ViewAugment(squeeze=0.6))  # factor drawn at 1 - 0.6 ... 1: upper end 1
    assert np.allclose(squeezed, raw)
    squeezed = change_view(raw, np.random.default_rng(0), ViewAugment(squeeze=0.6))
    spread = lambda x: np.ptp(x[:, :, 0], axis=1)  # noqa: E731
    assert (spread(squeezed) <= spread(raw) + 1e-6).all()

    still = change_view(raw, _Always(), ViewAugment(in_place=1.0))
    still_hip = still[:, [LEFT_HIP, RIGHT_HIP], 0].mean(1)
    assert np.allclose(still_hip, pivot, atol=1e-6)  # no travel left
    assert np.allclose(still[:, :, 0] - still_hip[:, None], raw[:, :, 0] - hip_x[:, None], atol=1e-6)  # same pose


def test_augmentation_without_a_view_change_draws_as_before():
    raw = synth_landmarks(num_frames=32)
    plain = augment_landmarks(raw, np.random.default_rng(5))
    assert np.array_equal(plain, augment_landmarks(raw, np.random.default_rng(5), view=ViewAugment()), equal_nan=True)
    changed = augment_landmarks(raw, np.random.default_rng(5), view=ViewAugment(yaw=60, squeeze=0.5, in_place=0.5))
    assert changed.shape == plain.shape and not np.array_equal(changed, plain, equal_nan=True)
    with pytest.raises(ValueError, match="yaw 0-90"):
        ViewAugment(yaw=120)


def test_synthetic_set_writes_landmarks_beside_each_clip(synth_root):
    clips = sorted((synth_root / "UCF-101" / "SynthSquat").glob("*.avi"))
    marks = np.load(clips[0].with_suffix(".pose.npy"))
    assert marks.shape == (32, 33, 4) and found_mask(marks).all()


def test_landmarks_come_from_the_file_beside_the_clip_then_the_cache(synth_root, tmp_path):
    from vidclf.data.cache import NpyStore
    from vidclf.data.landmarks import clip_landmarks

    class Forbidden:
        def __call__(self, frames):
            raise AssertionError("the pose estimator must not run when landmarks are known")

    clip = next((synth_root / "UCF-101" / "SynthWalk").glob("*.avi"))
    every = np.load(clip.with_suffix(".pose.npy"))
    got = clip_landmarks(clip, 8, Forbidden(), NpyStore(tmp_path))
    assert np.array_equal(got, every[[2, 6, 10, 14, 18, 22, 26, 30]])

    plain = tmp_path / "plain.avi"
    plain.write_bytes(clip.read_bytes())

    class Counting:
        calls = 0

        def __call__(self, frames):
            Counting.calls += 1
            return np.zeros((len(frames), 33, 4), np.float32)

    store = NpyStore(tmp_path / "cache")
    first = clip_landmarks(plain, 6, Counting(), store)
    again = clip_landmarks(plain, 6, Counting(), store)
    assert Counting.calls == 1 and np.array_equal(first, again) and first.shape == (6, 33, 4)


def test_pose_model_learns_the_synthetic_set_including_the_order_of_motion(synthetic_pose_run, synth_root):
    """The generator knows its figures' joints: the pose stream trains on them with no pose estimator."""
    from vidclf.checkpoint import load_checkpoint
    from vidclf.evaluate import evaluate_checkpoint

    ck = load_checkpoint(synthetic_pose_run / "last.pt")
    assert ck.input.features == "landmarks" and ck.model.backbone == "pose" and ck.input.num_frames == 16
    m = evaluate_checkpoint(synthetic_pose_run / "last.pt", synth_root, split=1, subset="test")
    assert m["num_clips"] == 36 and m["top1"] >= 0.9, m["per_class"]
    # RaiseArms and LowerArms are the same poses in reverse order: only the LSTM's sense of order tells them apart
    assert m["per_class"]["SynthRaiseArms"]["acc"] >= 0.8 and m["per_class"]["SynthLowerArms"]["acc"] >= 0.8


def test_pose_training_items_are_landmark_features(synth_root, tmp_path):
    from vidclf.config import apply_overrides, load_config
    from vidclf.data.dataset import training_data

    cfg = apply_overrides(
        load_config(),
        {
            "data_root": str(synth_root),
            "num_classes": 0,
            "backbone": "pose",
            "num_frames": 12,
            "cache_dir": str(tmp_path),
        },
    )
    data = training_data(cfg)
    x, y = data.train[0]
    assert x.shape == (12, POSE_FEATURE_DIM) and x.dtype == torch.float32 and isinstance(y, int)
    assert data.train.augment and not data.val.augment
    a, b = data.val[0][0], data.val[0][0]
    assert torch.equal(a, b)  # validation items are not augmented


@needs_shared
def test_blazepose_finds_the_person_in_a_real_clip():
    pytest.importorskip("mediapipe")
    from vidclf.models.pose import PoseEstimator
    from vidclf.video import load_clip

    frames = load_clip(CLIPS / "v_ApplyEyeMakeup_g01_c01.avi", 4, None).frames
    raw = PoseEstimator()(frames)
    assert raw.shape == (4, 33, 4) and found_mask(raw).all()
    nose, shoulders = raw[:, 0, 1], raw[:, [11, 12], 1].mean(1)
    assert (nose < shoulders).all()  # upright: the head above the shoulders (y grows downwards)
    # a frame with nobody in it is reported as such
    empty = PoseEstimator()(np.full((1, 240, 320, 3), 128, np.uint8))
    assert not found_mask(empty).any()


def test_the_skeleton_is_drawn_where_the_landmarks_are():
    from vidclf.overlay import draw_skeleton, skeleton_frames

    frames, marks = render_clip_with_landmarks("SynthJumpingJack", 1, 1, size=(120, 160), num_frames=4)
    drawn = draw_skeleton(frames[0], marks[0])
    assert drawn.shape == frames[0].shape and not np.array_equal(drawn, frames[0])
    x, y = (marks[0, 11, :2] * 160).round().astype(int)  # the left shoulder, in pixels of the 160 px side
    assert tuple(drawn[y, x]) == (255, 255, 255)  # a joint dot
    changed = np.argwhere((drawn != frames[0]).any(-1))
    assert changed[:, 1].min() >= (marks[0, :, 0] * 160).min() - 4  # nothing drawn far from the body
    nobody = np.full((33, 4), np.nan, np.float32)
    assert np.array_equal(draw_skeleton(frames[0], nobody), frames[0])
    assert len(skeleton_frames(frames, None)) == 4


def test_the_person_gate_refuses_only_for_the_classes_it_applies_to(synthetic_pose_run):
    import dataclasses

    from vidclf.checkpoint import load_checkpoint
    from vidclf.predict import Predictor

    ck = load_checkpoint(synthetic_pose_run / "last.pt")
    rider, athlete = ck.classes[0], ck.classes[1]  # a class filmed without a person found, and one with
    gated = Predictor(dataclasses.replace(ck, info={**ck.info, "person_gate": list(ck.classes[1:])}), device="cpu")
    answer = {c: torch.eye(len(ck.classes))[k] * 5 for k, c in enumerate(ck.classes)}
    assert gated.verdict(answer[rider], 0.0)[1]  # no person, but the answer is a class the gate is off for
    assert not gated.verdict(answer[athlete], 0.0)[1]  # no person, and the answer needs one
    assert gated.verdict(answer[athlete], 0.25)[1]
    everyone = Predictor(dataclasses.replace(ck, info={}), device="cpu")  # a checkpoint that names no gate
    assert not everyone.verdict(answer[rider], 0.0)[1] and everyone.verdict(answer[rider], None)[1]


def test_training_turns_the_person_gate_off_for_a_class_filmed_without_a_person(synth_root, tmp_path, training_log):
    import shutil

    from vidclf.checkpoint import load_checkpoint
    from vidclf.config import apply_overrides, load_config
    from vidclf.data.dataset import training_data
    from vidclf.data.index import build_index
    from vidclf.training.loop import fit

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    index = build_index(root, "train", split=1, num_classes=0)
    rider = index.classes[0]
    clips = [r.path.with_suffix(".pose.npy") for r in index.records if r.label == 0]
    for known in clips[: len(clips) * 2 // 3]:  # BlazePose finds no one on two thirds of this class's clips
        np.save(known, np.full_like(np.load(known), np.nan))
    overrides = {"data_root": str(root), "num_classes": 0, "backbone": "pose", "num_frames": 8, "epochs": 1}
    cfg = apply_overrides(load_config(), {**overrides, "out_dir": str(tmp_path / "run"), "cache_dir": None})
    data = training_data(cfg, show_progress=False)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    info = load_checkpoint(tmp_path / "run" / "last.pt").info
    assert info["person_found"][rider] == pytest.approx(1 / 3, abs=0.01)
    assert all(info["person_found"][c] == 1.0 for c in data.classes if c != rider)
    assert info["person_gate"] == [c for c in data.classes if c != rider]
    warning = f"{rider}: a person was found in only 33% of its {len(clips)} clips; the person gate"
    assert any(line.startswith(warning) for line in training_log), training_log


@needs_shared
def test_a_pooled_tracker_starts_each_clip_afresh():
    """The tracking graph handed from one clip to the next keeps nothing of the first clip: the second clip's
    landmarks are exactly those of a new graph (without the reset, they differ)."""
    pytest.importorskip("mediapipe")
    from vidclf.models.pose import PoseTracker, PoseTrackers
    from vidclf.video import read_frames

    ucf = CLIPS.parent / "ucf101" / "UCF-101"
    first = read_frames(ucf / "JumpingJack" / "v_JumpingJack_g08_c01.avi", list(range(0, 45, 3)))
    second = read_frames(ucf / "PushUps" / "v_PushUps_g08_c01.avi", list(range(0, 45, 3)))

    def track(tracker, frames):
        with tracker:
            return np.stack([tracker(f) for f in frames])

    alone = track(PoseTracker(), second)
    pool = PoseTrackers()
    try:
        track(pool.tracker(), first)
        pool.settle()
        after = track(pool.tracker(), second)
        assert pool.graphs_built == 1  # the second clip ran on the first clip's graph
        np.testing.assert_array_equal(after, alone)
        # the same graph without the reset carries the first clip's tracking into the second
        pool.settle()
        leaky = PoseTracker()
        leaky._graph = pool.take()
        [leaky(f) for f in first]
        assert not np.array_equal(track(leaky, second), alone, equal_nan=True)
    finally:
        pool.close()
