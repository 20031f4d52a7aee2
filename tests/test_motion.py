"""The motion input (``frame_input="diff"``): each frame the model sees is a difference of two frames."""

import numpy as np
import pytest
import torch

from vidclf.checkpoint import load_checkpoint
from vidclf.config import apply_overrides, load_config
from vidclf.data.cache import FrameCache
from vidclf.data.dataset import training_data
from vidclf.data.transforms import ClipTransform
from vidclf.predict import Predictor
from vidclf.training.loop import fit
from vidclf.catalog import find_models
from vidclf.sampling import paired, uniform_indices
from vidclf.video import load_clip, write_video


def test_diff_transform_is_the_difference_of_normalised_pairs():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)  # 4 pairs
    plain = ClipTransform()(frames)
    diff = ClipTransform(diff=True)(frames)
    assert diff.shape == (4, 3, 16, 16)
    assert torch.allclose(diff, plain[1::2] - plain[0::2])
    still = np.repeat(frames[:1], 8, axis=0)  # nothing moves: nothing is left
    assert ClipTransform(diff=True)(still).abs().max() == 0
    # augmentation crops and flips both frames of a pair alike, so a still clip stays all zeros
    assert ClipTransform(diff=True, augment=True)(still, np.random.default_rng(1)).abs().max() == 0
    with pytest.raises(ValueError, match="pairs"):
        ClipTransform(diff=True)(frames[:7])


def test_frame_cache_keeps_pairs_apart_from_plain_frames(tmp_path):
    video = write_video(tmp_path / "ramp.avi", np.stack([np.full((32, 32, 3), 8 * i, np.uint8) for i in range(30)]))
    cache = FrameCache(tmp_path / "cache")
    plain = cache.frames(video, 4, 32)
    pairs = cache.frames(video, 4, 32, pair_gap=2)
    assert plain.shape == (4, 32, 32, 3) and pairs.shape == (8, 32, 32, 3) and cache.misses == 2
    assert np.array_equal(pairs[0::2], plain)  # first of each pair: the plain uniform frames
    # the partner is 2 frames later: brighter by about 16 grey levels (the codec adds a little noise)
    assert np.allclose(pairs[1::2].astype(float).mean((1, 2, 3)) - plain.astype(float).mean((1, 2, 3)), 16, atol=3)
    cache.frames(video, 4, 32, pair_gap=2)
    assert cache.hits == 1


def test_train_and_predict_on_frame_differences(synth_root, tmp_path):
    cfg = apply_overrides(
        load_config(),
        {
            "data_root": str(synth_root),
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "run"),
            "classes": ["SynthRaiseArms", "SynthLowerArms"],
            "num_frames": 6,
            "img_size": 48,
            "lr": 1e-3,
            "augment": False,
            "epochs": 2,
            "frame_input": "diff",
            "diff_gap": 2,
        },
    )
    data = training_data(cfg)
    clip, label = data.train[0]
    assert clip.shape == (6, 3, 48, 48) and data.train.pair_gap == 2
    result = fit(cfg, data.train, data.val, data.classes, show_progress=False)
    ck = load_checkpoint(result.best_path)
    assert (ck.input.frame_input, ck.input.diff_gap, ck.input.pair_gap) == ("diff", 2, 2)
    predictor = Predictor(ck)
    video = next((synth_root / "UCF-101" / "SynthRaiseArms").glob("*.avi"))
    p = predictor.predict(video)
    assert p.frames.shape == (6, 96, 96, 3) and p.indices == [2, 8, 13, 18, 24, 29]  # the first frame of each pair
    assert abs(sum(p.probs.values()) - 1) < 1e-5
    # the model saw differences: its probabilities are those of the diff clip, not of the plain frames
    pairs = load_clip(video, 6, (48, 48), sampler=paired(uniform_indices, 2)).frames
    stream = predictor.streams[0][0]
    expected = stream.logits(ClipTransform(ck.input.mean, ck.input.std, diff=True)(pairs)[None])[0].softmax(-1)
    assert np.allclose(list(p.probs.values()), expected.numpy(), atol=1e-6)
    plain = stream.logits(ClipTransform(ck.input.mean, ck.input.std)(pairs[::2])[None])[0].softmax(-1)
    assert not np.allclose(expected.numpy(), plain.numpy(), atol=1e-4)
    assert "motion" in find_models(tmp_path / "none", tmp_path, [result.best_path])[0].description
