"""Group k-fold cross-validation: one validation number is noise on 528 clips; k of them are evidence."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

from vidclf.config import Config, apply_overrides
from vidclf.data.dataset import training_data
from vidclf.training.loop import fit


def cross_validate(config: Config, folds: int, log: Callable[[str], None] = print, show_progress: bool = False) -> dict:
    """Train once per fold (validation = that fold's groups) and report the best validation accuracy of each,
    their mean and standard deviation. Runs go to ``out_dir/fold<i>``; the summary to ``out_dir/cv.json``."""
    out = Path(config.train.out_dir)
    rows = []
    for i in range(folds):
        data = training_data(config, fold=(i, folds))
        cfg = apply_overrides(config, {"out_dir": str(out / f"fold{i + 1}")})
        t0 = time.perf_counter()
        result = fit(cfg, data.train, data.val, data.classes, show_progress=show_progress, log=lambda s: None)
        best = result.history[result.best_epoch - 1]
        rows.append({"fold": i + 1, "val_groups": list(data.split.val_groups), "val_clips": len(data.val),
                     "best_epoch": result.best_epoch, "val_acc": result.best_val_acc, "train_acc": best["train_acc"],
                     "seconds": time.perf_counter() - t0})
        log(f"fold {i + 1}/{folds} (groups {', '.join(data.split.val_groups)}): best val acc {result.best_val_acc:.3f} "
            f"at epoch {result.best_epoch} (train acc {best['train_acc']:.3f}), {rows[-1]['seconds']:.0f} s")
    accs = [r["val_acc"] for r in rows]
    summary = {"folds": rows, "mean": statistics.mean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
               "min": min(accs), "max": max(accs), "config": config.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    log(f"cross-validated accuracy: {summary['mean']:.3f} +- {summary['std']:.3f} (folds {summary['min']:.3f}-{summary['max']:.3f})")
    return summary
