"""The pose stream trained to say "not one of these": clips of other actions beside the known classes.

Three recipes, each a plain loop over cached raw landmarks ``[N, T, 33, 4]`` (augmented afresh every epoch,
as :mod:`vidclf.data.landmarks` does):

* ``"class"``: the other-action clips are one more class, the model's last output (``K + 1`` outputs);
* ``"oe"``: outlier exposure (Hendrycks et al., 2019): ``K`` outputs, and on other-action clips the loss
  pulls the softmax towards uniform;
* ``"both"``: the extra class, and the known-class part of the softmax pulled towards uniform on them;
* ``"none"``: the known classes only (the recipe before other-action clips were at hand).

Clips carry weights (real-world clips weigh more than their number, so that a few dozen count beside
UCF-101's hundreds) and groups (a UCF-101 ``gXX`` or a source repository): :func:`mixed_folds` never puts one
group on both sides of a fold.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vidclf.config import OPEN_SET_RECIPES, Config
from vidclf.data.landmarks import view_augment
from vidclf.fusion import movement_thresholds, rejection_threshold_of_scores
from vidclf.models.cnn_lstm import CNNLSTM, build_model
from vidclf.models.pose import augment_landmarks, mirror_landmarks, normalize_landmarks
from vidclf.training.loop import lr_factor, make_optimizer

log = logging.getLogger(__name__)


def has_other_output(recipe: str) -> bool:
    return recipe in ("class", "both")


@dataclass(frozen=True, kw_only=True)
class OpenSetData:
    """Clips for open-set training. ``labels`` index ``classes``; ``len(classes)`` marks an other-action clip.
    ``kinds``: "ucf", "real" (a real-world clip of a known class) or "other"."""

    raw: np.ndarray  # [N, T, 33, 4]
    labels: np.ndarray  # [N]
    groups: np.ndarray  # [N] str
    kinds: np.ndarray  # [N] str
    paths: np.ndarray  # [N] str
    classes: tuple[str, ...]

    def take(self, rows: np.ndarray) -> OpenSetData:
        return OpenSetData(
            raw=self.raw[rows],
            labels=self.labels[rows],
            groups=self.groups[rows],
            kinds=self.kinds[rows],
            paths=self.paths[rows],
            classes=self.classes,
        )


def mixed_folds(groups: np.ndarray, kinds: np.ndarray, folds: int) -> np.ndarray:
    """Each clip's fold ``[N]``: UCF-101 groups dealt round-robin in sorted order (the folds of
    :func:`vidclf.data.index.group_folds`), source repositories of real clips each to the fold with the
    fewest real clips so far, largest first. No group is split."""
    fold_of: dict[str, int] = {}
    ucf = sorted({g for g, k in zip(groups, kinds) if k == "ucf"})
    for i, g in enumerate(ucf):
        fold_of[g] = i % folds
    real = [g for g, k in zip(groups, kinds) if k != "ucf"]
    sizes = {g: real.count(g) for g in set(real)}
    load = [0] * folds
    for g in sorted(sizes, key=lambda g: (-sizes[g], g)):
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    return np.array([fold_of[g] for g in groups])


def clip_weights(kinds: np.ndarray, *, real_weight: float, other_weight: float) -> np.ndarray:
    return np.select([kinds == "real", kinds == "other"], [real_weight, other_weight], 1.0).astype(np.float32)


def open_set_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, *, recipe: str, k: int):
    """Weighted mean loss of a batch: ``logits [B, K or K+1]``, ``labels [B]`` (``k`` = other), ``weights [B]``."""
    other = labels == k
    terms = torch.zeros(len(labels))
    if has_other_output(recipe):
        terms = nn.functional.cross_entropy(logits, labels, reduction="none")
    else:
        known = ~other
        if known.any():
            terms[known] = nn.functional.cross_entropy(logits[known], labels[known], reduction="none")
    if recipe in ("oe", "both") and other.any():
        # outlier exposure: cross-entropy of the known classes' softmax to the uniform distribution
        terms[other] = terms[other] - 0.5 * nn.functional.log_softmax(logits[other, :k], 1).mean(1)
    return (terms * weights).sum() / weights.sum().clamp_min(1e-8)  # a batch of weight-0 clips only: no step


def train_open_set(
    data: OpenSetData,
    config: Config,
    *,
    recipe: str,
    seed: int,
    real_weight: float = 3.0,
    other_weight: float = 1.5,
) -> CNNLSTM:
    """Train one pose LSTM on ``data`` with ``recipe`` and ``config``'s model and training settings (epochs,
    optimizer, cosine schedule, batch size). Other-action clips are left out under ``"none"``."""
    if recipe not in OPEN_SET_RECIPES:
        raise ValueError(f"recipe {recipe!r}: one of {OPEN_SET_RECIPES}")
    k = len(data.classes)
    keep = np.ones(len(data.labels), bool) if recipe != "none" else data.labels < k
    data = data.take(np.flatnonzero(keep))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(config.model, k + int(has_other_output(recipe)), load_pretrained=False)
    tc = config.train
    optimizer = make_optimizer(model, tc)
    weights = torch.from_numpy(clip_weights(data.kinds, real_weight=real_weight, other_weight=other_weight))
    labels = torch.from_numpy(data.labels.astype(np.int64))
    view = view_augment(tc)
    for epoch in range(1, tc.epochs + 1):
        for group in optimizer.param_groups:
            group["lr"] = tc.lr * lr_factor(tc.lr_schedule, epoch, tc.epochs)
        model.train()
        total = 0.0
        order = rng.permutation(len(labels))
        for b in range(0, len(order), tc.batch_size):
            rows = order[b : b + tc.batch_size]
            x = torch.from_numpy(
                np.stack([normalize_landmarks(augment_landmarks(data.raw[i], rng, view=view)) for i in rows])
            )
            loss = open_set_loss(model(x, features=True), labels[rows], weights[rows], recipe=recipe, k=k)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        if epoch % 20 == 0 or epoch == tc.epochs:
            log.debug("epoch %d: loss %.4f", epoch, total / len(order))
    return model.eval()


@torch.inference_mode()
def landmark_logits(model: CNNLSTM, raw: np.ndarray, *, mirror: bool = False) -> np.ndarray:
    """Logits ``[N, outputs]`` of raw landmarks ``[N, T, 33, 4]``; with ``mirror``, the mean of the clip's and
    its mirror image's logits."""
    x = torch.from_numpy(np.stack([normalize_landmarks(r) for r in raw]))
    out = model(x, features=True)
    if mirror:
        xm = torch.from_numpy(np.stack([normalize_landmarks(mirror_landmarks(r)) for r in raw]))
        out = (out + model(xm, features=True)) / 2
    return out.numpy()


