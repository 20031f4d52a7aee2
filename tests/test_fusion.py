"""Late fusion: weights and thresholds from out-of-fold predictions, the fusion checkpoint, "not one of these"."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import ROOT
from vidclf.checkpoint import fusion_checkpoint, load_checkpoint, save_checkpoint
from vidclf.errors import CheckpointError
from vidclf.fusion import choose_weights, evidence, fuse, nested_fusion_accuracy, rejection_threshold


def logits_of(correct_share, labels, k, rng, confidence=3.0):
    """Fake out-of-fold logits as a network gives them: right on ``correct_share`` of clips, not normalised, with
    a real spread of evidence (log-sum-exp): larger where the network is sure (it is less sure when wrong), and
    a per-clip scale besides."""
    logits = rng.normal(0, 1, (len(labels), k))
    right = rng.random(len(labels)) < correct_share
    target = np.where(
        right, labels, (labels + rng.integers(1, k, len(labels))) % k
    )  # errors independent of other streams
    logits[np.arange(len(labels)), target] += np.where(right, confidence, confidence / 2)  # less sure when wrong
    return logits * rng.uniform(0.8, 1.25, (len(labels), 1))


def log_probs_of(correct_share, labels, k, rng, confidence=3.0):
    """Fake out-of-fold log-probabilities (evidence 0 on every clip): for choosing weights, not thresholds."""
    logits = logits_of(correct_share, labels, k, rng, confidence)
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def test_weights_favour_the_better_stream_and_the_fusion_beats_both():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 600)
    good, weak = log_probs_of(0.8, labels, 5, rng), log_probs_of(0.6, labels, 5, rng)
    w = choose_weights([good, weak], labels)
    assert w[0] > w[1] > 0
    fused = fuse([good, weak], w)
    assert np.allclose(fused, w[0] * good + w[1] * weak)
    acc = lambda lp: (lp.argmax(1) == labels).mean()  # noqa: E731
    assert acc(fused) > acc(good) > acc(weak)
    assert (
        choose_weights([good, weak], labels, max_ratio=0.5)[1]
        <= 0.5 * choose_weights([good, weak], labels, max_ratio=0.5)[0]
    )
    nested = nested_fusion_accuracy([good, weak], labels, np.arange(600) % 6)
    assert len(nested["fold_acc"]) == 6 and abs(nested["mean"] - acc(fused)) < 0.05


def test_rejection_threshold_answers_the_asked_share_and_evidence_sees_disagreement():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 400)
    lg = logits_of(0.9, labels, 4, rng)
    ev = evidence(lg)
    assert np.allclose(ev, np.log(np.exp(lg).sum(1))) and ev.std() > 0.5  # a spread to rank, not rounding noise
    t = rejection_threshold(lg, answered=0.95)
    answered = ev >= t
    assert 0.95 <= answered.mean() <= 0.96 and abs(t - np.quantile(ev, 0.05)) < 0.1
    right = lg.argmax(1) == labels
    assert (~answered[~right]).mean() > 2 * (~answered[right]).mean()  # the unsure (often wrong) clips go first
    gate = np.arange(400) % 50 != 0  # an earlier rule refuses 2 % of the clips (8): the threshold takes 3 % more
    t_gated = rejection_threshold(lg, answered=0.95, passed=gate)
    assert t_gated < t and ((ev >= t_gated) & gate).sum() == 380
    sure, unsure = np.array([[6.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]])
    assert evidence(sure)[0] > evidence(unsure)[0]
    agree = fuse([sure, sure], [1.0, 1.0])
    disagree = fuse([sure, np.array([[0.0, 6.0, 0.0]])], [1.0, 1.0])
    assert evidence(agree)[0] > evidence(disagree)[0] + 5  # two streams that disagree: little evidence for any class


def test_fusion_checkpoint_round_trip_and_prediction(synthetic_pose_run, synth_root, tmp_path):
    from vidclf.predict import Predictor

    pose = load_checkpoint(synthetic_pose_run / "last.pt")
    pixels = load_checkpoint(ROOT / "weights" / "synthetic.pt")
    assert pose.classes == pixels.classes
    ck = fusion_checkpoint(
        [(pose, 1.0), (pixels, 0.5)], reject_threshold=0.4, metrics={"cv_acc": 0.9}
    )  # on the evidence
    path = save_checkpoint(tmp_path / "fusion.pt", ck, half=True)
    back = load_checkpoint(path)
    assert back.is_fusion and back.backbone == "fusion(pose+custom)" and back.reject_threshold == 0.4
    assert [w for _, w in back.streams] == [1.0, 0.5] and back.metrics["cv_acc"] == 0.9
    assert back.streams[0][0].input.features == "landmarks" and back.streams[1][0].input.img_size == 64
    assert all(v.dtype == torch.float16 for v in back.streams[1][0].state_dict.values() if v.is_floating_point())
    with pytest.raises(CheckpointError, match="one model per stream"):
        back.build_model()

    clip = next((synth_root / "UCF-101" / "SynthSquat").glob("*g01_c01.avi"))
    person = np.load(clip.with_suffix(".pose.npy"))[5]

    def still_person(frames):  # a pose estimator that finds one still person in every frame
        return np.repeat(person[None], len(frames), axis=0)

    p = Predictor(path, pose_estimator=still_person).predict(clip)
    pose_alone = Predictor(pose, pose_estimator=still_person).predict(clip)
    pixels_alone = Predictor(pixels).predict(clip)
    expected = torch.tensor(
        [np.log(pose_alone.probs[c]) + 0.5 * np.log(pixels_alone.probs[c]) for c in pose.classes]
    ).softmax(0)
    assert np.allclose([p.probs[c] for c in pose.classes], expected.numpy(), atol=2e-3)  # fp16 weights
    # each stream's logits are its log-probabilities plus its evidence: the fusion's evidence follows from them
    fused = [
        np.log(pose_alone.probs[c]) + pose_alone.score + 0.5 * (np.log(pixels_alone.probs[c]) + pixels_alone.score)
        for c in pose.classes
    ]
    score = float(torch.logsumexp(torch.tensor(fused), 0))
    assert abs(p.score - score) < 0.05
    for threshold, known in ((score - 0.5, True), (score + 0.5, False)):
        strict = save_checkpoint(tmp_path / "t.pt", dataclasses.replace(back, reject_threshold=threshold), half=True)
        q = Predictor(strict, pose_estimator=still_person).predict(clip)
        assert q.known is known and q.threshold == threshold and q.to_dict()["known"] is known
    assert set(p.streams) == {"pose", "custom"} and p.deciding_stream in {"pose", "custom"}
    assert p.landmarks is not None and p.landmarks.shape == (16, 33, 4)
    assert p.frames.shape[0] == 16  # the frames the pose stream saw, with their skeletons drawable
    d = p.to_dict()
    assert (d["known"], d["evidence"], d["threshold"]) == (p.known, p.score, 0.4) and d["label"] == p.label


def test_fusion_refuses_streams_of_other_classes(synthetic_pose_run):
    pose = load_checkpoint(synthetic_pose_run / "last.pt")
    other = load_checkpoint(ROOT / "weights" / "custom.pt")
    with pytest.raises(CheckpointError, match="share their classes"):
        fusion_checkpoint([(pose, 1.0), (other, 1.0)])


def test_a_clip_below_the_threshold_is_not_one_of_these(synth_root, tmp_path, capsys):
    import dataclasses

    from train_cli import main

    ck = load_checkpoint(ROOT / "weights" / "synthetic.pt")
    strict = save_checkpoint(tmp_path / "strict.pt", dataclasses.replace(ck, reject_threshold=1e6), half=True)
    clip = next((synth_root / "UCF-101" / "SynthWave").glob("*.avi"))
    assert main(["predict", "--checkpoint", str(strict), str(clip), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["known"] is False and out["threshold"] == 1e6 and out["label"] in ck.classes and out["evidence"] < 1e6
    assert main(["predict", "--checkpoint", str(strict), str(clip)]) == 0
    assert "not one of the 6 actions this model knows" in capsys.readouterr().out
    assert main(["predict", "--checkpoint", str(ROOT / "weights" / "synthetic.pt"), str(clip), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["known"] is True  # no threshold: always an answer


def test_calibrate_and_fuse_from_out_of_fold_files(synthetic_pose_run, tmp_path, capsys):
    from train_cli import main

    pose = load_checkpoint(synthetic_pose_run / "last.pt")
    rng = np.random.default_rng(2)
    paths = np.array([f"/d/UCF-101/C/v_C_g{g:02d}_c01.avi" for g in range(1, 13) for _ in range(10)])
    labels = rng.integers(0, 6, len(paths))
    folds = np.arange(len(paths)) // 10 % 6
    for name, share in (("a", 0.85), ("b", 0.6)):
        np.savez(
            tmp_path / f"{name}.npz",
            paths=paths,
            labels=labels,
            folds=folds,
            logits_last=logits_of(share, labels, 6, rng),
            logits_best=logits_of(share, labels, 6, rng),
        )
    target = save_checkpoint(tmp_path / "pose.pt", pose, half=True)
    assert main(["calibrate", "--checkpoint", str(target), "--oof", str(tmp_path / "a.npz")]) == 0
    cal = load_checkpoint(target)
    with np.load(tmp_path / "a.npz") as z:
        answered = (evidence(z["logits_last"]) >= cal.reject_threshold).mean()
    assert 0.95 <= answered <= 0.96 and 0.7 < cal.metrics["cv_acc"] < 1
    other = save_checkpoint(tmp_path / "synth.pt", load_checkpoint(ROOT / "weights" / "synthetic.pt"), half=True)
    out = tmp_path / "fusion.pt"
    assert (
        main(
            [
                "fuse",
                "--stream",
                str(target),
                "--oof",
                str(tmp_path / "a.npz"),
                "--stream",
                str(other),
                "--oof",
                str(tmp_path / "b.npz"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    fused = load_checkpoint(out)
    w = fused.info["weights"]
    assert fused.is_fusion and w[0] >= w[1] and fused.reject_threshold is not None
    assert fused.metrics["cv_acc"] >= fused.metrics["streams_cv_acc"]["custom"]
    assert "nested cross-validated accuracy" in capsys.readouterr().out


def test_evaluate_a_fusion_checkpoint_streams_weighted(synthetic_pose_run, synth_root, tmp_path):
    from vidclf.data.index import build_index
    from vidclf.evaluate import checkpoint_logits, evaluate_checkpoint, stream_logits

    pose = load_checkpoint(synthetic_pose_run / "last.pt")
    pixels = load_checkpoint(ROOT / "weights" / "synthetic.pt")
    path = save_checkpoint(
        tmp_path / "fusion.pt", fusion_checkpoint([(pose, 1.0), (pixels, 0.5)], reject_threshold=2.0)
    )
    records = build_index(synth_root, "test", split=1, classes=pose.classes, num_classes=0).records
    fused = checkpoint_logits(load_checkpoint(path), records)
    expected = stream_logits(pose, records) + 0.5 * stream_logits(pixels, records)
    assert fused.shape == (36, 6) and torch.allclose(fused, expected, atol=1e-4)
    m = evaluate_checkpoint(path, synth_root, split=1, subset="test")
    assert m["model"] == "fusion(pose+custom)" and m["num_clips"] == 36
    assert m["top1"] == (fused.argmax(1) == torch.tensor([r.label for r in records])).float().mean().item()
    answered = (torch.logsumexp(fused, 1) >= 2.0).float().mean().item()
    assert m["rejection"]["threshold"] == 2.0 and abs(m["rejection"]["answered"] - answered) < 1e-6


def test_rejection_threshold_says_when_the_person_gate_alone_refuses_too_many():
    from vidclf.errors import DatasetError

    rng = np.random.default_rng(0)
    lg = log_probs_of(0.9, rng.integers(0, 3, 100), 3, rng)
    passed = np.arange(100) >= 30  # no person found on 30 of 100 clips: at most 70 % can be answered
    with pytest.raises(DatasetError, match=r"refuses 30 of these 100 .* lower --answered to 0\.70 or less"):
        rejection_threshold(lg, answered=0.95, passed=passed)
    t = rejection_threshold(lg, answered=0.70, passed=passed)
    assert ((evidence(lg) >= t) & passed).sum() == 70
