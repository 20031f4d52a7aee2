"""The recipe chooser: cross-validated by group on the user's own data, it picks the recipe that suits the
classes (pixels where the scene tells them apart, not the body's pose), says why in a table, and trains it."""

import pytest

from vidclf.training.choose import RecipeScore, pick


def test_pick_keeps_the_simpler_recipe_unless_a_fusion_clearly_wins():
    pose, motion = (
        RecipeScore(name="pose", mean=0.80, std=0.05, folds=[0.8], seconds=1),
        RecipeScore(name="motion", mean=0.70, std=0.05, folds=[0.7], seconds=1),
    )
    close = RecipeScore(name="pose+motion", mean=0.805, std=0.05, folds=[0.8], seconds=2)
    winner, why = pick([pose, motion, close])
    assert winner is pose and "does not beat it by 0.01" in why
    better = RecipeScore(name="pose+motion", mean=0.85, std=0.05, folds=[0.85], seconds=2)
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


def _form(**kw) -> dict:
    from vidclf.serving import SYNTHETIC_SOURCE

    from vidclf.training.train_request import CHOOSE

    form = dict(source=SYNTHETIC_SOURCE, folder="", classes="", split=1, val_fraction=0.2, backbone="custom")
    form |= dict(pretrained=False, freeze=False, views=1, frame_input="diff", epochs=1, lr=1e-3, batch_size=4)
    form |= dict(num_frames=8, img_size=64, recipe=CHOOSE, quick=True)
    return form | kw


def _tiny_set(root, *, groups: int, clips_per_group: int):
    from vidclf.data.synthetic import make_synthetic_dataset

    classes = ("SynthJumpingJack", "SynthSquat")
    return make_synthetic_dataset(root, classes=classes, groups=groups, clips_per_group=clips_per_group, size=(48, 48))


def _tiny_recipes(tmp_path, *, epochs: int):
    """A pose and a small pixel recipe on a tiny synthetic set of 6 groups (two clips each), trained ``epochs``."""
    from vidclf.config import apply_overrides, load_config

    root = _tiny_set(tmp_path / "tiny", groups=6, clips_per_group=2)
    common = {"data_root": str(root), "num_classes": 0, "cache_dir": str(tmp_path / "cache"), "device": "cpu"}
    common |= {"batch_size": 8, "precision": "fp32", "epochs": epochs, "lr": 3e-3}
    pose = apply_overrides(load_config(), {**common, "backbone": "pose", "num_frames": 8})
    tiny = {"backbone": "custom", "frame_input": "rgb", "num_frames": 4, "img_size": 32, "augment": False}
    return pose, apply_overrides(load_config(), {**common, **tiny})


@pytest.mark.parametrize(
    "layout, words",
    [
        ({"groups": 2, "clips_per_group": 2}, "groups"),  # split 1 trains on g02 only: one group
        ({"groups": 3, "clips_per_group": 1}, "too few clips"),  # g02, g03: 2 clips a class
    ],
)
def test_the_train_tab_refuses_data_the_chooser_cannot_score_and_names_the_fix(tmp_path, layout, words):
    from vidclf.errors import VidclfError
    from vidclf.serving import ServeSettings
    from vidclf.training.job import TrainingJob
    from vidclf.training.train_request import start_request

    data = tmp_path / "data"
    _tiny_set(data / "tiny", **layout)
    settings = ServeSettings(training_enabled=True, data_roots=(data.resolve(),), runs_dir=tmp_path / "runs")
    job = TrainingJob()
    with pytest.raises(VidclfError, match=words) as e:
        start_request(job, _form(source="Server folder", folder=str(data / "tiny")), settings, tmp_path / "s")
    assert str(tmp_path) not in str(e.value) and "add clips" in str(e.value)
    assert job.status().state == "idle"  # nothing started
    with pytest.raises(VidclfError, match="outside the allowed data folders"):
        start_request(job, _form(source="Server folder", folder="/etc"), settings, tmp_path / "s")
    with pytest.raises(VidclfError, match="unknown recipe"):
        start_request(job, _form(recipe="rm -rf /"), settings, tmp_path / "s")


