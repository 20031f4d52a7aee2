"""The shipped checkpoints keep their promise on "not one of these": their threshold answers 95 % of known-class
clips that their recipe never trained on.

Each shipped model with an evidence threshold has, beside it, the out-of-fold predictions of its recipe mapped
to its own scale (``weights/<name>.oof.npz``, written by ``train_cli.py calibrate --run ...``; see
``vidclf.calibration.calibrate_on_shipped``). The test runs them through the predictor's own rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidclf.calibration import evidence_map
from vidclf.checkpoint import load_checkpoint
from vidclf.predict import Predictor

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


@pytest.mark.parametrize("name", ["fusion", "pose_lstm", "efficientnet_lite0"])
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
