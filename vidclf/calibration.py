"""Give shipped checkpoints their rejection threshold and cross-validated score, and build a fusion.

Everything is chosen on out-of-fold predictions of a group cross-validation (``train_cli.py cv``'s
``oof.npz``), or on the validation groups a checkpoint held out: never on test clips.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch

from vidclf.checkpoint import Checkpoint, fusion_checkpoint, load_checkpoint, save_checkpoint
from vidclf.errors import DatasetError
from vidclf.data.index import group_of
from vidclf.fusion import (
    align,
    checked_threshold,
    choose_weights,
    fuse,
    movement_thresholds,
    nested_fusion_accuracy,
    read_oof,
    rejection_threshold,
)

log = logging.getLogger(__name__)


def _is_half(ck: Checkpoint) -> bool:
    parts = [s for s, _ in ck.streams] or [ck]
    return any(v.dtype == torch.float16 for p in parts for v in p.state_dict.values())


def _fold_accuracy(logits: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    accs = [float((logits[folds == f].argmax(1) == labels[folds == f]).mean()) for f in sorted(set(folds.tolist()))]
    return float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0


def person_found(
    ck: Checkpoint, paths: Sequence[str], cache_dir: str | None, *, logits: np.ndarray | None = None
) -> np.ndarray | None:
    """For a checkpoint with a pose stream: which clips show a person in at least one of its frames (the
    predictor's person gate), from the landmark cache (estimated where missing); None without a pose stream.
    With the clips' ``logits``, a clip whose top class the gate does not apply to (:attr:`Checkpoint.person_gate`)
    passes too."""
    pose = [s for s, _ in (ck.streams or ((ck, 1.0),)) if s.input is not None and s.input.features == "landmarks"]
    if not pose:
        return None
    from vidclf.data.index import VideoRecord
    from vidclf.data.landmarks import records_landmarks
    from vidclf.models.pose import found_mask

    assert pose[0].input is not None
    if not all(Path(p).is_file() for p in paths):
        log.warning("the out-of-fold clips are not all on disk: the threshold ignores the person gate")
        return None
    records = [VideoRecord(Path(p), 0, "") for p in paths]
    raw = records_landmarks(records, pose[0].input.num_frames, cache_dir, show_progress=False)
    found = np.asarray(found_mask(np.asarray(raw)).any(axis=1))
    if logits is not None:
        found |= ~np.isin(np.asarray(ck.classes)[logits.argmax(1)], ck.person_gate)
    return found


def _without_movement(ck: Checkpoint, path: str | Path) -> dict:
    """``ck.info`` without its movement check: a threshold set for the evidence alone breaks the pair's
    calibration (:func:`calibrate_movement` sets both together; run it again after)."""
    info = dict(ck.info)
    if info.pop("movement_profile", None) is not None:
        info.pop("movement_calibration", None)
        log.warning(
            "%s: its movement check was calibrated with the old threshold and is removed; run "
            "`train_cli.py calibrate-movement` again to set both together",
            Path(path).name,
        )
    return info


def calibrate(
    checkpoint: str | Path,
    *,
    oof: str | Path | None = None,
    data_root: str | Path | None = None,
    split: int = 1,
    answered: float = 0.95,
    cache_dir: str | None = ".cache/vidclf",
) -> dict:
    """Set ``checkpoint``'s rejection threshold (in place) so that ``answered`` of known-class clips are still
    answered: on the out-of-fold predictions of its recipe (``oof``, which also gives it its cross-validated
    accuracy), or on the validation groups it held out (``data_root``)."""
    ck = load_checkpoint(checkpoint)
    if ck.has_other:
        raise DatasetError(
            f"{Path(checkpoint).name} has an 'other' output: its threshold is set on its recipe's out-of-fold "
            "predictions by `train_cli.py openset --ship`"
        )
    metrics = dict(ck.metrics)
    if oof is not None:
        o = read_oof(oof)
        lp = o["logits"]
        paths = o["paths"].tolist()
        metrics["cv_acc"], metrics["cv_std"] = _fold_accuracy(lp, o["labels"], o["folds"])
        folds = len(set(o["folds"].tolist()))
        source = f"out-of-fold predictions of a {folds}-fold group cross-validation ({len(lp)} clips)"
    elif data_root is not None:
        from vidclf.data.index import build_index
        from vidclf.evaluate import checkpoint_logits

        held = set(ck.info.get("val_groups") or [])
        index = build_index(data_root, "train", split=split, classes=ck.classes, num_classes=0)
        records = [r for r in index.records if r.group in held]
        if not records:
            raise DatasetError(f"{Path(checkpoint).name} names no validation groups of this data to calibrate on")
        lp = checkpoint_logits(ck, records, cache_dir=cache_dir).numpy()
        paths = [str(r.path) for r in records]
        source = f"its validation groups {', '.join(sorted(held))} ({len(records)} clips)"
    else:
        raise DatasetError(
            "calibrate needs --oof (a cv run's oof.npz) or --data-root (the checkpoint's validation groups)"
        )
    threshold = rejection_threshold(lp, answered=answered, passed=person_found(ck, paths, cache_dir, logits=lp))
    info = {
        **_without_movement(ck, checkpoint),
        "reject_calibration": f"answers {answered:.0%} of known-class clips of {source}",
    }
    save_checkpoint(
        checkpoint, dataclasses.replace(ck, reject_threshold=threshold, metrics=metrics, info=info), half=_is_half(ck)
    )
    return {"threshold": threshold, "source": source, "cv_acc": metrics.get("cv_acc"), "cv_std": metrics.get("cv_std")}


def build_fusion(
    streams: Sequence[str | Path],
    oofs: Sequence[str | Path],
    out: str | Path,
    *,
    max_ratio: float | None = 1.0,
    answered: float = 0.95,
    cache_dir: str | None = ".cache/vidclf",
) -> dict:
    """Fuse trained ``streams`` (the first is the one trusted most: the pose stream) with weights chosen on
    their recipes' out-of-fold predictions ``oofs`` (one ``oof.npz`` per stream), set the fused rejection
    threshold on the same clips, and write the fusion checkpoint to ``out``.

    The reported accuracy is nested: each fold's weights are chosen on the other folds' clips.
    """
    if len(streams) != len(oofs) or len(streams) < 2:
        raise DatasetError("give two or more streams, each with the oof.npz of its recipe's cross-validation")
    cks = [load_checkpoint(s) for s in streams]
    if any(ck.has_other for ck in cks):
        raise DatasetError("a stream has an 'other' output: fuse it with `train_cli.py openset-fuse`")
    read = [read_oof(o) for o in oofs]
    lps, labels, folds = align(read)
    paths = sorted(set.intersection(*(set(o["paths"].tolist()) for o in read)))

    # An ensemble (a fusion of one backbone's seeds) is one stream here; its members share its weight.
    def members(ck: Checkpoint, weight: float) -> list[tuple[Checkpoint, float]]:
        return [(m, weight * w) for m, w in ck.streams] if ck.is_fusion else [(ck, weight)]

    weights = choose_weights(lps, labels, max_ratio=max_ratio)
    fused = fuse(lps, weights)
    nested = nested_fusion_accuracy(lps, labels, folds, max_ratio=max_ratio)
    per_stream = {ck.backbone: _fold_accuracy(lp, labels, folds) for ck, lp in zip(cks, lps)}
    ck = fusion_checkpoint([m for c, w in zip(cks, weights) for m in members(c, w)], metrics={})
    threshold = rejection_threshold(fused, answered=answered, passed=person_found(ck, paths, cache_dir, logits=fused))
    metrics = {
        "cv_acc": nested["mean"],
        "cv_std": nested["std"],
        "cv_fold_acc": nested["fold_acc"],
        "streams_cv_acc": {k: v[0] for k, v in per_stream.items()},
        "oof_clips": len(labels),
    }
    info = {
        "streams": [str(s) for s in streams],
        "weights": list(weights),
        "max_ratio": max_ratio,
        "reject_calibration": f"answers {answered:.0%} of the {len(labels)} out-of-fold known-class clips",
    }
    ck = fusion_checkpoint(
        [m for c, w in zip(cks, weights) for m in members(c, w)], reject_threshold=threshold, metrics=metrics, info=info
    )
    save_checkpoint(out, ck, half=True)
    summary = (
        f"wrote {out}: weights {dict(zip(map(str, streams), weights))}, threshold {threshold:.3f}; nested "
        f"cross-validated accuracy {nested['mean']:.3f} +- {nested['std']:.3f} (streams alone: "
        + ", ".join(f"{k} {v:.3f}" for k, v in metrics["streams_cv_acc"].items())
        + ")"
    )
    return {
        "weights": weights,
        "threshold": threshold,
        **metrics,
        "nested_weights": nested["weights"],
        "summary": summary,
    }


def build_ensemble(
    checkpoints: Sequence[str | Path],
    oofs: Sequence[str | Path],
    out: str | Path,
    *,
    oof_out: str | Path | None = None,
    answered: float = 0.95,
    cache_dir: str | None = ".cache/vidclf",
) -> dict:
    """Average models of one recipe trained with different seeds (equal weights, one file), with the
    cross-validated accuracy and rejection threshold of the averaged out-of-fold predictions; ``oof_out``
    keeps those predictions, for choosing fusion weights later."""
    if len(checkpoints) != len(oofs) or len(checkpoints) < 2:
        raise DatasetError(
            "give two or more checkpoints of one recipe, each with the oof.npz of that seed's cross-validation"
        )
    cks = [load_checkpoint(c) for c in checkpoints]
    if len({ck.backbone for ck in cks}) != 1 or any(ck.is_fusion for ck in cks):
        raise DatasetError("an ensemble averages single models of one backbone; use `fuse` to combine streams")
    read = [read_oof(o) for o in oofs]
    lps, labels, folds = align(read)
    mean = fuse(lps, [1.0 / len(lps)] * len(lps))
    acc, std = _fold_accuracy(mean, labels, folds)
    common = sorted(set.intersection(*(set(o["paths"].tolist()) for o in read)))
    passed = person_found(cks[0], common, cache_dir, logits=mean)
    threshold = rejection_threshold(mean, answered=answered, passed=passed)
    singles = [_fold_accuracy(lp, labels, folds)[0] for lp in lps]
    metrics = {"cv_acc": acc, "cv_std": std, "members_cv_acc": singles, "oof_clips": len(labels)}
    info = {
        "members": [str(c) for c in checkpoints],
        "data": cks[0].info.get("data"),
        "reject_calibration": f"answers {answered:.0%} of the {len(labels)} out-of-fold known-class clips",
    }
    ck = fusion_checkpoint([(c, 1.0 / len(cks)) for c in cks], reject_threshold=threshold, metrics=metrics, info=info)
    save_checkpoint(out, ck, half=True)
    if oof_out is not None:
        Path(oof_out).parent.mkdir(parents=True, exist_ok=True)
        np.savez(oof_out, paths=np.array(common), labels=labels, folds=folds, logits_last=mean, logits_best=mean)
    summary = (
        f"wrote {out}: {len(cks)} models averaged; cross-validated accuracy {acc:.3f} +- {std:.3f} (each alone: "
        + ", ".join(f"{a:.3f}" for a in singles)
        + f"); threshold {threshold:.3f}"
    )
    return {"threshold": threshold, **metrics, "summary": summary}


def _member_logits(ck: Checkpoint, records: Sequence, cache_dir: str | None) -> np.ndarray:
    """Logits ``[N, K]`` of one single model on ``records``. A pixel model reads its backbone's per-frame
    features (view 0) through the feature cache, so that models sharing a frozen backbone (a cross-validation's
    folds and the shipped model) run the CNN once per clip."""
    from vidclf.evaluate import clip_dataset, stream_logits

    assert ck.input is not None
    if ck.input.features == "landmarks":
        return stream_logits(ck, records, landmark_cache_dir=cache_dir).numpy()
    from vidclf.training.features import feature_dataset

    model = ck.build_model().eval()
    dataset = clip_dataset(ck.input, records, cache_dir)
    feats = feature_dataset(
        model, dataset, cache_dir=cache_dir, device=torch.device("cpu"), precision="auto", show_progress=False
    ).all()[:, 0]
    with torch.inference_mode():
        return model.forward_head(feats).float().numpy()


def evidence_map(fold: np.ndarray, shipped: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` such that ``a * fold + b`` has the mean and spread of ``shipped``: two models' evidence ``[N]``
    on the same clips (clips both trained on), the first mapped to the second's scale."""
    a = float(shipped.std() / max(float(fold.std()), 1e-6))
    return a, float(shipped.mean() - a * fold.mean())


def calibrate_on_shipped(
    checkpoint: str | Path,
    runs: Sequence[str | Path],
    *,
    epoch: Sequence[str] | None = None,
    answered: float = 0.95,
    cache_dir: str | None = ".cache/vidclf",
    oof_out: str | Path | None = None,
) -> dict:
    """Set a shipped checkpoint's "not one of these" threshold on the out-of-fold predictions of its recipe,
    mapped to the scale of the shipped models themselves.

    The fold models of a cross-validation are other networks than the shipped ones (trained on more clips, other
    seeds, another epoch), and the evidence (the log-sum-exp of the logits) moves with their logits' scale and
    offset. So, fold by fold, the fold model's evidence on the clips it trained on is matched to the shipped
    model's evidence on the same clips (clips both trained on: an affine map that equalises their mean and
    spread), and that fold's out-of-fold evidence goes through the same map: what the shipped model would give
    on clips it never saw. The threshold then answers ``answered`` of those, the person gate included.

    ``runs``: one ``train_cli.py cv`` directory per single model of the checkpoint, in its order (an ensemble or a
    fusion has several), each with ``oof.npz`` and ``fold<i>/<epoch>.pt``; ``epoch``: per run, "last" or "best"
    (the epoch the shipped model was chosen like). ``oof_out`` keeps the mapped out-of-fold logits (shifted so that
    their evidence is the mapped one; the answer is unchanged) and the person-found share of each clip: what
    the test of the shipped checkpoints reads.
    """
    from vidclf.data.index import VideoRecord
    from vidclf.evaluate import pose_found
    from vidclf.fusion import checked_threshold, evidence

    ck = load_checkpoint(checkpoint)
    if ck.has_other:
        raise DatasetError(
            f"{Path(checkpoint).name} has an 'other' output: `train_cli.py openset --ship` calibrates it"
        )
    members = list(ck.streams) if ck.is_fusion else [(ck, 1.0)]
    epochs = list(epoch) if epoch is not None else ["last"] * len(runs)
    if len(runs) != len(members) or len(epochs) != len(runs):
        raise DatasetError(
            f"{Path(checkpoint).name} has {len(members)} models ({', '.join(m.backbone for m, _ in members)}): give "
            f"one cv run for each, in that order (got {len(runs)} runs, {len(epochs)} epochs)"
        )
    read = [read_oof(Path(r) / "oof.npz", epoch=e) for r, e in zip(runs, epochs)]
    lps, labels, folds = align(read)
    paths = sorted(set.intersection(*(set(o["paths"].tolist()) for o in read)))
    dealt = [dict(zip(o["paths"].tolist(), o["folds"].tolist())) for o in read]
    if any(d[p] != dealt[0][p] for d in dealt[1:] for p in paths):
        raise DatasetError("the cv runs dealt their folds differently: run them with the same --folds and data")
    records = [VideoRecord(Path(p), int(y), "") for p, y in zip(paths, labels)]
    weights = [w for _, w in members]

    def fused(models: Sequence[Checkpoint], rows: np.ndarray) -> np.ndarray:
        picked = [records[i] for i in np.flatnonzero(rows)]
        return sum(w * _member_logits(m, picked, cache_dir) for m, w in zip(models, weights))  # type: ignore[return-value]

    oof = sum(w * lp for w, lp in zip(weights, lps))
    assert isinstance(oof, np.ndarray)
    raw = evidence(oof)
    # Clips a shipped model held out for its own validation are not "trained on" by it: left out of the match.
    held = {g for m, _ in members for g in (m.info.get("val_groups") or [])}
    shared = np.array([group_of(Path(p)) not in held for p in paths])
    shipped = evidence(fused([m for m, _ in members], shared))
    mapped = np.empty_like(raw)
    maps = []
    for f in sorted(set(folds.tolist())):
        inside = shared & (folds != f)
        fold_models = [load_checkpoint(Path(r) / f"fold{f + 1}" / f"{e}.pt") for r, e in zip(runs, epochs)]
        a, b = evidence_map(evidence(fused(fold_models, inside)), shipped[inside[shared]])
        mapped[folds == f] = a * raw[folds == f] + b
        maps.append((a, b))
        log.info(f"fold {f + 1}: shipped evidence = {a:.3f} x fold evidence + {b:+.3f} on {inside.sum()} clips")
    found = pose_found(ck, records, cache_dir)
    passed = person_found(ck, paths, cache_dir, logits=oof)
    threshold = checked_threshold(mapped, answered=answered, passed=passed)
    before = ck.reject_threshold
    source = (
        f"out-of-fold predictions of its recipe ({len(paths)} clips, {len(maps)} group folds), mapped fold by fold to "
        "the shipped models' evidence on the clips both trained on"
    )
    info = {
        **_without_movement(ck, checkpoint),
        "reject_calibration": f"answers {answered:.0%} of known-class clips of {source}",
    }
    save_checkpoint(checkpoint, dataclasses.replace(ck, reject_threshold=threshold, info=info), half=_is_half(ck))
    if oof_out is not None:
        np.savez_compressed(
            oof_out,
            names=np.array([f"{Path(p).parent.name}/{Path(p).name}" for p in paths]),
            labels=labels,
            folds=folds,
            logits=(oof + (mapped - raw)[:, None]).astype(np.float32),
            pose_found=np.ones(len(paths), np.float32) if found is None else found.astype(np.float32),
            maps=np.array(maps, np.float32),
            answered=np.float32(answered),
        )
    return {"threshold": threshold, "before": before, "maps": maps, "clips": len(paths), "source": source}


def _check_before(ck: Checkpoint, novelty: np.ndarray, check: np.ndarray) -> tuple[float | None, np.ndarray]:
    """The movement check ``ck`` shipped with before a calibration, as (its threshold, the clips' out-of-fold
    scores it applies to): none, the novelty, or (a profile with odds) the new odds' scores, the nearest at hand."""
    old = ck.info.get("movement_profile") or {}
    if old.get("threshold") is None:
        return None, check
    return float(old["threshold"]), (check if old.get("odds") else novelty)


def calibrate_movement(
    checkpoint: str | Path,
    *,
    ucf_root: str | Path,
    real_root: str | Path | None,
    oof: str | Path | None = None,
    answered: float = 0.95,
    evidence_answered: float = 0.98,
    shrink: float = 0.5,
    odds: bool = True,
    l2: float = 0.01,
    folds: int = 6,
    cache_dir: str | None = ".cache/vidclf",
    out: str | Path | None = None,
) -> dict:
    """Give a shipped checkpoint a movement check (:mod:`vidclf.novelty`) and set its two thresholds together.

    The profile (each class's movement signatures) is fit on every known-class clip: UCF-101's training clips
    and the real-world clips of the classes (``real_root``, laid out as ``../shared/real``). The thresholds
    (:func:`vidclf.fusion.movement_thresholds`) are set so that the rule answers ``answered`` of the
    known-class clips, each judged as a clip it never saw: its evidence and answer from the out-of-fold
    predictions of the checkpoint's recipe (``oof``, default ``<checkpoint>.oof.npz``, mapped to the shipped
    scale by :func:`calibrate_on_shipped`) for UCF-101's clips, from the shipped checkpoint itself for the real-world
    clips (it never trained on them), and its novelty from a profile fit on the known-class clips of the other
    folds (group folds: no group on both sides). With ``odds`` (the default) the check's score is the log-odds
    that a clip is of another action (:class:`vidclf.novelty.OtherActionOdds`, L2 weight ``l2``), learned from
    the novelty and the classifier's confidence on the known-class clips against the clips of other actions
    (``real_root``'s ``other/``), each clip scored by odds fit on the other folds; without, the novelty alone.
    The rule's refusals of other actions are measured pooled and with the thresholds set fold by fold on the
    other folds (with ``odds``, on the scores of odds that never saw that fold either).

    Writes the checkpoint in place (``reject_threshold`` and ``info["movement_profile"]``) and, beside it (or to
    ``out``), every clip's scores (``<checkpoint>.movement.npz``), which ``tests/test_shipped_calibration.py``
    reads. Returns the measures.
    """
    from vidclf.data.index import VideoRecord
    from vidclf.evaluate import checkpoint_logits
    from vidclf.fusion import evidence as evidence_of
    from vidclf.models.pose import found_mask
    from vidclf.novelty import MovementProfile, OtherActionOdds, odds_inputs
    from vidclf.training.open_set import load_open_set_data, mixed_folds, oof_novelty, oof_other_odds, signatures_of

    checkpoint = Path(checkpoint)
    ck = load_checkpoint(checkpoint)
    if ck.has_other:
        raise DatasetError(f"{checkpoint.name} has an 'other' output: its rule is 1 - P(other), not the evidence")
    pose = [s for s, _ in (ck.streams or ((ck, 1.0),)) if s.input is not None and s.input.features == "landmarks"]
    if not pose:
        raise DatasetError(f"{checkpoint.name} has no pose stream: the movement check reads the body's landmarks")
    assert pose[0].input is not None
    num_frames = pose[0].input.num_frames
    oof_path = Path(oof) if oof is not None else checkpoint.with_suffix(".oof.npz")
    if not oof_path.is_file():
        raise DatasetError(f"{oof_path}: no out-of-fold predictions (`train_cli.py calibrate --run ... --oof-out`)")
    with np.load(oof_path, allow_pickle=False) as z:
        o = {k: z[k] for k in z.files}
    data = load_open_set_data(
        str(ucf_root), None if real_root is None else str(real_root), num_frames=num_frames, cache_dir=cache_dir
    )
    if tuple(data.classes) != tuple(ck.classes):
        raise DatasetError(f"these clips' classes {data.classes} are not {checkpoint.name}'s {ck.classes}")
    k = len(ck.classes)
    names = np.array([f"{Path(p).parent.name}/{Path(p).name}" for p in data.paths])
    ucf = data.kinds == "ucf"
    row = {n: i for i, n in enumerate(o["names"].tolist())}
    missing = [n for n in names[ucf] if n not in row]
    if missing:
        raise DatasetError(f"{oof_path} lacks {len(missing)} of the UCF-101 clips, e.g. {missing[0]}")
    fold = mixed_folds(data.groups, data.kinds, folds)
    at = np.array([row[n] for n in names[ucf]])
    if not np.array_equal(fold[ucf], o["folds"][at]):
        raise DatasetError(f"{oof_path} dealt UCF-101's groups to other folds than {folds} group folds")
    logits = np.empty((len(names), k), np.float32)
    logits[ucf] = o["logits"][at]
    source = np.where(ucf, "oof", "shipped")
    rest = [VideoRecord(Path(p), int(y), "") for p, y in zip(data.paths[~ucf], data.labels[~ucf])]
    if rest:
        logits[~ucf] = checkpoint_logits(ck, rest, landmark_cache_dir=cache_dir).numpy()[:, :k]
    found = np.array([found_mask(r).mean() for r in data.raw], np.float32)
    top = logits.argmax(1)
    passed = (found > 0) | ~np.isin(np.asarray(ck.classes)[top], ck.person_gate)
    ev = evidence_of(logits)
    known = data.labels < k
    signatures = signatures_of(data.raw)
    novelty = oof_novelty(signatures, top, labels=data.labels, folds=fold, classes=ck.classes, shrink=shrink)
    novelty[~np.isfinite(novelty)] = np.nan  # no signature: the check abstains
    other, real = ~known, data.kinds == "real"
    inputs = odds_inputs(novelty, logits)
    if odds and not other.any():
        raise DatasetError(
            "the odds of another action are learned from clips of other actions: give --real-root a tree with "
            "other/ clips, or --no-odds for the novelty alone"
        )
    # the check's score of every clip, from odds (or a profile) that never saw its fold
    check = oof_other_odds(inputs, other, fold, l2=l2) if odds else novelty
    t_e, t_n = movement_thresholds(
        ev[known], check[known], passed[known], answered=answered, evidence_answered=evidence_answered
    )
    t_alone = checked_threshold(ev[known], answered=answered, passed=passed[known])
    before = ck.reject_threshold

    def rule(t_ev: float, t_nov: float | None, score: np.ndarray = check) -> np.ndarray:
        ok = passed & (ev >= t_ev)
        return ok if t_nov is None else ok & ~(score > t_nov)

    both, alone = rule(t_e, t_n), rule(t_alone, None)
    measures: dict = {
        "clips": {"ucf": int(ucf.sum()), "real": int(real.sum()), "other": int(other.sum())},
        "threshold_before": before,
        "evidence_threshold": t_e,
        "movement_threshold": t_n,
        "evidence_alone_threshold": t_alone,
        "check": "odds of another action" if odds else "novelty",
    }
    for name, ok in (("rule", both), ("evidence_alone", alone)) + (
        (("before", rule(before, *_check_before(ck, novelty, check))),) if before is not None else ()
    ):
        measures[name] = {
            "known_answered": float(ok[known].mean()),
            "ucf_refused": float((~ok[ucf]).mean()),
            "real_refused": float((~ok[real]).mean()) if real.any() else None,
            "real_answered_right": float((ok & (top == data.labels))[real].mean()) if real.any() else None,
            "other_refused": float((~ok[other]).mean()) if other.any() else None,
        }
    # nested: each fold's clips judged by thresholds set on the other folds' known clips (with odds, on scores
    # of odds fit without the fold too)
    nested: dict[str, list[float]] = {"rule": [], "evidence_alone": []}
    nested_ok = np.ones(len(known), bool)
    for f in sorted(set(fold.tolist())):
        fit, mine = known & (fold != f), fold == f
        inner = oof_other_odds(inputs, other, fold, leave=f, l2=l2) if odds else novelty
        te, tn = movement_thresholds(
            ev[fit], inner[fit], passed[fit], answered=answered, evidence_answered=evidence_answered
        )
        ta = checked_threshold(ev[fit], answered=answered, passed=passed[fit])
        nested_ok[mine] = rule(te, tn)[mine]
        if (other & mine).any():
            nested["rule"].append(float((~rule(te, tn)[other & mine]).mean()))
            nested["evidence_alone"].append(float((~rule(ta, None)[other & mine]).mean()))
    measures["nested_other_refused_by_fold"] = nested
    measures["nested_rule"] = {
        "other_refused": float((~nested_ok[other]).mean()) if other.any() else None,
        "ucf_refused": float((~nested_ok[ucf]).mean()),
        "real_refused": float((~nested_ok[real]).mean()) if real.any() else None,
        "real_answered_right": float((nested_ok & (top == data.labels))[real].mean()) if real.any() else None,
    }
    for name, v in nested.items():
        measures[f"nested_{name}_mean"] = float(np.mean(v)) if v else None
        measures[f"nested_{name}_std"] = float(np.std(v, ddof=1)) if len(v) > 1 else None

    has = ~np.isnan(signatures).any(1)
    profile = MovementProfile.fit(signatures[known & has], data.labels[known & has], ck.classes, shrink=shrink)
    fitted = OtherActionOdds.fit(inputs[has], other[has], l2=l2) if odds else None
    profile = dataclasses.replace(profile, threshold=t_n, odds=fitted)
    text = (
        f"the evidence threshold and the movement check's together answer {answered:.0%} of {int(known.sum())} "
        f"known-class clips none of them trained on ({int(ucf.sum())} UCF-101 clips out of fold, evidence mapped "
        f"to the shipped scale; {int(real.sum())} real-world clips, evidence of the shipped models; movement "
        f"novelty from profiles fit on the other {folds - 1} of {folds} group folds"
        + (
            f"; the odds of another action from odds fit on the other folds' clips, {int(other.sum())} of other "
            "actions among them"
            if odds
            else ""
        )
        + f"); the evidence alone answers {evidence_answered:.0%} of them"
    )
    info = {
        **ck.info,
        "movement_profile": profile.to_dict(),
        "reject_calibration": text,
        "movement_calibration": {k2: v for k2, v in measures.items() if k2 != "nested_other_refused_by_fold"},
    }
    save_checkpoint(checkpoint, dataclasses.replace(ck, reject_threshold=t_e, info=info), half=_is_half(ck))
    out = Path(out) if out is not None else checkpoint.with_suffix(".movement.npz")
    np.savez_compressed(
        out,
        names=names,
        kinds=data.kinds,
        labels=data.labels,
        folds=fold,
        source=source,
        logits=logits,
        pose_found=found,
        novelty=novelty,
        movement_score=check,
        answered=np.float32(answered),
        evidence_answered=np.float32(evidence_answered),
    )
    measures["out"] = str(out)
    return measures
