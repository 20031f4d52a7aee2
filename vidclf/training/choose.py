"""Choose the recipe for the user's own classes by cross-validation on their data, then train it on all of it.

Which recipe wins depends on the classes: where the body's movement tells them apart (exercises), the pose
stream; where the scene or the objects do (a violin and a piano are both a seated person moving their hands),
the motion stream, whose CNN sees pixels. So each recipe (``pose``, ``motion``) is cross-validated by group on
the user's training clips, their fusion is measured on the same out-of-fold predictions (each fold's weights
chosen on the other folds), and the best mean accuracy of the last epochs wins; a fusion must beat both of its
streams by :data:`FUSION_MARGIN`, else the simpler recipe is kept. The winner is trained on every clip, and its
"not one of these" threshold is set on the out-of-fold predictions it was chosen on.

Layout of a chooser run's folder ``OUT``: the chosen model is ``OUT/last.pt`` (a single recipe, or the fusion of
its streams), written once its threshold is set, so a model list never shows it without one;
``OUT/cv/<recipe>/fold<i>/`` are the cross-validation's runs, ``OUT/.streams/<recipe>/`` the winner's streams
trained on every clip (their curves and history); ``OUT/choice.md`` and ``OUT/choice.json`` say what was chosen
and why.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidclf.config import CHOOSER_RECIPES, PRESETS_DIR, Config, apply_overrides, load_config
from vidclf.data.index import VideoIndex, build_index
from vidclf.errors import DatasetError
from vidclf.fusion import align, nested_fusion_accuracy, read_oof

log = logging.getLogger(__name__)

FUSION_MARGIN = 0.01  # a fusion costs both streams' compute: it must beat the better one by this much
MIN_CLIPS_PER_CLASS = 4  # fewer, and a fold's held-out clips of a class are one or none: no score to read


@dataclass(frozen=True, kw_only=True)
class ChooserSetting:
    """How thoroughly the recipes are weighed: group folds, and what is cut from every preset."""

    name: str
    folds: int
    cuts: Mapping[str, Any] = field(default_factory=dict)  # overrides applied to every recipe

    def words(self) -> str:
        """What this setting trades, in plain words, against the presets as they are."""
        if not self.cuts:
            return f"{self.name}: {self.folds} group folds, each preset as it is."
        presets = {n: load_config(PRESETS_DIR / f) for n, f in CHOOSER_RECIPES.items()}
        what = []
        for key, value in self.cuts.items():
            was = " / ".join(f"{_get(c, key)} ({n})" for n, c in presets.items() if _get(c, key) != value)
            if was:
                what.append(f"{value} {KEY_WORDS.get(key, key)} instead of {was}")
        return (
            f"{self.name}: {self.folds} group folds instead of {FULL.folds} (each recipe's score rests on fewer "
            f"held-out groups: noisier), {'; '.join(what)}. Faster, and the trained model is weaker than the full "
            "setting's: use the full setting on real data when you have the time."
        )


KEY_WORDS = {
    "epochs": "epochs",
    "num_frames": "frames a clip",
    "img_size": "px frames",
    "feature_views": "view of each clip (no augmented copies)",
}
QUICK = ChooserSetting(name="Quick", folds=2, cuts={"epochs": 15, "img_size": 128, "feature_views": 1})
FULL = ChooserSetting(name="Full", folds=4)


def _get(config: Config, key: str) -> Any:
    for section in (config.data, config.model, config.train):
        if hasattr(section, key):
            return getattr(section, key)
    raise KeyError(key)


def recipe_configs(data: Mapping[str, Any], setting: ChooserSetting = FULL) -> dict[str, Config]:
    """Each recipe's preset with the user's ``data`` overrides (``data_root``, ``classes``, ``cache_dir``, ...)
    and the ``setting``'s cuts: name -> config."""
    return {
        name: apply_overrides(load_config(PRESETS_DIR / file), {**data, **setting.cuts})
        for name, file in CHOOSER_RECIPES.items()
    }


