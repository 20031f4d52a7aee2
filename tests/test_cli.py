import json
import subprocess
import sys

import pytest

from conftest import ROOT, train_command

TINY = ["--num-frames", "6", "--img-size", "48", "--lr", "1e-3", "--no-progress", "--batch-size", "4"]


def run(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, str(ROOT / "train_cli.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_train_evaluate_predict_end_to_end(synth_root, tmp_path):
    out = tmp_path / "run"
    classes = ["--classes", "SynthWave", "SynthSquat", "SynthWalk"]
    r = run(*train_command(synth_root, out, tmp_path / "c", "--epochs", 2, *classes, *TINY, launcher=())[1:])
    assert r.returncode == 0, r.stderr
    assert "best.pt (epoch" in r.stdout and "last.pt (epoch" in r.stdout  # loss and accuracy of both
    for name in ("best.pt", "last.pt", "history.json", "curves.png", "confusion_best.png", "validation.json"):
        assert (out / name).exists(), name
    # The report reads the validation clips as the epochs did (same inputs, same precision): its figures for
    # last.pt are those of the last epoch's line, not another measurement of the same weights
    last_epoch = json.loads((out / "history.json").read_text())[-1]
    report = json.loads((out / "validation.json").read_text())["last"]
    assert report["epoch"] == last_epoch["epoch"] == 2
    assert report["loss"] == pytest.approx(last_epoch["val_loss"], abs=1e-6)
    assert report["top1"] == pytest.approx(last_epoch["val_acc"], abs=1e-9)
    assert f"validation loss {last_epoch['val_loss']:.4f}" in r.stdout.split("last.pt (epoch 2)")[1]

    r = run(
        "evaluate",
        "--checkpoint",
        out / "best.pt",
        "--data-root",
        synth_root,
        "--split",
        "1",
        "--json",
        "--out",
        tmp_path / "ev",
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    for key in ("top1", "top5", "mean_class_acc", "loss", "num_clips", "per_class"):
        assert key in m
    assert m["num_clips"] == 3 * 2 * 3  # 3 classes x 2 test groups x 3 clips; other classes skipped
    assert m["skipped_other_classes"] == 3 * 2 * 3
    assert set(m["per_class"]) == {"SynthWave", "SynthSquat", "SynthWalk"}
    assert (tmp_path / "ev" / "confusion_best.png").exists()

    clip = next((synth_root / "UCF-101" / "SynthWave").glob("*.avi"))
    r = run("predict", "--checkpoint", out / "best.pt", clip, "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert set(p["probs"]) == {"SynthWave", "SynthSquat", "SynthWalk"}
    assert abs(sum(p["probs"].values()) - 1) < 1e-5
    assert p["frame_indices"] == [2, 8, 13, 18, 24, 29]  # uniform sampling of 32 frames


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data-root", "/no/such/dir"], "data root not found"),
        (["train"], "no data root given"),
        (["train", "--data-root", "{synth}", "--classes", "Jumping"], "unknown class"),
        (["train", "--lr", "-1"], "lr must be > 0"),
        (["train", "--config", "{bad_config}"], "not valid JSON"),
        (["evaluate", "--checkpoint", "/no/ckpt.pt", "--data-root", "{synth}"], "checkpoint not found"),
        (["predict", "--checkpoint", "{junk}", "x.avi"], "not a readable checkpoint"),
    ],
)
def test_bad_inputs_give_one_line_errors(synth_root, tmp_path, args, message, capsys):
    from train_cli import main  # in-process: the same code path as the command, without a new Python each time

    bad_config = tmp_path / "params.json"
    bad_config.write_text('{"train": {"lr": }')
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    args = [a.format(synth=synth_root, bad_config=bad_config, junk=junk) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0


def test_predict_reports_a_bad_video_and_goes_on(synth_root, tmp_path):
    out = tmp_path / "run"
    cmd = train_command(
        synth_root, out, "none", "--epochs", 1, "--classes", "SynthWave", "SynthSquat", *TINY, launcher=()
    )
    assert run(*cmd[1:]).returncode == 0
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello")
    good = next((synth_root / "UCF-101" / "SynthWave").glob("*.avi"))
    r = run("predict", "--checkpoint", out / "last.pt", bad, good)
    assert r.returncode == 1
    assert "notes.mp4" in r.stderr and "Traceback" not in r.stderr
    assert good.name in r.stdout


def test_corrupt_clip_in_dataset_names_the_file(tmp_path):
    import numpy as np
    from vidclf.video import write_video

    for cls in ("A", "B"):
        for g in (1, 2):
            write_video(tmp_path / "data" / cls / f"v_{cls}_g0{g}_c01.avi", np.zeros((4, 32, 32, 3), np.uint8))
    (tmp_path / "data" / "B" / "v_B_g03_c01.avi").write_bytes(b"\x00" * 1000)
    r = run(
        "train",
        "--data-root",
        tmp_path / "data",
        "--out-dir",
        tmp_path / "run",
        "--epochs",
        "1",
        "--cache-dir",
        "none",
        "--val-fraction",
        "0",
        *TINY,
    )
    assert r.returncode == 2
    assert "v_B_g03_c01.avi" in r.stderr and "Traceback" not in r.stderr


def test_cross_validation_by_group_folds(synth_root, tmp_path):
    r = run(
        "cv",
        "--data-root",
        synth_root,
        "--out-dir",
        tmp_path / "cv",
        "--folds",
        "3",
        "--epochs",
        "1",
        "--cache-dir",
        tmp_path / "c",
        "--classes",
        "SynthWave",
        "SynthSquat",
        *TINY,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(summary["folds"]) == 3
    held = sorted(g for f in summary["folds"] for g in f["val_groups"])
    assert held == ["g02", "g03", "g05", "g06"]  # split 1 trains on groups 2, 3, 5, 6: each validates exactly once
    assert "cross-validated accuracy" in r.stdout


@pytest.mark.parametrize("command", ["train", "cv"])
def test_help_gives_every_setting_a_plain_metavar_and_a_description(command):
    import dataclasses

    from train_cli import build_parser
    from vidclf.config import SECTIONS

    sub = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    text = sub.format_help()
    assert "CFG__" not in text
    by_flag = {a.option_strings[0]: a for a in sub._actions if a.option_strings}
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            action = by_flag["--" + f.name.replace("_", "-")]
            description = action.help.split("(params.json:")[0].strip()
            assert len(description) > 10, f"--{f.name} has no description"
    assert "--data-root PATH" in text and "--lr X" in text and "--epochs N" in text


def test_progress_bars_stay_out_of_a_redirected_log(synthetic_pose_run, synth_root, tmp_path, capsys):
    from train_cli import main

    args = ["--backbone", "pose", "--num-classes", "0", "--num-frames", "8", "--epochs", "2", "--batch-size", "8"]
    assert main(train_command(synth_root, tmp_path / "run", tmp_path / "c", *args)[2:]) == 0
    out, err = capsys.readouterr()
    assert "epoch 2/2:" in out  # one line per epoch ...
    assert "it/s" not in err and "\r" not in err, err[:300]  # ... and no bars where stderr is not a terminal
    ck = synthetic_pose_run / "last.pt"
    assert main(["evaluate", "--checkpoint", str(ck), "--data-root", str(synth_root), "--no-progress"]) == 0
    assert "it/s" not in capsys.readouterr().err


def test_evaluate_says_which_clips_and_estimates_landmarks_once_for_all_checkpoints(
    synthetic_pose_run, synth_root, tmp_path, monkeypatch, capsys
):
    import json
    import shutil

    import numpy as np

    import vidclf.data.landmarks as landmarks
    from train_cli import main

    root = tmp_path / "clips"  # the synthetic clips without their known landmarks: estimated like a real clip's
    shutil.copytree(synth_root, root, ignore=shutil.ignore_patterns("*.pose.npy"))
    estimated: list[int] = []

    def fake_estimator():
        def estimate(frames):
            estimated.append(len(frames))
            return np.random.default_rng(len(estimated)).random((len(frames), 33, 4)).astype(np.float32)

        return estimate

    monkeypatch.setattr(landmarks, "PoseEstimator", fake_estimator)
    monkeypatch.chdir(tmp_path)  # the default landmark cache, .cache/vidclf, is relative like training's
    best, last = (str(synthetic_pose_run / n) for n in ("best.pt", "last.pt"))
    assert main(["evaluate", "--checkpoint", best, last, "--data-root", str(root), "--no-progress"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"{best}: 36 clips of the SYNTHETIC set (UCF-101 layout), split 1 test (subset 'test') from {root}"
    assert len(estimated) == 36  # 6 classes x 2 test groups x 3 clips, each estimated once for both checkpoints
    assert main(["evaluate", "--checkpoint", last, "--data-root", str(root), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["num_clips"] == 36 and "36 clips" in err  # a --json answer is JSON alone
    assert len(estimated) == 36  # a later run reads the cache


def test_evaluate_and_predict_answer_the_same_clips(synthetic_pose_run, synth_root, tmp_path, capsys, monkeypatch):
    """The threshold and the person gate, per class, decide the same clips in both commands."""
    import dataclasses
    import shutil

    import numpy as np

    from train_cli import main
    from vidclf.checkpoint import load_checkpoint, save_checkpoint
    from vidclf.data.index import build_index
    from vidclf.evaluate import evaluate_checkpoint

    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    test_clips = [r.path for r in build_index(root, "test", split=1, num_classes=0).records]
    for clip in test_clips[::3]:  # a third of the clips show no person at all
        known = clip.with_suffix(".pose.npy")
        np.save(known, np.full_like(np.load(known), np.nan))
    ck = load_checkpoint(synthetic_pose_run / "last.pt")
    plain = evaluate_checkpoint(synthetic_pose_run / "last.pt", root, landmark_cache_dir=str(tmp_path / "c"))
    nobody = {str(c) for c in test_clips[::3]}
    evidence = np.sort([c["evidence"] for c in plain["clips"]])
    quarter = float(evidence[len(evidence) // 4 : len(evidence) // 4 + 2].mean())  # between two clips
    # a quarter of the clips refused for too little evidence, but not every clip without a person
    threshold = min(quarter, max(c["evidence"] for c in plain["clips"] if c["path"] in nobody) - 1e-3)
    taken_for = {c["predicted"] for c in plain["clips"] if c["path"] in nobody}
    paths = {}
    for name, gate in (("gated", list(ck.classes)), ("open", [c for c in ck.classes if c not in taken_for])):
        changed = dataclasses.replace(ck, info={**ck.info, "person_gate": gate}, reject_threshold=threshold)
        paths[name] = str(save_checkpoint(tmp_path / f"{name}.pt", changed))
    # Both commands read the landmarks given beside each clip (evaluate through the training cache; predict never
    # reads side files, so its estimates are replaced by the same given landmarks of the clip it predicts).
    from vidclf import predict as predict_module
    from vidclf.data.landmarks import landmarks_beside

    current: dict[str, np.ndarray] = {}
    original = predict_module.Predictor.predict

    def predict_given(self, path, *args, **kwargs):
        current["every"] = landmarks_beside(path)
        return original(self, path, *args, **kwargs)

    def given(self, indices):
        every = current["every"]
        return every[np.minimum(indices, len(every) - 1)]

    class Nobody:  # the workout log's tracker: what it finds is not what the two commands are compared on
        def __call__(self, frame):
            return np.full((33, 4), np.nan, np.float32)

        def close(self):
            pass

    monkeypatch.setattr(predict_module.Predictor, "predict", predict_given)
    monkeypatch.setattr(predict_module._Marks, "__call__", given)
    monkeypatch.setattr(predict_module._EarlyMarks, "offer", lambda self, i, frame: None)  # no estimate to replace
    monkeypatch.setattr(predict_module.Predictor, "new_tracker", lambda self: Nobody())
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", *paths.values(), "--data-root", str(root), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    answered = {}
    for name, path in paths.items():
        by_eval = {c["path"]: c["answered"] for c in evaluated[path]["clips"]}
        assert main(["predict", "--checkpoint", path, *map(str, test_clips), "--json"]) == 0
        by_predict = {p["video"]: p["known"] for p in json.loads(capsys.readouterr().out)}
        assert by_eval == by_predict, name
        answered[name] = {c for c, known in by_eval.items() if known}
    assert not answered["gated"] & nobody and answered["open"] & nobody  # the gate off where it is off
    assert 0 < len(answered["gated"]) < len(test_clips) and answered["gated"] < answered["open"]