def cross_validate_open_set(
    data: OpenSetData,
    config: Config,
    *,
    recipe: str,
    folds: np.ndarray,
    seeds: Sequence[int] = (0,),
    only: Sequence[int] | None = None,
    **kw,
) -> dict[str, np.ndarray]:
    """Out-of-fold logits of every clip (other-action clips included), from the models of its fold (the mean
    of the seeds' logits, as the shipped ensemble fuses them): ``logits`` and ``logits_mirror`` (test-time
    mirroring), each ``[N, outputs]``. ``only``: these folds alone (the others' rows stay zero), so that folds
    can run as separate processes and be summed."""
    n_out = len(data.classes) + int(has_other_output(recipe))
    out = {"logits": np.zeros((len(data.labels), n_out)), "logits_mirror": np.zeros((len(data.labels), n_out))}
    for f in sorted(set(folds.tolist()) if only is None else only):
        held = folds == f
        for s in seeds:
            model = train_open_set(data.take(np.flatnonzero(~held)), config, recipe=recipe, seed=s, **kw)
            out["logits"][held] += landmark_logits(model, data.raw[held]) / len(seeds)
            out["logits_mirror"][held] += landmark_logits(model, data.raw[held], mirror=True) / len(seeds)
        log.info("%s: fold %d done", recipe, f + 1)
    return out


