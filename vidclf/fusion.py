"""Late fusion and rejection, chosen on out-of-fold validation predictions (never on test clips).

Pure functions on logits ``[N, K]`` of clips whose model never trained on them (a group
cross-validation's ``oof.npz``):

* :func:`choose_weights` finds the streams' weights that minimise the fused negative log-likelihood, so the
  fused probabilities are calibrated as well as accurate;
* :func:`rejection_threshold` sets the :func:`evidence` threshold below which a clip is "not one of these",
  so that a chosen share (95 %) of clips of known classes is still answered;
* :func:`nested_fusion_accuracy` measures the recipe honestly: each group fold's weights are chosen on the
  other folds only.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from collections.abc import Sequence

import numpy as np

from vidclf.data.index import group_of
from vidclf.errors import DatasetError

WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(0, 21))  # 0.0 ... 2.0


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def evidence(logits: np.ndarray) -> np.ndarray:
    """``[..., K]`` logits -> ``[...]`` evidence that a clip is one of the K classes: the log-sum-exp of the logits
    (the negative energy of Liu et al., 2020). It drops where no class scores high, and, for a fusion, where
    the streams disagree; the softmax's top probability sees neither (it is scale-free)."""
    m = logits.max(-1)
    return m + np.log(np.exp(logits - m[..., None]).sum(-1))


