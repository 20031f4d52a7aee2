"""The shipped checkpoints keep their promise on "not one of these": their threshold answers 95 % of known-class
clips that their recipe never trained on.

Each shipped model with an evidence threshold has, beside it, the out-of-fold predictions of its recipe mapped
to its own scale (``weights/<name>.oof.npz``, written by ``train_cli.py calibrate --run ...``; see
``vidclf.calibration.calibrate_on_shipped``). The models with a pose stream also check the movement
(``vidclf.novelty``): beside them, ``weights/<name>.movement.npz`` holds every clip they were calibrated and
measured on (UCF-101 out of fold, real-world clips of the classes and of other actions; written by
``train_cli.py calibrate-movement``). The tests run them through the predictor's own rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidclf.calibration import evidence_map
from vidclf.fusion import evidence, rejection_threshold_of_scores
from vidclf.checkpoint import load_checkpoint
from vidclf.predict import Predictor
from vidclf.verdict import decide

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


@pytest.mark.parametrize("name", ["efficientnet_lite0"])
def test_shipped_threshold_answers_95_percent_of_out_of_fold_known_clips(name):
    ck = load_checkpoint(WEIGHTS / f"{name}.pt")
    with np.load(WEIGHTS / f"{name}.oof.npz", allow_pickle=False) as z:
        logits, found, folds, labels = z["logits"], z["pose_found"], z["folds"], z["labels"]
    assert logits.shape == (528, len(ck.classes)) and len(set(folds.tolist())) == 6  # every training clip, 6 folds
    judge = Predictor(ck, device="cpu")
    answered = np.array([judge.verdict(torch.from_numpy(lg), float(f))[1] for lg, f in zip(logits, found)])
    assert abs(answered.mean() - 0.95) <= 0.03, f"{name} answers {answered.mean():.3f} of the out-of-fold clips"
    # the mapping moves the evidence only, never the answer: the recipe's cross-validated accuracy is intact
    assert (logits.argmax(1) == labels).mean() > 0.7
    assert ck.info["reject_calibration"].endswith("the clips both trained on")


def test_the_evidence_map_takes_a_fold_model_to_the_shipped_models_scale():
    fold = np.random.default_rng(0).normal(3.0, 0.7, 400)
    a, b = evidence_map(fold, 1.8 * fold - 0.4)
    assert a == pytest.approx(1.8) and b == pytest.approx(-0.4)
    # only mean and spread count: the order of the clips does not
    a2, b2 = evidence_map(fold, np.sort(1.8 * fold - 0.4))
    assert (a2, b2) == pytest.approx((a, b))


@pytest.mark.parametrize("name", ["fusion", "pose_lstm"])
def test_the_shipped_movement_check_answers_95_percent_and_refuses_more_other_actions(name):
    ck = load_checkpoint(WEIGHTS / f"{name}.pt")
    judge = Predictor(ck, device="cpu")
    assert judge.movement is not None and judge.movement_threshold is not None
    with np.load(WEIGHTS / f"{name}.movement.npz", allow_pickle=False) as z:
        logits, found, novelty, kinds = z["logits"], z["pose_found"], z["novelty"], z["kinds"]
        source, names, oof_score = z["source"], z["names"], z["movement_score"]
    with np.load(WEIGHTS / f"{name}.oof.npz", allow_pickle=False) as z:
        oof = dict(zip(z["names"].tolist(), z["logits"]))
    ucf, real, other = kinds == "ucf", kinds == "real", kinds == "other"
    assert ucf.sum() == 528 and real.sum() >= 50 and other.sum() >= 70
    # UCF-101's rows are the recipe's out-of-fold predictions; real-world ones the shipped model's (never trained on)
    assert (source[ucf] == "oof").all() and (source[~ucf] == "shipped").all()
    assert all(np.array_equal(oof[n], lg) for n, lg in zip(names[ucf], logits[ucf]))
    answered = np.array(
        [
            judge.verdict(torch.from_numpy(lg), float(f), None if np.isnan(n) else float(n))[1]
            for lg, f, n in zip(logits, found, novelty)
        ]
    )
    known = ~other
    assert abs(answered[known].mean() - 0.95) <= 0.03, f"{name} answers {answered[known].mean():.3f} of known clips"
    assert abs(answered[ucf].mean() - 0.95) <= 0.03 and answered[real].mean() >= 0.9
    # the evidence alone, answering as many known clips, refuses at least 5 points fewer other-action clips
    gated = np.isin(np.asarray(ck.classes)[logits.argmax(1)], ck.person_gate)
    passed = (found > 0) | ~gated
    ev = evidence(logits)
    t = rejection_threshold_of_scores(ev[known], answered=float(answered[known].mean()), passed=passed[known])
    alone = passed & (ev >= t)
    assert abs(alone[known].mean() - answered[known].mean()) <= 0.01
    # the shipped odds of another action learned from these very other-action clips: they are judged by their
    # out-of-fold check scores (odds fit without their fold), through the same rule and thresholds
    assert judge.movement.odds is not None
    _, oof_known, _ = decide(
        torch.from_numpy(logits),
        len(ck.classes),
        ck.reject_threshold,
        movement_score=torch.from_numpy(oof_score),
        movement_threshold=judge.movement_threshold,
    )
    oof_known = oof_known.numpy() & passed
    assert abs(oof_known[known].mean() - 0.95) <= 0.01  # the thresholds were set on these scores
    refused, refused_alone = (~oof_known[other]).mean(), (~alone[other]).mean()
    assert refused >= refused_alone + 0.05, f"{name}: {refused:.2f} refused against {refused_alone:.2f}"
