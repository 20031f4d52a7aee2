"""A pose stream trained with clips of other actions refuses other actions and answers its own classes.

On the SYNTHETIC set's known landmarks (no pose estimator): three of its movements are the classes, two
others (waving, walking) are the "other" clips; held-out groups of both are scored through the predictor's
one rule.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vidclf.checkpoint import Checkpoint, InputSpec, load_checkpoint, save_checkpoint
from vidclf.config import apply_overrides, load_config
from vidclf.data.synthetic import render_clip_with_landmarks
from vidclf.training.open_set import OpenSetData, mixed_folds, open_set_report, train_open_set
from vidclf.verdict import combine, decide

ROOT = Path(__file__).resolve().parent.parent
KNOWN = ("SynthJumpingJack", "SynthSquat", "SynthRaiseArms")
OTHER = ("SynthWave", "SynthWalk")


def _data(groups: range, clips: int = 2) -> OpenSetData:
    raw, labels, kinds, group = [], [], [], []
    for g in groups:
        for c in range(clips):
            for i, action in enumerate(KNOWN + OTHER):
                raw.append(render_clip_with_landmarks(action, g, c, size=(48, 48), num_frames=16)[1])
                labels.append(min(i, len(KNOWN)))
                kinds.append("ucf" if i < len(KNOWN) else "other")
                group.append(f"g{g:02d}")
    return OpenSetData(
        raw=np.stack(raw),
        labels=np.array(labels),
        groups=np.array(group),
        kinds=np.array(kinds),
        paths=np.array([f"clip{i}" for i in range(len(raw))]),
        classes=KNOWN,
    )


@pytest.fixture(scope="module")
def trained():
    cfg = apply_overrides(
        load_config(ROOT / "presets" / "pose.json"),
        {"num_frames": 16, "hidden_size": 32, "num_layers": 1, "epochs": 25, "batch_size": 8, "lr": 3e-3},
    )
    model = train_open_set(_data(range(4)), cfg, recipe="both", seed=0)
    spec = InputSpec.from_config(cfg)
    ck = Checkpoint(
        model=cfg.model,
        classes=KNOWN,
        input=spec,
        state_dict=model.state_dict(),
        other_output=True,
        reject_threshold=0.5,
    )
    return ck, _data(range(4, 6))


def _scores(ck: Checkpoint, data: OpenSetData):
    from vidclf.training.open_set import landmark_logits

    logits = torch.from_numpy(landmark_logits(ck.build_model(), data.raw))
    return decide(combine([logits], [1.0], [True], len(KNOWN)), len(KNOWN), ck.reject_threshold)


def test_a_trained_other_is_refused_and_known_clips_are_not(trained):
    ck, held = trained
    probs, known, _ = _scores(ck, held)
    is_known = held.labels < len(KNOWN)
    assert known[~is_known].float().mean() <= 0.2  # other actions refused
    assert known[is_known].float().mean() >= 0.9  # known actions answered
    right = probs.argmax(1).numpy() == held.labels
    assert right[is_known].mean() >= 0.9


def test_the_checkpoint_keeps_other_out_of_its_classes_and_the_predictor_refuses(trained, tmp_path):
    from vidclf.predict import Predictor

    ck, held = trained
    path = save_checkpoint(tmp_path / "pose_other.pt", ck, half=True)
    back = load_checkpoint(path)
    assert back.other_output and back.classes == KNOWN
    predictor = Predictor(path)
    assert predictor.classes == KNOWN
    wave = int(np.flatnonzero(held.labels == len(KNOWN))[0])
    squat = int(np.flatnonzero(held.labels == 1)[0])
    for row, want in ((wave, False), (squat, True)):
        lg = predictor.streams[0][0].logits(
            torch.from_numpy(__import__("vidclf.models.pose", fromlist=["x"]).normalize_landmarks(held.raw[row]))[None]
        )[0]
        assert lg.shape == (len(KNOWN) + 1,)
        probs, known, score = predictor.verdict(predictor.fuse([lg]), 1.0)
        assert probs.shape == (len(KNOWN),) and known is want and 0 <= score <= 1
        assert predictor.verdict(predictor.fuse([lg]), 0.0)[1] is False  # nobody in the clip: refused whatever


def test_a_pixel_stream_has_no_say_in_not_one_of_these():
    """Fused with a stream without an "other" output, only the streams that have one decide "other"."""
    pose = torch.tensor([[2.0, 0.0, 0.0, 5.0]])  # sure it is "other"
    motion = torch.tensor([[9.0, 0.0, 0.0]])  # sure it is class 0
    fused = combine([pose, motion], [0.6, 0.3], [True, False], 3)
    probs, known, score = decide(fused, 3, 0.5)
    assert not bool(known[0]) and float(score[0]) < 0.1
    assert torch.allclose(fused[0, :3], 0.6 * pose[0, :3] + 0.3 * motion[0])


def test_old_checkpoints_keep_the_evidence_rule():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.1, 0.0, 0.0]])
    fused = combine([logits], [1.0], [False], 3)
    assert fused.shape == (2, 3)
    _, known, score = decide(fused, 3, 2.0)
    assert known.tolist() == [True, False]
    assert torch.allclose(score, torch.logsumexp(logits, 1))


def test_folds_never_split_a_group():
    groups = np.array(["g08", "g09", "g08", "repoA", "repoA", "repoB", "g10", "repoC"])
    kinds = np.array(["ucf", "ucf", "ucf", "real", "other", "other", "ucf", "real"])
    folds = mixed_folds(groups, kinds, 3)
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    assert folds[groups == "repoA"][0] != folds[groups == "repoB"][0]  # real clips spread over folds


def test_report_counts_refusals_at_the_answered_share():
    k = 2
    logits = np.array([[5.0, 0, -5], [4, 0, -5], [0, 3, -4], [0, 4, -6], [0, 0, 5], [0, 0, 6], [3, 0, -4], [0, 0, 3]])
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 2])
    kinds = np.array(["ucf", "ucf", "ucf", "ucf", "other", "other", "real", "other"])
    r = open_set_report(logits, labels, kinds=kinds, folds=np.array([0, 1, 0, 1, 0, 1, 0, 1]), num_classes=k)
    assert r["other_refused_95"] == 1.0 and r["auroc"] == 1.0 and r["real_acc_pooled"] == 1.0
    assert json.dumps(r)


def _signatures(actions: tuple[str, ...], groups: range, clips: int = 3) -> tuple[np.ndarray, np.ndarray]:
    from vidclf.novelty import movement_signature

    sigs, labels = [], []
    for g in groups:
        for c in range(clips):
            for i, action in enumerate(actions):
                raw = render_clip_with_landmarks(action, g, c, size=(48, 48), num_frames=32)[1]
                sig = movement_signature(raw)
                assert sig is not None
                sigs.append(sig)
                labels.append(i)
    return np.stack(sigs), np.array(labels)


def test_a_class_profile_refuses_a_movement_of_the_wrong_shape():
    """Fit on three synthetic movements; held-out clips of them pass, waving and walking answered as any of them
    do not (the shape of the movement, not the classifier's confidence, decides)."""
    import dataclasses

    from vidclf.novelty import MovementProfile

    profile = MovementProfile.fit(*_signatures(KNOWN, range(4)), KNOWN)
    held, held_labels = _signatures(KNOWN, range(10, 12))
    known_novelty = profile.novelty(held, held_labels)
    assert known_novelty.shape == (len(held),) and known_novelty.max() < 3.0
    for action in OTHER:
        other, _ = _signatures((action,), range(10, 12))
        for k in range(len(KNOWN)):
            assert profile.novelty(other, k).min() > 3 * known_novelty.max(), (action, KNOWN[k])
    judged = dataclasses.replace(profile, threshold=3.0)
    squat = render_clip_with_landmarks("SynthSquat", 11, 0, size=(48, 48), num_frames=32)[1]
    walk = render_clip_with_landmarks("SynthWalk", 11, 0, size=(48, 48), num_frames=32)[1]
    assert judged.judge(squat, KNOWN.index("SynthSquat"))[0] is True
    assert judged.judge(walk, KNOWN.index("SynthSquat"))[0] is False
    nobody = np.full_like(squat, np.nan)
    assert judged.judge(nobody, 0) == (True, None)  # no person: the check abstains (the person gate decides)


def test_a_movement_signature_is_the_same_for_the_mirrored_clip():
    from vidclf.models.pose import mirror_landmarks
    from vidclf.novelty import SIGNATURE_DIM, movement_signature

    raw = render_clip_with_landmarks("SynthWave", 3, 1, size=(48, 48), num_frames=32)[1]
    sig = movement_signature(raw)
    assert sig is not None and sig.shape == (SIGNATURE_DIM,) and np.isfinite(sig).all()
    assert np.allclose(movement_signature(mirror_landmarks(raw)), sig, atol=1e-6)  # 1 - x in float32


def test_a_movement_profile_survives_a_checkpoint_and_refuses_another_signature(tmp_path):
    import dataclasses

    from vidclf.novelty import MovementProfile

    sigs, labels = _signatures(KNOWN, range(2), clips=2)
    profile = dataclasses.replace(MovementProfile.fit(sigs, labels, KNOWN), threshold=2.5)
    back = MovementProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert back.threshold == 2.5 and back.classes == KNOWN
    assert np.allclose(back.novelty(sigs, labels), profile.novelty(sigs, labels))
    stale = {**profile.to_dict(), "signature": ["found", "upright_mean"]}
    with pytest.raises(ValueError, match="another movement signature"):
        MovementProfile.from_dict(stale)
    with pytest.raises(ValueError, match="too few"):
        MovementProfile.fit(sigs[labels != 2], labels[labels != 2], KNOWN)


def test_the_combined_rule_answers_its_share_and_reports_refusals():
    from vidclf.training.open_set import combined_rule_report

    k = 2
    labels = np.array([0, 1] * 10 + [k] * 10)
    kinds = np.array(["ucf"] * 16 + ["real"] * 4 + ["other"] * 10)
    folds = np.arange(30) % 2
    evidence = np.full(30, 5.0)
    evidence[-5:] = 0.0  # half the other clips: low evidence, the rest: a movement unlike any class
    novelty = np.concatenate([np.linspace(0.5, 1.9, 20), np.full(10, 4.0)])
    predicted = labels.copy()
    predicted[-10:] = 0
    r = combined_rule_report(
        evidence, novelty, predicted=predicted, labels=labels, kinds=kinds, folds=folds, num_classes=k, answered=0.95
    )
    c = r["combined"]
    assert c["known_answered"] == 0.95 and c["novelty_threshold"] == pytest.approx(np.linspace(0.5, 1.9, 20)[-2])
    assert c["other_refused"] == 1.0 and c["other_refused_by_fold"] == [1.0, 1.0]
    assert c["real_refused"] == 0.25 and c["real_answered_right"] == 0.75  # the most novel known clip is real
    assert r["evidence_alone"]["other_refused"] == 0.5 and r["novelty_auroc"] == 1.0
    assert json.dumps(r)


def test_openset_novelty_measures_the_check_on_an_openset_runs_folds(tmp_path, capsys):
    """The command end to end on a tree laid out as ../shared/real (landmarks beside each clip: no pose
    estimator), on the folds of the --oof run: the synthetic other movements, answered as a known class as
    surely as the known clips are (the evidence cannot tell them apart), are refused by the movement check."""
    from train_cli import main
    from vidclf.training.open_set import load_open_set_data

    root = tmp_path / "real"
    rows = ["path\tlabel\tsource_repo"]
    for r in range(6):
        for c in range(2):
            for action in KNOWN + OTHER:
                part = "positive" if action in KNOWN else "other"
                if part == "other" and c:
                    continue
                rel = f"{part}/{action}/repo{r}__clip{c}.mp4"
                marks = render_clip_with_landmarks(action, r, c, size=(48, 48), num_frames=32)[1]
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                np.save((root / rel).with_suffix(".pose.npy"), marks)
                rows.append(f"{rel}\t{action}\towner{r}/repo{r}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    data = load_open_set_data(None, str(root), num_frames=32, cache_dir=None)
    assert data.classes == tuple(sorted(KNOWN)) and (data.kinds == "other").sum() == 12
    k = len(data.classes)
    logits = np.full((len(data.labels), k), -5.0)
    logits[np.arange(len(data.labels)), data.labels % k] = 5.0
    oof = tmp_path / "oof.npz"
    folds = mixed_folds(data.groups, data.kinds, 3)
    np.savez(oof, paths=data.paths, folds=folds, logits=logits)
    out = tmp_path / "novelty"
    assert main(["openset-novelty", "--oof", str(oof), "--real-root", str(root), "--out-dir", str(out)]) == 0
    assert "other refused" in capsys.readouterr().out
    report = json.loads((out / "novelty.json").read_text())
    by_share = {r["evidence_answered"]: r for r in report["rows"]}
    alone = by_share[1.0]
    assert alone["evidence_alone"]["other_refused"] == 0.0  # the evidence cannot tell them apart here
    assert alone["combined"]["other_refused"] == 1.0 and alone["novelty_auroc"] == 1.0
    assert alone["combined"]["known_answered"] <= 0.95
    with np.load(out / "novelty_oof.npz") as z:
        assert np.array_equal(z["folds"], folds) and z["novelty_shrink0.5"].shape == (len(data.labels),)