def test_the_page_shows_the_choosers_table_and_winner_and_lists_the_model(tmp_path):
    """The Train tab's default run, on the job as the app drives it: each fold is announced, the table and the
    winner on the page are the chooser's own (``choice.md``), and the chosen model, not a fold's, is listed."""
    import time

    from vidclf.catalog import find_models
    from vidclf.training.job import TrainingJob
    from vidclf.training.train_request import status_markdown

    pose, pixels = _tiny_recipes(tmp_path, epochs=3)
    runs = tmp_path / "runs"
    job, stages = TrainingJob(), []
    job.start_choice({"pose": pose, "pixels": pixels}, 2, runs / "app" / "chosen")
    while job.status().running:
        stage = job.status().stage
        if not stages or stages[-1] != stage:
            stages.append(stage)
        time.sleep(0.02)
    s = job.status()
    assert s.state == "finished", s.message
    assert any("pose: cross-validating, fold 2 of 2" in x for x in stages), stages
    assert any("pixels: cross-validating, fold 1 of 2" in x for x in stages), stages
    assert len(s.history) == 3  # the curves are the last fit's: the winner trained on every clip
    md = (runs / "app" / "chosen" / "choice.md").read_text()
    table, winner = md.split("\n\nchosen: ")
    assert s.choice.startswith(table) and "| pose+pixels |" in s.choice
    chosen = winner.split("**")[1]
    assert f"| {chosen} **chosen** |" in s.choice and f"**Chosen: {chosen}**" in s.choice
    assert "Saved as **run: app/chosen**" in status_markdown(s, runs) and str(tmp_path) not in status_markdown(s, runs)
    listed = [m for m in find_models(runs_dir=runs) if m.source == "run"]
    assert [m.label for m in listed] == ["run: app/chosen"]  # not the folds' models, nor a fusion's streams
    assert listed[0].score_kind == "cross-validated"


def test_a_user_who_knows_better_picks_a_preset(tmp_path):
    """The Train tab's pose preset in the quick setting: the preset's recipe with the setting's cuts, on the
    user's folder, with the form's validation share; its model is listed with a threshold."""
    import time

    from vidclf.catalog import find_models
    from vidclf.checkpoint import load_checkpoint
    from vidclf.serving import ServeSettings
    from vidclf.training.job import TrainingJob
    from vidclf.training.train_request import PRESETS, start_request

    data = tmp_path / "data"
    _tiny_set(data / "tiny", groups=6, clips_per_group=2)
    runs = tmp_path / "runs"
    settings = ServeSettings(training_enabled=True, data_roots=(data.resolve(),), runs_dir=runs)
    job = TrainingJob()
    pose = next(label for label, name in PRESETS.items() if name == "pose")
    form = _form(source="Server folder", folder=str(data / "tiny"), recipe=pose, val_fraction=0.25)
    assert "the pose preset (quick setting)" in start_request(job, form, settings, tmp_path / "s")
    while job.status().running:
        time.sleep(0.05)
    s = job.status()
    assert s.state == "finished" and len(s.history) == 15, s.message  # the quick setting's 15 epochs
    (entry,) = [m for m in find_models(runs_dir=runs) if m.source == "run"]
    ck = load_checkpoint(entry.path)
    assert entry.label.endswith("-pose") and ck.backbone == "pose" and ck.reject_threshold is not None


def test_the_chosen_model_is_listed_only_once_its_threshold_is_set(tmp_path):
    """While the winner trains on every clip (and while the folds train) no model of the run is listed; at the
    end the one listed carries its threshold."""
    from vidclf.catalog import find_models
    from vidclf.checkpoint import load_checkpoint
    from vidclf.training.choose import ChooserHooks, choose_and_train

    pose, pixels = _tiny_recipes(tmp_path, epochs=2)
    runs = tmp_path / "runs"
    seen: list[tuple[str, list[str]]] = []
    stage = [""]

    def on_stage(words, config):
        stage[0] = words

    def on_epoch(row):
        seen.append((stage[0], [m.label for m in find_models(runs_dir=runs) if m.source == "run"]))

    result = choose_and_train(
        {"pose": pose, "pixels": pixels}, 2, runs / "chosen", hooks=ChooserHooks(on_stage=on_stage, on_epoch=on_epoch)
    )
    assert any("on every clip" in s for s, _ in seen) and all(listed == [] for _, listed in seen), seen
    (entry,) = [m for m in find_models(runs_dir=runs) if m.source == "run"]
    assert entry.label == "run: chosen" and load_checkpoint(entry.path).reject_threshold is not None
    assert result["checkpoint"] == str(runs / "chosen" / "last.pt")
