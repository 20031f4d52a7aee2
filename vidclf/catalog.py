"""Which trained models exist (shipped ``weights/``, training runs, a Hub model) and what each is."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from vidclf.checkpoint import load_checkpoint
from vidclf.errors import VidclfError
from vidclf.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "weights"
RUNS_DIR = ROOT / "runs"


@dataclass(frozen=True)
class ModelEntry:
    """One selectable checkpoint and what a person choosing it needs to know."""

    label: str  # what the selector shows; unique
    path: Path
    backbone: str
    classes: tuple[str, ...]
    val_acc: float | None
    source: str  # "shipped", "run" or "hub"
    frame_input: str = "rgb"  # "diff": the model sees frame differences (motion)

    @property
    def description(self) -> str:
        acc = f"val acc {self.val_acc:.0%}" if self.val_acc is not None else "val acc n/a"
        synthetic = " SYNTHETIC" if all(c.startswith("Synth") for c in self.classes) else ""
        motion = " on frame differences" if self.frame_input == "diff" else ""
        return f"{self.label}: {self.backbone}{motion}, {len(self.classes)}{synthetic} classes, {acc}"


def _entry(path: Path, label: str, source: str) -> ModelEntry:
    ck = load_checkpoint(path)
    val = ck.metrics.get("val_acc")
    return ModelEntry(label, path, ck.model.backbone, ck.classes, float(val) if val is not None else None, source,
                      ck.input.frame_input)


def find_models(weights_dir: Path = WEIGHTS_DIR, runs_dir: Path = RUNS_DIR, extra: list[Path] | None = None) -> list[ModelEntry]:
    """Shipped checkpoints (``weights/*.pt``) first, then ``runs/**/best.pt`` newest first, then ``extra``.

    Unreadable files are skipped: one bad file must not hide the others.
    """
    found: list[ModelEntry] = []
    candidates: list[tuple[Path, str, str]] = [(p, p.stem, "shipped") for p in sorted(weights_dir.glob("*.pt"))]
    if runs_dir.is_dir():
        runs = sorted(runs_dir.rglob("best.pt"), key=lambda p: p.stat().st_mtime, reverse=True)
        candidates += [(p, "run: " + str(p.parent.relative_to(runs_dir)), "run") for p in runs]
    candidates += [(p, f"hub: {p.name}", "hub") for p in extra or []]
    for path, label, source in candidates:
        try:
            found.append(_entry(path, label, source))
        except VidclfError:
            continue
    return found


class PredictorPool:
    """Predictors kept loaded, one per checkpoint file version; safe to use from several request threads."""

    def __init__(self, max_models: int = 4):
        self._lock = threading.Lock()
        self._models: dict[tuple[str, int], Predictor] = {}
        self.max_models = max_models

    def get(self, path: Path) -> Predictor:
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if key not in self._models:
                if len(self._models) >= self.max_models:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = Predictor(path)
            return self._models[key]