def check_choosable(config: Config, folds: int) -> VideoIndex:
    """The training clips of ``config``'s data, if there are enough of them to cross-validate by group in
    ``folds`` folds; else a :class:`DatasetError` that names the fix."""
    cfg = config.data
    index = build_index(cfg.data_root, "train", split=cfg.split, classes=cfg.classes, num_classes=cfg.num_classes)
    if len(index.classes) < 2:
        raise DatasetError(f"only one class ({index.classes[0]}) was found: a model needs two classes or more")
    groups = index.groups
    if len(groups) < max(folds, 2):
        raise DatasetError(
            f"the clips come from {len(groups)} group(s) (a group is one person or place: gXX in a UCF-101 style "
            f"name, v_Class_g01_c01.avi, else each clip is its own); choosing a recipe holds out whole groups, "
            f"{folds} folds need at least {folds}: add clips from more people or places, or pick a preset"
        )
    clips = Counter(r.label for r in index.records)
    groups_of: dict[int, set[str]] = {}
    for r in index.records:
        groups_of.setdefault(r.label, set()).add(r.group)
    few = [f"{name} ({clips[i]})" for i, name in enumerate(index.classes) if clips[i] < MIN_CLIPS_PER_CLASS]
    if few:
        raise DatasetError(
            f"too few clips to choose a recipe for: {', '.join(few)}; each class needs at least {MIN_CLIPS_PER_CLASS}, "
            "from two groups (people or places) or more: add clips of these classes"
        )
    lonely = [index.classes[i] for i, g in sorted(groups_of.items()) if len(g) < 2]
    if lonely:
        raise DatasetError(
            f"all clips of {', '.join(lonely)} come from one group (one person or place): held out, the class has "
            "nothing to learn from; add clips of it from another group (v_Class_g02_c01.avi) or pick a preset"
        )
    return index


@dataclass(frozen=True, kw_only=True)
class ChooserHooks:
    """What a chooser run tells as it goes, and how it is stopped (all optional)."""

    # a new stage, in words ("recipe 1 of 2, pose: cross-validating, fold 1 of 2 ..."), with the config of the
    # fit it starts (None for a stage that trains nothing)
    on_stage: Callable[[str, Config | None], None] | None = None
    on_step: Callable[[int, int, float], None] | None = None  # each training step of the running fit
    on_epoch: Callable[[dict], None] | None = None  # each epoch's history row of the running fit
    stop: threading.Event | None = None

    def stage(self, words: str, config: Config | None = None) -> None:
        log.info(words)
        if self.on_stage is not None:
            self.on_stage(words, config)


@dataclass(kw_only=True)
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


