"""The file a run is used by (the README's commands, the app's model list) is its last epoch, whose figure
was not picked on the validation clips, and its model card says how each figure was measured."""

import dataclasses
import json
import re

from conftest import ROOT


def test_the_readme_and_the_presets_use_the_last_epoch_of_a_fixed_schedule():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Train on your own classes") :]
    section = section[: section.index("\n## ", 5)]
    commands = re.findall(r"^python train_cli\.py .*(?:\n    .*)*", section, re.M)
    uses = [c for c in commands if re.search(r"--(checkpoint|stream) ", c)]
    assert uses and all("best.pt" not in c for c in uses), uses  # evaluate, calibrate, fuse: last.pt
    assert all("last.pt" in c for c in uses)
    for preset in (ROOT / "presets").glob("*.json"):
        train = json.loads(preset.read_text())["train"]
        assert train["patience"] == 0 and train["lr_schedule"] == "cosine", preset.name  # last.pt: fixed schedule


def test_the_model_card_says_how_the_validation_figure_was_measured(synthetic_pose_run, tmp_path):
    from vidclf.checkpoint import load_checkpoint, save_checkpoint
    from vidclf.model_card import model_card

    last = load_checkpoint(synthetic_pose_run / "last.pt")
    assert len(last.history) == last.epoch == 25
    assert "epoch 25, the last of a fixed 25-epoch schedule: not picked on these clips" in model_card(
        synthetic_pose_run / "last.pt"
    )
    picked = save_checkpoint(tmp_path / "best.pt", dataclasses.replace(last, epoch=12, history=last.history[:12]))
    card = model_card(picked, run_history=last.history)
    assert "epoch 12, picked as the best of 25 epochs on these same validation clips: optimistic" in card
    train = {**last.config["train"], "patience": 5, "epochs": 60}  # early stopping ended a 60-epoch plan at 25
    stopped = dataclasses.replace(last, config={**last.config, "train": train})
    card = model_card(save_checkpoint(tmp_path / "stopped.pt", stopped))
    assert "early stopping ended the run 5 epochs after its best one" in card


def test_the_app_lists_each_run_by_its_last_epoch(synthetic_pose_run, tmp_path):
    import shutil

    from vidclf.catalog import find_models

    runs = tmp_path / "runs"
    shutil.copytree(synthetic_pose_run, runs / "mine", ignore=shutil.ignore_patterns("cache"))
    (entry,) = find_models(tmp_path / "no-weights", runs)
    assert entry.label == "run: mine" and entry.path == runs / "mine" / "last.pt"
