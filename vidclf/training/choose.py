"""Choose the recipe for the user's own classes by cross-validation on their data, then train it on all of it.

Which recipe wins depends on the classes: where the body's movement tells them apart (exercises), the pose
stream; where the scene or the objects do (a violin and a piano are both a seated person moving their hands),
the motion stream, whose CNN sees pixels. So each recipe (``pose``, ``motion``) is cross-validated by group on
the user's training clips, their fusion is measured on the same out-of-fold predictions (each fold's weights
chosen on the other folds), and the best mean accuracy of the last epochs wins; a fusion must beat both of its
streams by :data:`FUSION_MARGIN`, else the simpler recipe is kept. The winner is trained on every clip, and its
"not one of these" threshold is set on the out-of-fold predictions it was chosen on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidclf.config import Config, apply_overrides
from vidclf.fusion import align, nested_fusion_accuracy, read_oof

log = logging.getLogger(__name__)

FUSION_MARGIN = 0.01  # a fusion costs both streams' compute: it must beat the better one by this much


@dataclass
class RecipeScore:
    name: str
    mean: float
    std: float
    folds: list[float]
    seconds: float
    oof: Path | None = None
    extra: dict = field(default_factory=dict)


def _fold_accs(oof: dict[str, np.ndarray]) -> list[float]:
    lg, y, f = oof["logits"], oof["labels"], oof["folds"]
    return [float((lg[f == i].argmax(1) == y[f == i]).mean()) for i in sorted(set(f.tolist()))]


def score_recipes(recipes: Mapping[str, Config], folds: int, out: Path, *, show_progress: bool = False) -> list:
    """Cross-validate each recipe by group (``out/<name>/``), then the fusion of the first two: one
    :class:`RecipeScore` each, the last epoch's out-of-fold accuracy per fold."""
    from vidclf.training.crossval import cross_validate

    scores = []
    for name, config in recipes.items():
        t0 = time.perf_counter()
        log.info(f"cross-validating the {name} recipe ({folds} group folds)")
        cross_validate(apply_overrides(config, {"out_dir": str(out / name)}), folds, show_progress=show_progress)
        oof = read_oof(out / name / "oof.npz")
        accs = _fold_accs(oof)
        scores.append(
            RecipeScore(
                name,
                float(np.mean(accs)),
                float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                accs,
                time.perf_counter() - t0,
                oof=out / name / "oof.npz",
            )
        )
    if len(scores) >= 2:
        a, b = scores[0], scores[1]
        assert a.oof is not None and b.oof is not None
        lps, labels, fold_ids = align([read_oof(a.oof), read_oof(b.oof)])
        nested = nested_fusion_accuracy(lps, labels, fold_ids, max_ratio=None)
        scores.append(
            RecipeScore(
                f"{a.name}+{b.name}",
                nested["mean"],
                nested["std"],
                nested["fold_acc"],
                a.seconds + b.seconds,
                extra={"weights": nested["weights"]},
            )
        )
    return scores


def pick(scores: list[RecipeScore]) -> tuple[RecipeScore, str]:
    """The winner and why, in words."""
    singles = [s for s in scores if "+" not in s.name]
    best = max(singles, key=lambda s: s.mean)
    why = f"{best.name} has the best cross-validated accuracy of the single recipes ({best.mean:.3f})"
    for s in scores:
        if "+" in s.name and s.mean >= best.mean + FUSION_MARGIN:
            return s, f"the fusion {s.name} beats its best stream by {s.mean - best.mean:.3f} (>= {FUSION_MARGIN})"
        if "+" in s.name:
            why += f"; the fusion {s.name} ({s.mean:.3f}) does not beat it by {FUSION_MARGIN} or more"
    others = [s for s in singles if s is not best]
    if others:
        second = max(others, key=lambda s: s.mean)
        gap = best.mean - second.mean
        spread = max(best.std, second.std)
        why += f"; {gap:.3f} ahead of {second.name}" + (
            " (less than the folds' spread: a close call)" if gap < spread else ""
        )
    return best, why


def table(scores: list[RecipeScore], winner: RecipeScore) -> str:
    """The chooser's Markdown table: one row per recipe."""
    rows = ["| recipe | accuracy (mean +- std over group folds) | folds | time |", "| --- | --- | --- | --- |"]
    for s in scores:
        mark = " **chosen**" if s is winner else ""
        folds = " ".join(f"{a:.2f}" for a in s.folds)
        rows.append(f"| {s.name}{mark} | {s.mean:.3f} +- {s.std:.3f} | {folds} | {s.seconds:.0f} s |")
    return "\n".join(rows)


def choose_and_train(
    recipes: Mapping[str, Config], folds: int, out: str | Path, *, show_progress: bool = False
) -> dict:
    """Score the ``recipes`` (name -> config; the first two are also fused), pick the winner, train it on every
    training clip (``out/final/<name>/last.pt``; a fusion: each stream, fused into ``out/final/fusion.pt``), set its
    threshold on the out-of-fold predictions, and write ``out/choice.json`` and ``out/choice.md``. Returns
    ``{"table", "winner", "why", "checkpoint"}``."""
    from vidclf.calibration import build_fusion, calibrate
    from vidclf.data.dataset import training_data
    from vidclf.training.loop import fit

    out = Path(out)
    scores = score_recipes(recipes, folds, out / "cv", show_progress=show_progress)
    winner, why = pick(scores)
    md = table(scores, winner)
    log.info("\n" + md + f"\nchosen: {winner.name}: {why}")
    trained: dict[str, Path] = {}
    for name in winner.name.split("+"):
        config = apply_overrides(recipes[name], {"val_fraction": 0.0, "out_dir": str(out / "final" / name)})
        log.info(f"training {name} on every clip")
        data = training_data(config, show_progress=show_progress)
        fit(config, data.train, None, data.classes, show_progress=show_progress, info={"data": data.index.source})
        trained[name] = out / "final" / name / "last.pt"
    cache = next(iter(recipes.values())).data.cache_dir
    if len(trained) > 1:
        path = out / "final" / "fusion.pt"
        oofs = [out / "cv" / n / "oof.npz" for n in trained]
        build_fusion(list(trained.values()), oofs, path, max_ratio=None, cache_dir=cache)
    else:
        ((name, path),) = trained.items()
        calibrate(path, oof=out / "cv" / name / "oof.npz", cache_dir=cache)
    result = {"table": md, "winner": winner.name, "why": why, "checkpoint": str(path)}
    (out / "choice.json").write_text(
        json.dumps({**result, "scores": [s.__dict__ | {"oof": str(s.oof)} for s in scores]}, indent=1)
    )
    (out / "choice.md").write_text(md + f"\n\nchosen: **{winner.name}**: {why}\n")
    return result
