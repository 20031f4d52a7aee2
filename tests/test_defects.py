"""Defects a review found, each pinned by a test that failed before its fix."""

import os
import stat
import threading

import pytest
import torch

from conftest import ROOT
from vidclf.checkpoint import load_checkpoint, save_checkpoint
from vidclf.config import apply_overrides, load_config
from vidclf.errors import CheckpointError, ConfigError, VidclfError


def test_a_checkpoint_save_never_sets_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask to 0, even for an instant, makes files other threads create meanwhile world-writable."""
    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    ck = load_checkpoint(ROOT / "weights" / "synthetic.pt")
    path = save_checkpoint(tmp_path / "a.pt", ck, half=True)
    assert calls == []
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & 0o002 == 0 and mode & 0o400  # readable by its owner, never world-writable


def test_an_override_in_the_wrong_section_is_a_config_error():
    with pytest.raises(ConfigError, match="train setting, not a data one"):
        apply_overrides(load_config(), {"data.lr": 1e-3})
    with pytest.raises(ConfigError, match="unknown section"):
        apply_overrides(load_config(), {"dat.lr": 1e-3})
    assert apply_overrides(load_config(), {"train.lr": 1e-3}).train.lr == 1e-3


def test_reduced_tensors_live_on_the_ranks_device(monkeypatch):
    """NCCL reduces only GPU tensors: the sum must be made on the rank's device, not on the CPU."""
    import vidclf.runtime as runtime

    seen = []
    monkeypatch.setattr(runtime.torch_dist, "all_reduce", lambda t: seen.append(t.device))
    device = torch.device("meta")  # any device other than the CPU shows the choice
    try:
        runtime.all_sum([1.0, 2.0], runtime.Dist(rank=0, world=2), device)
    except (NotImplementedError, RuntimeError):
        pass  # a meta tensor has no values to read back; the device it was made on is what counts
    assert seen == [device]


def tiny_config(synth_root, out_dir, **overrides):
    """Two synthetic classes, tiny clips, one epoch on the CPU, no cache."""
    base = {"data_root": str(synth_root), "classes": ["SynthWave", "SynthSquat"], "img_size": 32, "epochs": 1,
            "out_dir": str(out_dir), "cache_dir": None, "device": "cpu"}  # fmt: skip
    return apply_overrides(load_config(), {**base, **overrides})


def test_resume_refuses_a_run_with_other_inputs(synth_root, tmp_path):
    from vidclf.data.dataset import training_data
    from vidclf.training.loop import fit

    cfg = tiny_config(synth_root, tmp_path, num_frames=4)
    data = training_data(cfg)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    other = apply_overrides(cfg, {"num_frames": 6, "epochs": 2})
    with pytest.raises(CheckpointError, match="num_frames: 4 -> 6"):
        fit(other, data.train, data.val, data.classes, resume=True, show_progress=False)


def test_resume_does_not_fetch_pretrained_weights_it_is_about_to_overwrite(synth_root, tmp_path, monkeypatch):
    """An offline --resume of a --use-pretrained ResNet-18 must not try to download ImageNet weights."""
    from vidclf.data.dataset import training_data
    from vidclf.models import backbones
    from vidclf.training.loop import fit

    real = backbones.resnet18
    downloads = []

    def online(**kw):
        downloads.append(kw.get("use_pretrained"))
        return real(**{**kw, "use_pretrained": False})

    def offline(**kw):
        if kw.get("use_pretrained"):
            raise VidclfError("no network: the ImageNet download failed")
        return real(**kw)

    cfg = apply_overrides(
        load_config(),
        {
            "data_root": str(synth_root),
            "classes": ["SynthWave", "SynthSquat"],
            "num_frames": 2,
            "img_size": 32,
            "epochs": 1,
            "out_dir": str(tmp_path),
            "cache_dir": None,
            "backbone": "resnet18",
            "use_pretrained": True,
            "device": "cpu",
            "batch_size": 8,
        },
    )
    data = training_data(cfg)
    monkeypatch.setattr(backbones, "resnet18", online)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    assert downloads == [True]
    monkeypatch.setattr(backbones, "resnet18", offline)
    more = apply_overrides(cfg, {"epochs": 2})
    result = fit(more, data.train, data.val, data.classes, resume=True, show_progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]


def test_a_killed_write_leaves_no_temporary_checkpoint_behind(synth_root, tmp_path):
    from vidclf.data.dataset import training_data
    from vidclf.training.loop import fit

    stale = tmp_path / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    cfg = tiny_config(synth_root, tmp_path, num_frames=2)
    data = training_data(cfg)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_frames_are_stored_privately_and_swept(tmp_path):
    import numpy as np

    from vidclf.serving import FrameStore

    a, b = FrameStore(), FrameStore()
    assert a.root != b.root and stat.S_IMODE(a.root.stat().st_mode) == 0o700
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200)]
    files = a.write(frames, ["frame 0", "frame 5"])
    assert [c for _, c in files] == ["frame 0", "frame 5"] and all(os.path.isfile(f) for f, _ in files)
    (a.root / "x.123-4.tmp").write_bytes(b"cut short")
    a.max_age_s = -1
    assert a.sweep() == 3 and list(a.root.iterdir()) == []


