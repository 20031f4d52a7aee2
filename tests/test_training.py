import json
import threading

import pytest
import torch

from vidclf.checkpoint import load_checkpoint
from vidclf.config import apply_overrides, load_config
from vidclf.data.dataset import training_data
from vidclf.training.loop import fit

FAST = {"num_frames": 8, "img_size": 64, "lr": 1e-3, "augment": False, "batch_size": 4}


def _config(synth_root, tmp_path, **extra):
    return apply_overrides(
        load_config(),
        {
            "data_root": str(synth_root),
            "cache_dir": str(tmp_path / "cache"),
            "out_dir": str(tmp_path / "run"),
            **FAST,
            **extra,
        },
    )


def test_training_learns_the_synthetic_set(synth_root, tmp_path):
    cfg = _config(synth_root, tmp_path, epochs=30, patience=10)
    data = training_data(cfg)
    assert data.split.val_groups  # validation is on groups never trained on
    learned = threading.Event()  # the epochs after it has learned would only cost time

    def on_epoch(row):
        if row["val_acc"] >= 0.6:
            learned.set()

    result = fit(cfg, data.train, data.val, data.classes, show_progress=False, on_epoch=on_epoch, stop=learned)
    chance = 1 / len(data.classes)
    assert result.best_val_acc >= 0.6 > 3 * chance, result.history
    assert result.stopped == "user" and len(result.history) == result.best_epoch  # stopped as soon as it learned
    best = load_checkpoint(result.best_path)
    assert best.epoch == result.best_epoch and best.metrics["val_acc"] == result.best_val_acc
    assert best.classes == data.classes and best.input.num_frames == 8 and best.input.img_size == 64
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == len(result.history) and (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_resume_continues_after_the_last_epoch(synth_root, tmp_path, training_log):
    data = None
    cfg2 = _config(synth_root, tmp_path, epochs=2, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg2)
    fit(cfg2, data.train, data.val, data.classes, show_progress=False)
    cfg3 = apply_overrides(cfg2, {"epochs": 3})
    result = fit(cfg3, data.train, data.val, data.classes, resume=True, show_progress=False)
    assert any("after epoch 2" in line for line in training_log)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert load_checkpoint(result.last_path).epoch == 3


def test_resume_repairs_a_best_checkpoint_the_kill_never_wrote(synth_root, tmp_path, training_log):
    # last.pt is written before best.pt; a kill between the two leaves best.pt an epoch behind.
    cfg = _config(synth_root, tmp_path, epochs=1, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg)
    first = fit(cfg, data.train, data.val, data.classes, show_progress=False)
    assert first.best_epoch == 1
    first.best_path.unlink()
    result = fit(cfg, data.train, data.val, data.classes, resume=True, show_progress=False)
    assert any("best.pt was not written for epoch 1" in line for line in training_log), training_log
    best, last = load_checkpoint(result.best_path), load_checkpoint(result.last_path)
    assert best.epoch == last.epoch == 1
    assert all(torch.equal(best.state_dict[k], last.state_dict[k]) for k in last.state_dict)


def test_stop_keeps_the_last_whole_epoch(synth_root, tmp_path):
    cfg = _config(synth_root, tmp_path, epochs=5, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg)
    stop = threading.Event()

    def on_epoch(row):
        if row["epoch"] == 2:
            stop.set()

    result = fit(cfg, data.train, data.val, data.classes, show_progress=False, on_epoch=on_epoch, stop=stop)
    assert result.stopped == "user"
    assert load_checkpoint(result.last_path).epoch == 2
    assert result.best_path.exists()


def test_resume_refuses_another_class_set(synth_root, tmp_path):
    from vidclf.errors import CheckpointError

    cfg = _config(synth_root, tmp_path, epochs=1, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    cfg2 = apply_overrides(cfg, {"classes": ["SynthWave", "SynthWalk"]})
    data2 = training_data(cfg2)
    with pytest.raises(CheckpointError, match="classes"):
        fit(cfg2, data2.train, data2.val, data2.classes, resume=True, show_progress=False)


def test_frozen_backbone_trains_on_cached_features(synth_root, tmp_path):
    from vidclf.data.cache import NpyStore

    cfg = _config(
        synth_root, tmp_path, epochs=3, freeze_backbone=True, classes=["SynthWave", "SynthSquat", "SynthWalk"]
    )
    data = training_data(cfg)
    from vidclf.models.cnn_lstm import build_model

    torch.manual_seed(cfg.train.seed)  # as fit() does before building its model
    before = {k: v.clone() for k, v in build_model(cfg.model, 3).backbone.state_dict().items()}
    result = fit(cfg, data.train, data.val, data.classes, show_progress=False)
    ck = load_checkpoint(result.last_path)
    # the backbone did not move: its weights are the seed's initial ones, the LSTM's did
    assert all(torch.equal(ck.state_dict[f"backbone.{k}"], v) for k, v in before.items())
    feature_files = list((tmp_path / "cache" / "features").rglob("*.npy"))
    assert len(feature_files) == len(data.train) + len(data.val)
    # a second run reads every clip's features from the cache
    store_hits = []
    orig_load = NpyStore.load

    def counting_load(self, key, *a, **k):
        out = orig_load(self, key, *a, **k)
        if key.get("kind") == "features":
            store_hits.append(out is not None)
        return out

    NpyStore.load = counting_load
    try:
        fit(
            apply_overrides(cfg, {"out_dir": str(tmp_path / "run2")}),
            data.train,
            data.val,
            data.classes,
            show_progress=False,
        )
    finally:
        NpyStore.load = orig_load
    assert store_hits and all(store_hits)


def test_fine_tune_from_a_frozen_run_with_a_lower_backbone_lr(synth_root, tmp_path, training_log):
    classes = ["SynthWave", "SynthSquat"]
    frozen = _config(synth_root, tmp_path, epochs=2, freeze_backbone=True, classes=classes)
    data = training_data(frozen)
    first = fit(frozen, data.train, data.val, data.classes, show_progress=False)
    tuned = apply_overrides(
        frozen,
        {
            "freeze_backbone": False,
            "init_from": str(first.best_path),
            "backbone_lr_scale": 0.1,
            "out_dir": str(tmp_path / "tuned"),
            "epochs": 1,
        },
    )
    result = fit(tuned, data.train, data.val, data.classes, show_progress=False)
    assert any("starting from the weights" in line for line in training_log)
    ck = load_checkpoint(result.last_path)
    groups = ck.train_state["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [pytest.approx(1e-4), pytest.approx(1e-3)]  # backbone, then LSTM + head
    start = load_checkpoint(first.best_path)
    moved = [
        k
        for k in start.state_dict
        if k.startswith("backbone.") and k.endswith("weight") and not torch.equal(start.state_dict[k], ck.state_dict[k])
    ]
    assert moved  # the backbone is trained now
    wrong = apply_overrides(tuned, {"classes": ["SynthWave", "SynthWalk"]})
    from vidclf.errors import CheckpointError

    data2 = training_data(wrong)
    with pytest.raises(CheckpointError, match="init-from"):
        fit(wrong, data2.train, data2.val, data2.classes, show_progress=False)


CPU = torch.device("cpu")


def test_feature_views_are_cached_augmented_views_drawn_at_random(synth_root, tmp_path):
    from vidclf.models.cnn_lstm import build_model
    from vidclf.training.features import feature_dataset

    cfg = _config(synth_root, tmp_path, freeze_backbone=True, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, 2)
    one = feature_dataset(
        model, data.train, cache_dir=cfg.data.cache_dir, device=CPU, precision="fp32", show_progress=False
    )
    three = feature_dataset(
        model, data.train, cache_dir=cfg.data.cache_dir, device=CPU, precision="fp32", show_progress=False, views=3
    )
    n, t, d = len(data.train), 8, model.feature_dim
    assert one.features is None and three.features is None  # at scale nothing is held in memory: files only
    one_all, three_all = one.all(), three.all()
    assert one_all.shape == (n, 1, t, d) and three_all.shape == (n, 3, t, d)
    # view 0 is the eval view, shared with a one-view run through the same cache entry
    assert torch.equal(three_all[:, 0], one_all[:, 0])
    assert len(list((tmp_path / "cache" / "features").rglob("*.npy"))) == 3 * n
    # the augmented views differ from the eval view and from each other, clip by clip
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert all(not torch.allclose(three_all[i, a], three_all[i, b]) for i in range(n))
    # fixed draws: computed again without the cache, a view is the same view
    again = feature_dataset(
        model, data.train, cache_dir=None, device=CPU, precision="fp32", show_progress=False, views=3
    )
    assert again.features is not None and torch.allclose(again.features, three_all, atol=1e-5)
    # an epoch draws every view, and a one-view dataset only ever gives the eval view
    torch.manual_seed(0)
    draws = [three[0][0] for _ in range(30)]
    assert {next(v for v in range(3) if torch.equal(x, three_all[0, v])) for x in draws} == {0, 1, 2}
    assert all(torch.equal(one[i][0], one_all[i, 0]) for i in range(n))


def test_a_damaged_feature_cache_entry_is_said_and_computed_again(synth_root, tmp_path, caplog, monkeypatch):
    import logging

    from vidclf.models.cnn_lstm import build_model

    monkeypatch.setattr(logging.getLogger("vidclf"), "propagate", True)  # an in-process CLI test may have turned it off
    from vidclf.training.features import feature_dataset

    cfg = _config(synth_root, tmp_path, freeze_backbone=True, classes=["SynthWave", "SynthSquat"])
    data = training_data(cfg)
    model = build_model(cfg.model, 2)
    first = feature_dataset(
        model, data.train, cache_dir=cfg.data.cache_dir, device=CPU, precision="fp32", show_progress=False
    )
    damaged = first.files[0][0]
    damaged.write_bytes(b"not an array")
    with caplog.at_level("WARNING"):
        second = feature_dataset(
            model, data.train, cache_dir=cfg.data.cache_dir, device=CPU, precision="fp32", show_progress=False
        )
    assert "cannot be read" in caplog.text and str(damaged) in caplog.text
    assert second.view(0, 0).shape == (8, model.feature_dim)  # computed again and readable


def test_frozen_training_with_feature_views(synth_root, tmp_path):
    cfg = _config(
        synth_root, tmp_path, epochs=2, freeze_backbone=True, feature_views=3, classes=["SynthWave", "SynthSquat"]
    )
    data = training_data(cfg)
    result = fit(cfg, data.train, data.val, data.classes, show_progress=False)
    # 3 views of each training clip, only the eval view of each validation clip
    assert len(list((tmp_path / "cache" / "features").rglob("*.npy"))) == 3 * len(data.train) + len(data.val)
    assert load_checkpoint(result.best_path).config["train"]["feature_views"] == 3
