"""Group k-fold cross-validation: one validation number is noise on 528 clips; k of them are evidence.

Besides each fold's best validation accuracy (an upper bound: the epoch was picked on that very fold),
every fold reports its last epoch's accuracy (nothing picked on validation), and ``oof.npz`` keeps the
out-of-fold logits of every clip (``paths``, ``labels``, ``folds``, ``logits_last``, ``logits_best``): what fusion
weights and rejection thresholds are chosen on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sized
from typing import cast

import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from vidclf.checkpoint import load_checkpoint
from vidclf.config import Config, apply_overrides
from vidclf.data.dataset import training_data
from vidclf.errors import VidclfError
from vidclf.runtime import collect_logits, make_loader, resolve_device
from vidclf.training.loop import EpochCallback, StepCallback, fit


class Stopped(VidclfError):
    """A cross-validation (or a chooser run) stopped on request before it ended: nothing was chosen."""


def cross_validate(
    config: Config,
    folds: int,
    *,
    show_progress: bool = False,
    on_fold: Callable[[int, int, tuple[str, ...]], None] | None = None,
    on_step: StepCallback | None = None,
    on_epoch: EpochCallback | None = None,
    stop: threading.Event | None = None,
) -> dict:
    """Train once per fold (validation = that fold's groups) and report the best validation accuracy of each,
    their mean and standard deviation. Runs go to ``out_dir/fold<i>``; the summary to ``out_dir/cv.json``.

    ``on_fold(i, folds, val_groups)`` is called as fold ``i`` (from 1) starts; ``on_step``, ``on_epoch`` and
    ``stop`` go to each fold's :func:`fit`; a ``stop`` set during a fold raises :class:`Stopped` after it."""
    log = logging.getLogger(__name__).info
    out = Path(config.train.out_dir)
    rows = []
    oof: dict[str, list] = {"paths": [], "labels": [], "folds": [], "logits_last": [], "logits_best": []}
    for i in range(folds):
        if stop is not None and stop.is_set():
            raise Stopped("stopped on request before the cross-validation ended")
        data = training_data(config, fold=(i, folds), show_progress=show_progress)
        if on_fold is not None:
            on_fold(i + 1, folds, tuple(data.split.val_groups))
        cfg = apply_overrides(config, {"out_dir": str(out / f"fold{i + 1}")})
        t0 = time.perf_counter()
        result = fit(
            cfg,
            data.train,
            data.val,
            data.classes,
            show_progress=show_progress,
            on_step=on_step,
            on_epoch=on_epoch,
            stop=stop,
        )
        if result.stopped == "user":
            raise Stopped("stopped on request before the cross-validation ended")
        best = result.history[result.best_epoch - 1]
        # the inputs every epoch was validated on (a frozen CNN's cached features: no second pass through it)
        val, features = (result.val_inputs, result.val_features) if result.val_inputs is not None else (data.val, None)
        logits = {
            name: _val_logits(path, val, cfg, features=features)
            for name, path in (("last", result.last_path), ("best", result.best_path))
        }
        labels = np.array([r.label for r in data.split.val.records])
        last_acc = float((logits["last"].argmax(1) == labels).mean())
        oof["paths"] += [str(r.path) for r in data.split.val.records]
        oof["labels"].append(labels)
        oof["folds"].append(np.full(len(labels), i))
        oof["logits_last"].append(logits["last"])
        oof["logits_best"].append(logits["best"])
        rows.append(
            {
                "fold": i + 1,
                "val_groups": list(data.split.val_groups),
                "val_clips": len(cast(Sized, data.val)),
                "best_epoch": result.best_epoch,
                "val_acc": result.best_val_acc,
                "last_val_acc": last_acc,
                "train_acc": best["train_acc"],
                "seconds": time.perf_counter() - t0,
            }
        )
        log(
            f"fold {i + 1}/{folds} (groups {', '.join(data.split.val_groups)}): best val acc {result.best_val_acc:.3f} "
            f"at epoch {result.best_epoch} (train acc {best['train_acc']:.3f}), last epoch {last_acc:.3f}, "
            f"{rows[-1]['seconds']:.0f} s"
        )
    accs = [r["val_acc"] for r in rows]
    last = [r["last_val_acc"] for r in rows]
    summary = {
        "folds": rows,
        "mean": statistics.mean(accs),
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "min": min(accs),
        "max": max(accs),
        "last_mean": statistics.mean(last),
        "last_std": statistics.stdev(last) if len(last) > 1 else 0.0,
        "config": config.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        out / "oof.npz",
        paths=np.array(oof["paths"]),
        labels=np.concatenate(oof["labels"]),
        folds=np.concatenate(oof["folds"]),
        logits_last=np.concatenate(oof["logits_last"]),
        logits_best=np.concatenate(oof["logits_best"]),
    )
    (out / "cv.json").write_text(json.dumps(summary, indent=1))
    log(
        f"cross-validated accuracy: {summary['mean']:.3f} +- {summary['std']:.3f} "
        f"(folds {summary['min']:.3f}-{summary['max']:.3f}) "
        f"at each fold's best epoch; {summary['last_mean']:.3f} +- {summary['last_std']:.3f} at the last epoch"
    )
    return summary


def _val_logits(checkpoint: Path, val: Dataset, config: Config, *, features: bool | None = None) -> np.ndarray:
    """Logits ``[N, K]`` of a fold's checkpoint on its validation clips (or their cached features, with
    ``features=True``), in their order."""
    ck = load_checkpoint(checkpoint)
    assert ck.input is not None  # a fold's checkpoint is a single model
    device = resolve_device(config.train.device)
    loader = make_loader(val, config.train.batch_size, shuffle=False, num_workers=0, device=device, seed=0)
    reads_features = ck.input.features != "pixels" if features is None else features
    logits, _ = collect_logits(ck.build_model().to(device), loader, device, "fp32", features=reads_features)
    return logits.numpy()
