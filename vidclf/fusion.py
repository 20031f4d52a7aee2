"""Late fusion and rejection, chosen on out-of-fold validation predictions (never on test clips).

Pure functions on log-probabilities ``[N, K]`` of clips whose model never trained on them (a group
cross-validation's ``oof.npz``):

* :func:`choose_weights` finds the streams' weights that minimise the fused negative log-likelihood, so the
  fused probabilities are calibrated as well as accurate;
* :func:`rejection_threshold` sets the top-probability threshold below which a clip is "not one of these",
  so that a chosen share (95 %) of clips of known classes is still answered;
* :func:`nested_fusion_accuracy` measures the recipe honestly: each group fold's weights are chosen on the
  other folds only.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(0, 21))  # 0.0 ... 2.0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def fuse(log_probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Fused log-probabilities ``[N, K]``: the weighted sum of the streams' log-probabilities, renormalised."""
    return _log_softmax(sum(w * lp for w, lp in zip(weights, log_probs)))


def nll(log_probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def choose_weights(log_probs: Sequence[np.ndarray], labels: np.ndarray, *, grid: Sequence[float] = WEIGHT_GRID,
                   max_ratio: float | None = None) -> tuple[float, ...]:
    """The weights (one per stream, from ``grid``, not all zero) with the lowest fused NLL on ``labels``.

    ``max_ratio`` bounds every later stream's weight by ``max_ratio`` times the first stream's: a prior that
    the first stream (the pose stream) travels to new cameras and rooms better than the others, which
    validation groups of one data set cannot show.
    """
    best, best_w = np.inf, None
    for w in itertools.product(grid, repeat=len(log_probs)):
        if not any(w) or (max_ratio is not None and any(x > max_ratio * w[0] for x in w[1:])):
            continue
        score = nll(fuse(log_probs, w), labels)
        if score < best:
            best, best_w = score, w
    assert best_w is not None
    return tuple(float(x) for x in best_w)


def rejection_threshold(log_probs: np.ndarray, *, answered: float = 0.95) -> float:
    """The top-probability threshold that still answers ``answered`` of these (known-class) clips."""
    top = np.exp(log_probs).max(1)
    return float(np.quantile(top, 1 - answered, method="lower"))


def nested_fusion_accuracy(log_probs: Sequence[np.ndarray], labels: np.ndarray, folds: np.ndarray, **kw) -> dict:
    """Accuracy of the fusion recipe with each fold's weights chosen on the other folds' clips only.

    ``folds`` gives each clip's fold id. Returns per-fold accuracies, their mean and standard deviation.
    """
    accs, chosen = [], []
    for f in sorted(set(folds.tolist())):
        held = folds == f
        w = choose_weights([lp[~held] for lp in log_probs], labels[~held], **kw)
        fused = fuse([lp[held] for lp in log_probs], w)
        accs.append(float((fused.argmax(1) == labels[held]).mean()))
        chosen.append(w)
    return {"fold_acc": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "weights": chosen}