def known_score(logits: np.ndarray, num_classes: int) -> np.ndarray:
    """``[N]``: how surely a clip is one of the known classes, the score the rule thresholds. With an 'other'
    output (``num_classes + 1`` columns): one minus its softmax probability; without: the evidence
    (log-sum-exp of the logits)."""
    if logits.shape[1] == num_classes + 1:
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return 1.0 - p[:, num_classes]
    m = logits.max(1)
    return m + np.log(np.exp(logits - m[:, None]).sum(1))


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random ``pos`` scores above a random ``neg`` (ties count half)."""
    if not len(pos) or not len(neg):
        return float("nan")
    gt = (pos[:, None] > neg[None, :]).mean()
    eq = (pos[:, None] == neg[None, :]).mean()
    return float(gt + 0.5 * eq)


def open_set_report(
    logits: np.ndarray, labels: np.ndarray, *, kinds: np.ndarray, folds: np.ndarray, num_classes: int
) -> dict:
    """UCF-101 and real-world top-1 (per fold mean and sd), other-action clips refused at thresholds answering
    95 % and 90 % of known clips, known clips refused there, AUROC known vs other."""
    top = logits[:, :num_classes].argmax(1)
    known = labels < num_classes
    score = known_score(logits, num_classes)

    def per_fold(mask: np.ndarray) -> tuple[float, float, float]:
        present = [f for f in sorted(set(folds.tolist())) if (mask & (folds == f)).any()]
        accs = [float((top[mask & (folds == f)] == labels[mask & (folds == f)]).mean()) for f in present]
        return (
            float(np.mean(accs)),
            float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            float((top[mask] == labels[mask]).mean()),
        )

    out: dict = {}
    for name, mask in (("ucf", kinds == "ucf"), ("real", kinds == "real")):
        out[f"{name}_acc_mean"], out[f"{name}_acc_std"], out[f"{name}_acc_pooled"] = per_fold(mask)
    other = ~known
    for answered in (0.95, 0.90):
        t = float(np.sort(score[known])[::-1][int(np.ceil(answered * known.sum())) - 1])
        key = int(round(answered * 100))
        out[f"other_refused_{key}"] = float((score[other] < t).mean())
        out[f"real_refused_{key}"] = float((score[kinds == "real"] < t).mean())
        out[f"real_answered_right_{key}"] = float(((score >= t) & (top == labels))[kinds == "real"].mean())
        out[f"threshold_{key}"] = t
    out["auroc"] = auroc(score[known], score[other])
    return out


def load_open_set_data(
    ucf_root: str | None, real_root: str | None, *, num_frames: int, cache_dir: str | None
) -> OpenSetData:
    """UCF-101's training clips (groups ``gXX``) and a real-clip tree laid out as ``../shared/real``
    (``MANIFEST.tsv`` with ``path``, ``label`` and ``source_repo``; ``positive/<Class>/`` and ``other/<action>/``;
    ``long/`` recordings are left out), with raw landmarks from the landmark cache (estimated where missing)."""
    import csv

    from vidclf.data.index import VideoRecord, build_index
    from vidclf.data.landmarks import records_landmarks

    records: list[VideoRecord] = []
    kinds: list[str] = []
    classes: tuple[str, ...] = ()
    if ucf_root is not None:
        index = build_index(ucf_root, "train", split=1)
        classes = index.classes
        records += index.records
        kinds += ["ucf"] * len(index.records)
    if real_root is not None:
        root = Path(real_root)
        with open(root / "MANIFEST.tsv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if not classes:
            classes = tuple(sorted({r["label"] for r in rows if r["path"].startswith("positive/")}))
        for r in rows:
            part = r["path"].split("/", 1)[0]
            if part == "positive" and r["label"] in classes:
                records.append(VideoRecord(root / r["path"], classes.index(r["label"]), r["source_repo"]))
                kinds.append("real")
            elif part == "other":
                records.append(VideoRecord(root / r["path"], len(classes), r["source_repo"]))
                kinds.append("other")
    raw = records_landmarks(records, num_frames, cache_dir, show_progress=False)
    return OpenSetData(
        raw=raw,
        labels=np.array([r.label for r in records]),
        groups=np.array([r.group for r in records]),
        kinds=np.array(kinds),
        paths=np.array([str(r.path) for r in records]),
        classes=classes,
    )


def calibrated_threshold(score: np.ndarray, passed: np.ndarray, *, answered: float) -> float:
    """The known-score threshold that answers ``answered`` of these known-class clips ``score [N]``, together
    with the person gate (``passed [N]``: clips in which the pose stream finds a person at all)."""
    need = int(np.ceil(answered * len(score)))
    kept = np.sort(score[passed])[::-1]
    if need > len(kept):
        raise ValueError(f"the person gate alone refuses more than {1 - answered:.0%} of known clips")
    return float(kept[need - 1])


def train_member(data: OpenSetData, config: Config, *, recipe: str, seed: int, **kw):
    """One pose LSTM of ``recipe`` trained on all of ``data``, as a checkpoint (no threshold yet)."""
    from vidclf.checkpoint import Checkpoint, InputSpec

    model = train_open_set(data, config, recipe=recipe, seed=seed, **kw)
    log.info("%s: seed %d trained on all %d clips", recipe, seed, len(data.labels))
    return Checkpoint(
        model=config.model,
        classes=data.classes,
        input=InputSpec.from_config(config),
        state_dict=model.state_dict(),
        epoch=config.train.epochs,
        config={**config.to_dict(), "open_set": {"recipe": recipe, "seed": seed, **kw}},
        info={"data": "UCF-101 split 1 train (528 clips) + ../shared/real positives and other actions"},
        other_output=has_other_output(recipe),
    )


def ship_open_set(
    data: OpenSetData,
    members: Sequence,
    *,
    oof: dict[str, np.ndarray],
    out: str,
    answered: float = 0.95,
    notes: Sequence[str] = (),
):
    """Write the average of ``members`` (:func:`train_member` checkpoints, one per seed) to ``out``: a
    checkpoint whose "not one of these" threshold answers ``answered`` of the known-class clips of ``oof`` (the
    out-of-fold logits of this very recipe and seeds, ``cross_validate_open_set``), with its cross-validated
    numbers in ``metrics``."""
    from vidclf.checkpoint import fusion_checkpoint, save_checkpoint
    from vidclf.models.pose import found_mask

    k = len(data.classes)
    recipe = members[0].config["open_set"]["recipe"]
    seeds = [m.config["open_set"]["seed"] for m in members]
    known = oof["labels"] < k
    score = known_score(oof["logits"], k)[known]
    passed = np.array([found_mask(r).any() for r in data.raw])[known]
    threshold = calibrated_threshold(score, passed, answered=answered)
    report = open_set_report(oof["logits"], oof["labels"], kinds=oof["kinds"], folds=oof["folds"], num_classes=k)
    metrics = {
        "cv_acc": report["ucf_acc_mean"],
        "cv_std": report["ucf_acc_std"],
        "real_cv_acc": report["real_acc_mean"],
        "real_cv_std": report["real_acc_std"],
        "other_refused": float((known_score(oof["logits"], k)[~known] < threshold).mean()),
        "auroc_other": report["auroc"],
        "oof_clips": int(len(known)),
    }
    info = {
        "recipe": recipe,
        "seeds": list(seeds),
        "data": members[0].info["data"],
        "reject_calibration": (
            f"answers {answered:.0%} of the {int(known.sum())} out-of-fold known-class clips (UCF-101 and real-world) "
            f"of this recipe, {len(seeds)} seed(s) per fold"
        ),
        "notes": list(notes),
    }
    if len(members) == 1:
        ck = dataclasses.replace(
            members[0], reject_threshold=threshold, metrics=metrics, info={**members[0].info, **info}
        )
    else:
        ck = fusion_checkpoint(
            [(m, 1.0 / len(members)) for m in members], reject_threshold=threshold, metrics=metrics, info=info
        )
    save_checkpoint(out, ck, half=True)
    return ck


def fuse_open_set(
    pose_path: str,
    motion_path: str,
    *,
    pose_oof: dict[str, np.ndarray],
    motion_logits: dict[str, np.ndarray],
    out: str,
    max_ratio: float | None = 0.5,
    weights: tuple[float, float] | None = None,
) -> dict:
    """Fuse the open-set pose ensemble with a motion stream that never saw other actions.

    The weights are chosen (lowest fused NLL, :func:`vidclf.fusion.choose_weights`) on the clips that both
    streams predict without having trained on them: the pose stream's out-of-fold logits and the motion
    stream's logits on clips outside its training (``motion_logits``: ``paths``, ``labels``, ``logits``).
    "Not one of these" stays the pose stream's (the fused rule reads only streams with an "other" output), so
    the fusion keeps the pose ensemble's threshold. ``weights`` (pose, motion) given: kept, and only measured.
    """
    from vidclf.checkpoint import fusion_checkpoint, load_checkpoint, save_checkpoint
    from vidclf.fusion import choose_weights, fuse

    pose, motion = load_checkpoint(pose_path), load_checkpoint(motion_path)
    k = len(pose.classes)
    row = {p: i for i, p in enumerate(pose_oof["paths"].tolist())}
    common = [i for i, p in enumerate(motion_logits["paths"].tolist()) if p in row]
    rows = np.array([row[motion_logits["paths"][i]] for i in common])
    lp = pose_oof["logits"][rows, :k]
    lm = motion_logits["logits"][common]
    labels = pose_oof["labels"][rows]
    kinds = pose_oof["kinds"][rows]
    chosen = tuple(weights) if weights else choose_weights([lp, lm], labels, max_ratio=max_ratio)
    fused = fuse([lp, lm], chosen)

    def acc(x: np.ndarray, mask: np.ndarray) -> float | None:
        return float((x[mask].argmax(1) == labels[mask]).mean()) if mask.any() else None

    scores = {
        f"{name}_{part}": acc(x, kinds == part)
        for name, x in (("pose", lp), ("motion", lm), ("fusion", fused))
        for part in ("ucf", "real")
    }
    members = [(m, chosen[0] * w) for m, w in (pose.streams or ((pose, 1.0),))] + [(motion, chosen[1])]
    ucf_groups = sorted({Path(p).stem.split("_")[-2] for p in motion_logits["paths"][common] if "UCF-101" in p})
    metrics = {
        **pose.metrics,
        "cv_acc": scores["fusion_ucf"],
        "cv_std": None,
        "real_cv_acc": scores["fusion_real"],
        "real_cv_std": None,
        "fusion_weight_clips": len(common),
        **scores,
    }
    metrics = {key: v for key, v in metrics.items() if v is not None}
    info = {
        **pose.info,
        "cv_description": (
            f"UCF-101 groups {', '.join(ucf_groups)}, held out by the motion stream, the pose stream out of fold"
            if ucf_groups
            else "not measured on UCF-101"
        ),
        "streams": [pose_path, motion_path],
        "weights": list(chosen),
        "max_ratio": max_ratio,
    }
    save_checkpoint(
        out, fusion_checkpoint(members, reject_threshold=pose.reject_threshold, metrics=metrics, info=info), half=True
    )
    return {"weights": chosen, "clips": len(common), **scores}


def signatures_of(raw: np.ndarray) -> np.ndarray:
    """Movement signatures ``[N, D]`` of raw landmarks ``[N, T, 33, 4]`` (rows of NaN where a clip shows too
    few frames with a person; :func:`vidclf.novelty.movement_signature`)."""
    from vidclf.novelty import SIGNATURE_DIM, movement_signature

    out = np.full((len(raw), SIGNATURE_DIM), np.nan)
    for i, r in enumerate(raw):
        sig = movement_signature(r)
        if sig is not None:
            out[i] = sig
    return out


def oof_novelty(
    signatures: np.ndarray,
    predicted: np.ndarray,
    *,
    labels: np.ndarray,
    folds: np.ndarray,
    classes: tuple[str, ...],
    shrink: float = 0.5,
) -> np.ndarray:
    """Out-of-fold novelty ``[N]`` of every clip (:meth:`vidclf.novelty.MovementProfile.novelty`) to the class it
    was answered as (``predicted [N]``), from a profile fit on the known-class clips of the other folds (so no
    clip, known or other, is scored by a profile of its own group). ``-inf``: no signature (the check abstains)."""
    from vidclf.novelty import MovementProfile

    k = len(classes)
    out = np.full(len(labels), -np.inf)
    has = ~np.isnan(signatures).any(1)
    for f in sorted(set(folds.tolist())):
        fit = (folds != f) & (labels < k)
        profile = MovementProfile.fit(signatures[fit], labels[fit], classes, shrink=shrink)
        held = (folds == f) & has
        out[held] = profile.novelty(signatures[held], predicted[held])
    return out


def oof_other_odds(
    inputs: np.ndarray,
    other: np.ndarray,
    folds: np.ndarray,
    *,
    leave: int | None = None,
    l2: float = 0.01,
) -> np.ndarray:
    """Out-of-fold log-odds of another action ``[N]`` (:class:`vidclf.novelty.OtherActionOdds`) of clips with
    :func:`vidclf.novelty.odds_inputs` ``[N, 5]`` (rows with NaN: no signature, left out and scored NaN) and
    ``other`` (bool ``[N]``): each clip of fold *g* scored by odds fit on the clips of the other folds. With
    ``leave``, fold ``leave`` is also kept out of every fit and scored NaN (nested calibration: the thresholds
    for fold ``leave`` are set on these scores of the rest)."""
    from vidclf.novelty import OtherActionOdds

    out = np.full(len(other), np.nan)
    has = ~np.isnan(inputs).any(1)
    for g in sorted(set(folds.tolist()) - {leave}):
        fit = has & (folds != g) & (folds != leave)
        held = has & (folds == g)
        if held.any():
            out[held] = OtherActionOdds.fit(inputs[fit], other[fit], l2=l2).log_odds(inputs[held])
    return out


def combined_rule_report(
    evidence: np.ndarray,
    novelty: np.ndarray,
    *,
    predicted: np.ndarray,
    labels: np.ndarray,
    kinds: np.ndarray,
    folds: np.ndarray,
    num_classes: int,
    answered: float = 0.95,
    evidence_answered: float = 0.98,
) -> dict:
    """The rule "evidence at or above its threshold AND novelty at or below its threshold" on out-of-fold
    scores (``[N]`` each; novelty NaN where the check abstains, which passes), its thresholds set on the
    known-class clips as the shipped models' are (:func:`vidclf.fusion.movement_thresholds`). Beside it, the
    evidence alone at ``answered``. Other-action clips refused (pooled, and mean and sd over folds),
    real-world known clips refused and answered right, AUROC of the novelty (known vs other)."""
    known = labels < num_classes
    other, real = ~known, kinds == "real"

    def rates(ok: np.ndarray) -> dict:
        per_fold = [float((~ok[other & (folds == f)]).mean()) for f in sorted(set(folds[other].tolist()))]
        return {
            "known_answered": float(ok[known].mean()),
            "other_refused": float((~ok[other]).mean()),
            "other_refused_fold_mean": float(np.mean(per_fold)),
            "other_refused_fold_std": float(np.std(per_fold, ddof=1)) if len(per_fold) > 1 else 0.0,
            "other_refused_by_fold": per_fold,
            "real_refused": float((~ok[real]).mean()),
            "real_answered_right": float((ok & (predicted == labels))[real].mean()),
        }

    t_evidence, t_novelty = movement_thresholds(
        evidence[known], novelty[known], answered=answered, evidence_answered=evidence_answered
    )
    t_alone = rejection_threshold_of_scores(evidence[known], answered=answered)
    return {
        "evidence_alone": {"threshold": t_alone, **rates(evidence >= t_alone)},
        "combined": {
            "evidence_threshold": t_evidence,
            "novelty_threshold": t_novelty,
            **rates((evidence >= t_evidence) & ~(novelty > t_novelty)),
        },
        "novelty_auroc": auroc(-novelty[known], -novelty[other]),
        "evidence_auroc": auroc(evidence[known], evidence[other]),
    }
