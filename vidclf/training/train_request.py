"""The Train tab's requests: its form (hostile until checked) -> a run on the training job, and the run's status
in words. The default recipe is the chooser (cross-validate pose, motion and their fusion by group on the user's
clips, train the winner on every clip); a user who knows better picks a preset or sets everything by hand.

Serving never imports training: this module lives on the training side and is called by ``app.py`` only.
"""

from __future__ import annotations

import time
from pathlib import Path

from vidclf.config import CHOOSER_RECIPES, PRESETS_DIR, Config, apply_overrides, load_config
from vidclf.errors import ConfigError
from vidclf.serving import ServeSettings, public_message, training_request
from vidclf.training.choose import FULL, QUICK, check_choosable, recipe_configs
from vidclf.training.job import JobStatus, TrainingJob

CHOOSE = "Choose the recipe for me"
PRESETS = {
    "Preset: pose (body landmarks)": "pose",
    "Preset: motion (frame differences)": "motion",
}
OWN = "My own settings (below)"
RECIPE_CHOICES = (CHOOSE, *PRESETS, OWN)
RECIPE_HELP = (
    "**Choose the recipe for me** (the default) cross-validates two recipes by group on your clips (whole people "
    "or places held out): *pose* reads the body's landmarks (exercises: the body decides), *motion* the pixels of "
    "frame differences (where the scene or an object decides), and their fusion. It shows their scores, picks the "
    "best, and trains it on all your clips with a calibrated 'not one of these' threshold. Pick a preset, or your "
    "own settings, if you know better."
)


def quick_words() -> str:
    """What the quick setting trades, for the page."""
    return f"**{QUICK.words()}** The full setting: {FULL.folds} group folds, the presets as they are (`presets/`)."


def _data_overrides(config: Config) -> dict:
    """The data the form chose (already checked by :func:`~vidclf.serving.training_request`)."""
    d = config.data
    return {"data_root": d.data_root, "classes": d.classes, "num_classes": d.num_classes, "split": d.split}


def start_request(
    job: TrainingJob, form: dict, settings: ServeSettings, synthetic_root: Path, *, owner: str | None = None
) -> str:
    """Start what the Train form asks for on ``job``: the chooser (``form["recipe"]`` is :data:`CHOOSE`), a preset
    or the form's own settings; ``form["quick"]`` cuts the chooser and the presets to the quick setting. Returns
    what started, in words; a bad form is a :class:`~vidclf.errors.VidclfError` that names the fix."""
    recipe = str(form.get("recipe") or CHOOSE)
    if recipe not in RECIPE_CHOICES:
        raise ConfigError(f"unknown recipe {recipe!r}: pick one of {', '.join(RECIPE_CHOICES)}")
    config, prepare, where = training_request(form, settings, synthetic_root)
    shown = public_message(Exception(where))
    setting = QUICK if form.get("quick") else FULL
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if recipe == OWN:
        job.start(config, prepare, owner=owner)
        return f"Started: {config.model.backbone} on {shown}, writing {Path(config.train.out_dir).name}"
    data = _data_overrides(config) | {"cache_dir": config.data.cache_dir}
    if recipe in PRESETS:
        name = PRESETS[recipe]
        preset = apply_overrides(load_config(PRESETS_DIR / CHOOSER_RECIPES[name]), data | dict(setting.cuts))
        out = settings.runs_dir / "app" / f"{stamp}-{name}"
        preset = apply_overrides(preset, {"val_fraction": config.data.val_fraction, "out_dir": str(out)})
        job.start(preset, prepare, owner=owner)
        return f"Started: the {name} preset ({setting.name.lower()} setting) on {shown}, writing {out.name}"
    recipes = recipe_configs(data, setting)
    if prepare is None:  # a server folder: its clips can be checked now (the synthetic set is written first)
        check_choosable(next(iter(recipes.values())), setting.folds)
    out = settings.runs_dir / "app" / f"{stamp}-chosen"
    job.start_choice(recipes, setting.folds, out, prepare, owner=owner)
    return (
        f"Started choosing the recipe ({setting.name.lower()} setting: {setting.folds} group folds) on {shown}, "
        f"writing {out.name}"
    )


def status_markdown(s: JobStatus, runs_dir: Path) -> str:
    """The job's status for the page: state, which recipe and fold is running, progress, and where the model
    went once saved. No server path is shown."""
    if s.state == "idle":
        return "No training run yet."
    eta = f", about {s.eta_s:.0f} s left" if s.eta_s and s.running else ""
    progress = f"epoch {s.epoch}/{s.epochs}, step {s.step}/{s.steps}{eta}" if s.steps and s.running else ""
    text = f"**{s.state}** {progress}  \n{public_message(Exception(s.message))}"
    if s.running or not s.out_dir or not Path(s.out_dir, "last.pt").is_file() or s.state == "failed":
        return text
    label = Path(s.out_dir).relative_to(runs_dir) if Path(s.out_dir).is_relative_to(runs_dir) else Path(s.out_dir).name
    if s.kind == "choose":
        if s.state != "finished":
            return text
        return text + (
            f"  \nSaved as **run: {label}** in the Predict tab's model list: the chosen recipe trained on every clip "
            "(its score is the cross-validated one in the table)."
        )
    return text + (
        f"  \nSaved as **run: {label}** in the Predict tab's model list: the last epoch's weights (last.pt; best.pt, "
        "the epoch picked on the validation clips, is kept beside it on the server)."
    )
