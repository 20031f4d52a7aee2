"""The recipe chooser: cross-validated by group on the user's own data, it picks the recipe that suits the
classes (pixels where the scene tells them apart, not the body's pose), says why in a table, and trains it."""

import pytest

from vidclf.training.choose import RecipeScore, pick


def test_pick_keeps_the_simpler_recipe_unless_a_fusion_clearly_wins():
    pose, motion = RecipeScore("pose", 0.80, 0.05, [0.8], 1), RecipeScore("motion", 0.70, 0.05, [0.7], 1)
    close = RecipeScore("pose+motion", 0.805, 0.05, [0.8], 2)
    winner, why = pick([pose, motion, close])
    assert winner is pose and "does not beat it by 0.01" in why
    better = RecipeScore("pose+motion", 0.85, 0.05, [0.85], 2)
    assert pick([pose, motion, better])[0] is better


@pytest.fixture(scope="module")
def scene_root(tmp_path_factory):
    from vidclf.data.synthetic import make_scene_dataset

    return make_scene_dataset(tmp_path_factory.mktemp("scene"), groups=6, clips_per_group=3, size=(64, 64))


def test_the_chooser_picks_pixels_where_the_scene_decides(scene_root, tmp_path):
    from vidclf.checkpoint import load_checkpoint
    from vidclf.config import apply_overrides, load_config

    from vidclf.training.choose import choose_and_train

    common = {"data_root": str(scene_root), "num_classes": 0, "cache_dir": str(tmp_path / "cache"), "device": "cpu"}
    common |= {"batch_size": 8, "lr_schedule": "cosine", "precision": "fp32"}
    pose = apply_overrides(load_config(), {**common, "backbone": "pose", "num_frames": 16, "epochs": 4, "lr": 3e-3})
    tiny = {"backbone": "custom", "frame_input": "rgb", "num_frames": 4, "img_size": 32, "epochs": 4, "lr": 3e-3}
    pixels = apply_overrides(load_config(), {**common, **tiny, "augment": False})
    r = choose_and_train({"pose": pose, "pixels": pixels}, 2, tmp_path / "choose")
    assert r["winner"] == "pixels", r["table"]
    assert "| pixels **chosen** |" in r["table"] and "| pose |" in r["table"] and "| pose+pixels |" in r["table"]
    ck = load_checkpoint(r["checkpoint"])
    assert ck.backbone == "custom" and ck.reject_threshold is not None and ck.metrics["cv_acc"] > 0.8
    assert (tmp_path / "choose" / "choice.md").is_file()
