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
from vidclf.fusion import align, choose_weights, fuse, nested_fusion_accuracy, read_oof, rejection_threshold

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
    found = np.array([found_mask(r).any() for r in raw])
    if logits is not None:
        found |= ~np.isin(np.asarray(ck.classes)[logits.argmax(1)], ck.person_gate)
    return found


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
    info = {**ck.info, "reject_calibration": f"answers {answered:.0%} of known-class clips of {source}"}
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
        model, dataset, cache_dir=cache_dir, device=torch.device("cpu"), precision="bf16", show_progress=False
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
    info = {**ck.info, "reject_calibration": f"answers {answered:.0%} of known-class clips of {source}"}
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