def fuse(logits: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Fused logits ``[N, K]``: the weighted sum of the streams' logits. Its softmax is the renormalised
    weighted sum of the streams' log-probabilities (each stream's normaliser is the same for every class)."""
    return np.sum([w * lg for w, lg in zip(weights, logits)], axis=0)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean())


def choose_weights(
    logits: Sequence[np.ndarray],
    labels: np.ndarray,
    *,
    grid: Sequence[float] = WEIGHT_GRID,
    max_ratio: float | None = None,
) -> tuple[float, ...]:
    """The weights (one per stream, from ``grid``, not all zero) with the lowest fused NLL on ``labels``.

    ``max_ratio`` bounds every later stream's weight by ``max_ratio`` times the first stream's: a prior that
    the first stream (the pose stream) travels to new cameras and rooms better than the others, which
    validation groups of one data set cannot show.
    """
    best, best_w = np.inf, None
    for w in itertools.product(grid, repeat=len(logits)):
        if not any(w) or (max_ratio is not None and any(x > max_ratio * w[0] for x in w[1:])):
            continue
        score = nll(fuse(logits, w), labels)
        if score < best:
            best, best_w = score, w
    assert best_w is not None
    return tuple(float(x) for x in best_w)


def rejection_threshold(logits: np.ndarray, *, answered: float = 0.95, passed: np.ndarray | None = None) -> float:
    """The :func:`evidence` threshold that still answers ``answered`` of these (known-class) clips.

    ``passed`` marks the clips that an earlier rule lets through (the person gate: a pose model refuses a clip
    in which no frame shows a person); the threshold then answers ``answered`` of *all* clips together with it.
    Raises :class:`DatasetError`, naming the most that can be answered, where that rule alone refuses more.
    """
    return checked_threshold(evidence(logits), answered=answered, passed=passed)


def checked_threshold(scores: np.ndarray, *, answered: float = 0.95, passed: np.ndarray | None = None) -> float:
    """:func:`rejection_threshold_of_scores`, raising :class:`DatasetError` (naming the most that can be answered)
    where the earlier rule alone refuses more than ``1 - answered`` of the clips."""
    kept = int(np.count_nonzero(np.ones(len(scores), bool) if passed is None else passed))
    if int(np.ceil(answered * len(scores))) > kept:
        most = int(np.floor(100 * kept / max(len(scores), 1))) / 100
        raise DatasetError(
            f"the person gate alone refuses {len(scores) - kept} of these {len(scores)} known-class clips (no person "
            f"found in any of their frames), more than the {1 - answered:.0%} that may be refused: no threshold "
            f"can answer {answered:.0%} of them; lower --answered to {most:.2f} or less, or calibrate on clips "
            "that show a person"
        )
    return rejection_threshold_of_scores(scores, answered=answered, passed=passed)


def open_set_threshold(
    known: np.ndarray,
    other: np.ndarray,
    *,
    known_passed: np.ndarray | None = None,
    other_passed: np.ndarray | None = None,
    min_answered: float = 0.9,
) -> float:
    """The known-class score threshold that best tells clips of the classes (scores ``known`` ``[N]``) from clips
    of other actions (``other`` ``[M]``): the one that maximises the share of known clips answered plus the
    share of other clips refused (Youden's J), among thresholds that still answer ``min_answered`` of the known
    clips; ties go to the lower threshold (more answered). ``*_passed``: the clips an earlier rule (the person
    gate) lets through; the others count as refused whatever their score."""
    kp = np.ones(len(known), bool) if known_passed is None else np.asarray(known_passed, bool)
    op = np.ones(len(other), bool) if other_passed is None else np.asarray(other_passed, bool)
    floor = rejection_threshold_of_scores(known, answered=min_answered, passed=kp)
    best, best_t = -np.inf, floor
    for t in np.unique(np.concatenate([known[kp], other[op]])):
        if t > floor:
            break
        j = ((known >= t) & kp).mean() + (~((other >= t) & op)).mean() if len(other) else 0.0
        if j > best + 1e-12:
            best, best_t = j, float(t)
    return best_t


def rejection_threshold_of_scores(scores: np.ndarray, *, answered: float, passed: np.ndarray | None = None) -> float:
    """:func:`rejection_threshold` on known-class scores ``[N]`` already computed (the highest threshold that
    answers ``answered`` of the clips, ``passed`` by an earlier rule)."""
    passed = np.ones(len(scores), bool) if passed is None else np.asarray(passed, bool)
    need = int(np.ceil(answered * len(scores)))
    kept = np.sort(scores[passed])[::-1]
    if need > len(kept) or need == 0:
        return float(kept[-1]) if len(kept) else float("inf")
    return float(kept[need - 1])


def movement_thresholds(
    evidence: np.ndarray,
    novelty: np.ndarray,
    passed: np.ndarray | None = None,
    *,
    answered: float = 0.95,
    evidence_answered: float = 0.98,
) -> tuple[float, float]:
    """The two thresholds of the rule "evidence at or above ``t_e`` AND movement novelty at or below ``t_n``" on
    known-class clips (``evidence [N]``, ``novelty [N]``, NaN where the check abstains; ``passed [N]``: the
    person gate): ``t_e`` answers ``evidence_answered`` of them (with the gate), ``t_n`` is the largest with
    which the whole rule answers at most ``answered`` of them."""
    passed = np.ones(len(evidence), bool) if passed is None else np.asarray(passed, bool)
    checked_threshold(evidence, answered=answered, passed=passed)  # raises where the gate alone refuses too many
    # where the gate alone refuses more than 1 - evidence_answered, the evidence refuses none the gate passes
    t_e = rejection_threshold_of_scores(evidence, answered=evidence_answered, passed=passed)
    ok = passed & (evidence >= t_e)
    candidates = np.unique(novelty[ok & np.isfinite(novelty)])[::-1]
    if not len(candidates):
        return t_e, float("inf")
    for t in candidates:  # from the loosest down: the first that answers no more than ``answered``
        if (ok & ~(novelty > t)).mean() <= answered:
            return t_e, float(t)
    return t_e, float(candidates[-1])


def nested_fusion_accuracy(logits: Sequence[np.ndarray], labels: np.ndarray, folds: np.ndarray, **kw) -> dict:
    """Accuracy of the fusion recipe with each fold's weights chosen on the other folds' clips only.

    ``folds`` gives each clip's fold id. Returns per-fold accuracies, their mean and standard deviation.
    """
    accs, chosen = [], []
    for f in sorted(set(folds.tolist())):
        held = folds == f
        w = choose_weights([lg[~held] for lg in logits], labels[~held], **kw)
        fused = fuse([lg[held] for lg in logits], w)
        accs.append(float((fused.argmax(1) == labels[held]).mean()))
        chosen.append(w)
    return {
        "fold_acc": accs,
        "mean": float(np.mean(accs)),
        "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "weights": chosen,
    }


def read_oof(path: str | Path, *, num_folds: int = 6, epoch: str = "last") -> dict[str, np.ndarray]:
    """An ``oof.npz`` of ``train_cli.py cv``: ``paths``, ``labels``, ``logits`` (of each fold's ``epoch``: "last",
    or "best", the epoch its validation picked) and ``folds`` (each clip's fold; files without them are recovered
    from the groups, dealt round-robin over ``num_folds`` as :func:`vidclf.data.index.group_folds` deals them)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            paths, labels, logits = z["paths"], z["labels"], z[f"logits_{epoch}"]
            folds = z["folds"] if "folds" in z.files else None
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"{path} is not an oof.npz written by `train_cli.py cv` ({type(e).__name__})") from None
    if folds is None:
        groups = [group_of(Path(p)) for p in paths]
        order = sorted(set(groups))
        folds = np.array([order.index(g) % num_folds for g in groups])
    return {"paths": paths, "labels": labels, "logits": logits.astype(np.float64), "folds": folds}


def align(oofs: Sequence[dict[str, np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The streams' logits on the clips all of them have, in one order; labels; folds."""
    common = sorted(set.intersection(*(set(o["paths"].tolist()) for o in oofs)))
    if not common:
        raise DatasetError("the out-of-fold files share no clips: were they made on the same data?")
    rows = [{p: i for i, p in enumerate(o["paths"].tolist())} for o in oofs]
    lps = [o["logits"][[r[p] for p in common]] for o, r in zip(oofs, rows)]
    labels = oofs[0]["labels"][[rows[0][p] for p in common]]
    folds = oofs[0]["folds"][[rows[0][p] for p in common]]
    for o, r in zip(oofs[1:], rows[1:]):
        if not np.array_equal(o["labels"][[r[p] for p in common]], labels):
            raise DatasetError("the out-of-fold files disagree on the labels: were they made with the same classes?")
    return lps, labels, folds