def test_a_clip_is_judged_long_by_its_frames_too():
    from vidclf.serving import check_length
    from vidclf.video import VideoInfo

    check_length(VideoInfo(num_frames=300, fps=30.0, width=320, height=240, counted=False), 600)
    with pytest.raises(VidclfError, match="up to 600 s"):
        # the header's 1000 fps would say 1000 s
        check_length(VideoInfo(num_frames=1_000_000, fps=999.0, width=320, height=240, counted=False), 600)


def test_the_pool_loads_once_evicts_the_least_recent_and_says_when_a_file_is_gone(tmp_path, monkeypatch):
    import vidclf.catalog as catalog

    loads, closed = [], []

    class Fake:
        def __init__(self, path, **kw):
            self.name = path.name
            loads.append(path.name)

        def close(self):  # its pose graphs
            closed.append(self.name)

    monkeypatch.setattr(catalog, "Predictor", Fake)
    paths = []
    for name in "abc":
        p = tmp_path / f"{name}.pt"
        p.write_bytes(b"x")
        paths.append(p)
    pool = catalog.PredictorPool(max_models=2)
    pool.get(paths[0]), pool.get(paths[1]), pool.get(paths[0]), pool.get(paths[2]), pool.get(paths[0])
    assert loads == ["a.pt", "b.pt", "c.pt"]  # b was least recently used when c came
    assert closed == ["b.pt"]
    pool.get(paths[1])
    assert loads[-1] == "b.pt"
    paths[2].unlink()
    with pytest.raises(VidclfError, match="c.pt is gone"):
        pool.get(paths[2])


def test_the_catalog_reads_a_checkpoint_once_until_it_changes(tmp_path, monkeypatch):
    import vidclf.catalog as catalog

    weights = tmp_path / "weights"
    weights.mkdir()
    target = weights / "synthetic.pt"
    target.write_bytes((ROOT / "weights" / "synthetic.pt").read_bytes())
    reads = []
    real = catalog.read_entry
    monkeypatch.setattr(catalog, "read_entry", lambda *a: reads.append(a[0]) or real(*a))
    for _ in range(3):
        assert [m.label for m in catalog.find_models(weights, tmp_path / "runs")] == ["synthetic"]
    assert len(reads) == 1
    os.utime(target, ns=(1, 1))
    catalog.find_models(weights, tmp_path / "runs")
    assert len(reads) == 2


