"""What every finished (or interrupted) run leaves beside its checkpoints: ``validation.json`` with the
metrics of ``best.pt`` and ``last.pt`` on the validation clips, and their confusion images.

Measured on what the epochs were validated on, in the training precision, where the run says what that was
(:attr:`vidclf.training.loop.FitResult.val_inputs`): then each file's figures are exactly its epoch's line.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import cast

import json
from pathlib import Path

from torch.utils.data import Dataset

from vidclf.charts_png import save_confusion_png
from vidclf.checkpoint import load_checkpoint
from vidclf.errors import CheckpointError
from vidclf.metrics import classification_metrics
from vidclf.runtime import collect_logits, make_loader, resolve_device


def report_run(
    out_dir: str | Path,
    val: Dataset,
    classes: tuple[str, ...],
    *,
    batch_size: int = 4,
    device: str = "auto",
    precision: str = "fp32",
    features: bool | None = None,
) -> dict:
    """Metrics of the run's ``best.pt`` and ``last.pt`` (those that exist) on ``val``; written to
    ``out_dir/validation.json`` and ``confusion_<name>.png``. Returns ``{name: metrics}``.

    ``val`` yields clips, or with ``features=True`` the per-frame features ``[T, D]`` the epochs were validated
    on (None: as the checkpoint's input is); ``precision`` should be the training's."""
    out = Path(out_dir)
    if len(cast(Sized, val)) == 0:
        return {}
    dev = resolve_device(device)
    loader = make_loader(val, batch_size, shuffle=False, num_workers=0, device=dev, seed=0)
    report = {}
    for name in ("best", "last"):
        try:
            ck = load_checkpoint(out / f"{name}.pt")
        except CheckpointError:
            continue  # a run interrupted before its first epoch ended has no checkpoint to report
        assert ck.input is not None
        reads_features = ck.input.features != "pixels" if features is None else features
        logits, labels = collect_logits(ck.build_model().to(dev), loader, dev, precision, features=reads_features)
        m = classification_metrics(logits, labels, classes)
        report[name] = {**m, "epoch": ck.epoch}
        save_confusion_png(m["confusion"], classes, out / f"confusion_{name}.png")
    if report:
        (out / "validation.json").write_text(json.dumps(report, indent=1))
    return report