def score_recipes(
    recipes: Mapping[str, Config],
    folds: int,
    out: Path,
    *,
    show_progress: bool = False,
    hooks: ChooserHooks = ChooserHooks(),
) -> list:
    """Cross-validate each recipe by group (``out/<name>/``), then the fusion of the first two: one
    :class:`RecipeScore` each, the last epoch's out-of-fold accuracy per fold."""
    from vidclf.training.crossval import cross_validate

    scores = []
    for r, (name, config) in enumerate(recipes.items(), 1):
        t0 = time.perf_counter()
        hooks.stage(f"recipe {r} of {len(recipes)}, {name}: preparing its inputs for {folds} group folds")

        def on_fold(
            i: int, k: int, groups: Sequence[str], name: str = name, r: int = r, config: Config = config
        ) -> None:
            hooks.stage(
                f"recipe {r} of {len(recipes)}, {name}: cross-validating, fold {i} of {k} "
                f"(held out: groups {', '.join(groups)})",
                config,
            )

        cross_validate(
            apply_overrides(config, {"out_dir": str(out / name)}),
            folds,
            show_progress=show_progress,
            on_fold=on_fold,
            on_step=hooks.on_step,
            on_epoch=hooks.on_epoch,
            stop=hooks.stop,
        )
        oof = read_oof(out / name / "oof.npz")
        accs = _fold_accs(oof)
        scores.append(
            RecipeScore(
                name=name,
                mean=float(np.mean(accs)),
                std=float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                folds=accs,
                seconds=time.perf_counter() - t0,
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
                name=f"{a.name}+{b.name}",
                mean=nested["mean"],
                std=nested["std"],
                folds=nested["fold_acc"],
                seconds=a.seconds + b.seconds,
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
    recipes: Mapping[str, Config],
    folds: int,
    out: str | Path,
    *,
    show_progress: bool = False,
    hooks: ChooserHooks = ChooserHooks(),
    info: dict | None = None,
) -> dict:
    """Score the ``recipes`` (name -> config; the first two are also fused), pick the winner, train it on every
    training clip (each stream in ``out/.streams/<name>/``), set its threshold on the out-of-fold predictions,
    then write it as ``out/last.pt`` (a fusion: its streams fused there), ``out/choice.json`` and
    ``out/choice.md``. Returns ``{"table", "winner", "why", "checkpoint", "clips"}``.

    ``hooks`` hears each stage, step and epoch (a fresh run starts with each fold and with the final training)
    and can stop the run (:class:`~vidclf.training.crossval.Stopped`). ``info`` goes into the checkpoint."""
    from vidclf.calibration import build_fusion, calibrate
    from vidclf.data.dataset import training_data
    from vidclf.training.crossval import Stopped
    from vidclf.training.loop import fit

    out = Path(out)
    index = check_choosable(next(iter(recipes.values())), folds)
    log.info(
        "choosing a recipe on %s: %d classes, %d clips, %d groups",
        index.source,
        len(index.classes),
        len(index.records),
        len(index.groups),
    )
    scores = score_recipes(recipes, folds, out / "cv", show_progress=show_progress, hooks=hooks)
    winner, why = pick(scores)
    md = table(scores, winner)
    log.info("\n" + md + f"\nchosen: {winner.name}: {why}")
    names = winner.name.split("+")
    trained: dict[str, Path] = {}
    clips = 0
    for name in names:
        # never trained in ``out`` itself: a model list would show its epochs before its threshold is set
        where = out / ".streams" / name
        config = apply_overrides(recipes[name], {"val_fraction": 0.0, "out_dir": str(where)})
        hooks.stage(f"chosen: {winner.name}; training {name} on every clip", config)
        data = training_data(config, show_progress=show_progress)
        clips = len(data.index.records)
        run = fit(
            config,
            data.train,
            None,
            data.classes,
            show_progress=show_progress,
            on_step=hooks.on_step,
            on_epoch=hooks.on_epoch,
            stop=hooks.stop,
            info={"data": data.index.source, "chosen_by": f"recipe chooser, {folds} group folds", **(info or {})},
        )
        if run.stopped == "user":
            raise Stopped(f"stopped on request while training {name} on every clip: no model was chosen")
        trained[name] = where / "last.pt"
    hooks.stage(f"chosen: {winner.name}; setting its 'not one of these' threshold on the out-of-fold predictions")
    cache = next(iter(recipes.values())).data.cache_dir
    path = out / "last.pt"
    if len(trained) > 1:
        oofs = [out / "cv" / n / "oof.npz" for n in trained]
        build_fusion(list(trained.values()), oofs, path, max_ratio=None, cache_dir=cache)
    else:
        ((name, staged),) = trained.items()
        calibrate(staged, oof=out / "cv" / name / "oof.npz", cache_dir=cache)
        shutil.copyfile(staged, tmp := out / ".last.pt.chosen.tmp")
        os.replace(tmp, path)  # appears whole, threshold set
    result = {"table": md, "winner": winner.name, "why": why, "checkpoint": str(path), "clips": clips}
    (out / "choice.json").write_text(
        json.dumps({**result, "scores": [s.__dict__ | {"oof": str(s.oof)} for s in scores]}, indent=1)
    )
    (out / "choice.md").write_text(md + f"\n\nchosen: **{winner.name}**: {why}\n")
    return result