def test_a_model_is_loaded_once_when_request_threads_miss_it_at_once(tmp_path, monkeypatch):
    """Requests that arrive together for a model not loaded yet each loaded their own copy."""
    import time

    import vidclf.catalog as catalog

    loads = []

    class Slow:
        def __init__(self, path, **kw):
            loads.append(path)
            time.sleep(0.2)  # the load is slow enough that every thread misses the pool before it ends

    monkeypatch.setattr(catalog, "Predictor", Slow)
    p = tmp_path / "a.pt"
    p.write_bytes(b"x")
    pool = catalog.PredictorPool()
    start = threading.Barrier(4)
    got = []

    def request():
        start.wait()
        got.append(pool.get(p))

    threads = [threading.Thread(target=request) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(loads) == 1 and len(got) == 4 and all(g is got[0] for g in got) and pool.get(p) is got[0]


def test_one_prediction_probes_the_clip_once_and_decodes_it_in_one_pass(monkeypatch):
    """The app used to probe a clip three times (itself, predict, timeline): a lying WebM header made each
    probe read the whole file. Then it decoded it three times: the sampled frames, the frames counted for
    repetitions, the timeline's frames."""
    import app
    import vidclf.video as video

    calls, opened = [], []
    real, real_open = video.probe, video._open
    counting = lambda path: calls.append(path) or real(path)  # noqa: E731
    monkeypatch.setattr(video, "probe", counting)
    monkeypatch.setattr(app, "probe", counting)
    monkeypatch.setattr(video, "_open", lambda path: opened.append(path) or real_open(path))
    long_clip = ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4"  # 12 s: a workout log too
    result, answer, details, timeline, log, chart, gallery = app.predict(
        str(long_clip), "synthetic", progress=lambda *a, **k: None
    )
    # the answer and its workout log: one probe, then one decoding pass that the workout engine rides on (the
    # engine's memory does not grow with the clip's length): the file is opened for the probe and for the pass
    assert calls == [str(long_clip)]
    assert len(opened) == 2
    assert timeline.visible is True and "SYNTHETIC" in answer and "repetition" in details and log.visible
    assert result["segments"] and result["reps"] == sum(s["reps"] for s in result["segments"] if s["known"])


def test_a_header_that_overstates_the_length_costs_a_second_pass_not_an_error(tmp_path):
    from vidclf.predict import Predictor
    import dataclasses

    from vidclf.video import probe

    clip = ROOT / "examples" / "synthetic_sequence_Wave_JumpingJack_Squat.mp4"
    true = probe(clip)
    lying = dataclasses.replace(true, num_frames=true.num_frames * 3, counted=False)
    p = Predictor(ROOT / "weights" / "synthetic.pt").predict(clip, info=lying)
    assert p.info.num_frames == true.num_frames and p.info.counted
    assert max(p.indices) < true.num_frames and p.workout is not None
    assert p.workout.segments[-1].end_s <= true.duration_s


def test_a_hub_download_failure_is_shown_on_the_page(monkeypatch):
    import app
    from vidclf import hub

    def offline(name):
        raise VidclfError("could not reach the Hub for owner/model: no network (see /root/.cache/secret)")

    monkeypatch.setattr(app, "SETTINGS", app.SETTINGS.__class__(hub_model="owner/model"))
    monkeypatch.setattr(hub, "download_checkpoint", offline)
    monkeypatch.setattr(app, "_hub_state", {})
    assert app.hub_checkpoints() == []
    demo = app.build_app()
    texts = [
        getattr(block, "value", "") for block in demo.blocks.values() if isinstance(getattr(block, "value", None), str)
    ]
    shown = [t for t in texts if "could not be loaded" in t]
    assert shown and "no network" in shown[0] and "/root/.cache" not in shown[0]


def test_inference_takes_a_gpu_where_there_is_one(monkeypatch):
    """The app's models were pinned to the CPU. On a machine that reports a GPU, the pool's predictor puts every
    stream's model on it, in bf16 (``Module.to`` is recorded, not run: this machine may have no GPU)."""
    import vidclf.catalog as catalog
    from vidclf import runtime

    moved = []
    monkeypatch.setattr(runtime.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: moved.extend(map(torch.device, a)) or self)
    predictor = catalog.PredictorPool().get(ROOT / "weights" / "fusion.pt")
    assert predictor.device.type == "cuda" and predictor.precision == "bf16"
    assert len(moved) == len(predictor.streams) == 4 and {d.type for d in moved} == {"cuda"}
    assert all(stream.device.type == "cuda" and stream.precision == "bf16" for stream, _ in predictor.streams)


def test_one_queued_listener_predicts_and_an_idle_page_sends_nothing():
    """A click and an upload were two listeners (twice the documented concurrency, two predictions per clip),
    and the training timer ticked through the queue from every open tab with training off."""
    import app

    config = app.build_app().config
    by_event = [{event for _, event in d["targets"]} for d in config["dependencies"]]
    # the player's upload, the button and the end of a recording: one listener, one prediction per clip
    assert by_event.count({"click", "upload", "stop_recording"}) == 1
    assert len([d for d in config["dependencies"] if d.get("api_name") == "predict"]) == 1
    assert not any(d.get("api_name") == "predict_on_upload" for d in config["dependencies"])
    timers = [c for c in config["components"] if c["type"] == "timer"]
    assert timers and not any(c["props"].get("active") for c in timers)


def test_evaluate_val_takes_the_checkpoints_own_groups_and_out_keeps_every_result(synth_root, tmp_path, capsys):
    import dataclasses
    import json

    from train_cli import main
    from vidclf.data.dataset import training_data
    from vidclf.training.loop import fit

    cfg = tiny_config(synth_root, tmp_path / "a", num_frames=2)
    data = training_data(cfg)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    ck = load_checkpoint(tmp_path / "a" / "best.pt")
    held = list(data.split.val_groups)
    save_checkpoint(
        tmp_path / "a" / "best.pt", dataclasses.replace(ck, info={"val_groups": held})
    )  # as train records it
    others = [g for g in ("g02", "g03", "g05", "g06") if g not in held]  # the other training groups of split 1
    # the run's config would now pick other groups; the checkpoint's record of what it held out must win
    moved = dataclasses.replace(ck, info={**ck.info, "val_groups": others})
    save_checkpoint(tmp_path / "b" / "best.pt", moved)
    assert main(["evaluate", "--checkpoint", str(tmp_path / "b" / "best.pt"), "--data-root", str(synth_root),
                 "--subset", "val", "--json"]) == 0  # fmt: skip
    assert len(others) > len(held)  # so the count tells which groups were evaluated
    assert json.loads(capsys.readouterr().out)["num_clips"] == 2 * 3 * len(others)  # 2 classes x 3 clips a group
    out = tmp_path / "ev"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "a" / "best.pt"), str(tmp_path / "b" / "best.pt"),
                 "--data-root", str(synth_root), "--subset", "val", "--out", str(out), "--json"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.glob("eval_*.json")) == ["eval_a_best.json", "eval_b_best.json"]
