"""Which trained models exist (shipped ``weights/``, training runs, a Hub model) and what each is.

Reading a checkpoint costs tens of milliseconds and megabytes, and the app asks for the list on every page
load: entries are cached by (file, modification time), so a file is read again only when it changes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from vidclf.checkpoint import load_checkpoint
from vidclf.errors import VidclfError
from vidclf.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = ROOT / "weights"
RUNS_DIR = ROOT / "runs"


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One selectable checkpoint and what a person choosing it needs to know."""

    label: str  # what the selector returns; unique
    path: Path
    backbone: str  # "pose", "efficientnet_lite0", ..., or "fusion(pose+efficientnet_lite0)"
    classes: tuple[str, ...]
    val_acc: float | None  # the accuracy a person is shown: cross-validated where there is a figure for it
    source: str  # "shipped", "run" or "hub"
    frame_input: str = "rgb"  # "diff": the model sees frame differences (motion)
    score_kind: str = "validation"  # "cross-validated" or "validation": what val_acc is
    sees: str = ""  # what the model looks at, in plain words

    @property
    def synthetic(self) -> bool:
        return all(c.startswith("Synth") for c in self.classes)

    @property
    def description(self) -> str:
        """What the dropdown shows: the name, what it looks at, and how it scored."""
        what = f"{len(self.classes)} SYNTHETIC actions" if self.synthetic else f"{len(self.classes)} actions"
        score = f", {self.val_acc:.0%} {self.score_kind}" if self.val_acc is not None else ""
        return f"{self.label}: {self.sees or self.backbone}; {what}{score}"


def _sees(backbone: str, frame_input: str) -> str:
    if backbone.startswith("fusion("):
        parts = backbone[len("fusion(") : -1].split("+")
        return "body pose + motion" if "pose" in parts else "+".join(parts)
    if backbone.startswith("pose"):
        return "body pose"
    return ("motion" if frame_input == "diff" else "pixels") + f" ({backbone})"


def read_entry(path: Path, label: str, source: str) -> ModelEntry:
    ck = load_checkpoint(path)
    cv, val = ck.metrics.get("cv_acc"), ck.metrics.get("val_acc")
    first = ck.streams[0][0] if ck.is_fusion else ck
    frame_input = first.input.frame_input if first.input is not None else "rgb"
    score = cv if cv is not None else val
    return ModelEntry(
        label=label,
        path=path,
        backbone=ck.backbone,
        classes=ck.classes,
        val_acc=None if score is None else float(score),
        source=source,
        frame_input=frame_input,
        score_kind="cross-validated" if cv is not None else "validation",
        sees=_sees(ck.backbone, frame_input),
    )


_cache: dict[tuple[str, int, str, str], ModelEntry] = {}
_cache_lock = threading.Lock()


def _cached_entry(path: Path, label: str, source: str) -> ModelEntry:
    key = (str(path), path.stat().st_mtime_ns, label, source)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is None:
        hit = read_entry(path, label, source)
        with _cache_lock:
            _cache[key] = hit
    return hit


_WORKING = re.compile(r"fold\d+|\..*")


def find_models(
    weights_dir: Path = WEIGHTS_DIR, runs_dir: Path = RUNS_DIR, extra: list[Path] | None = None
) -> list[ModelEntry]:
    """Shipped checkpoints (``weights/*.pt``) best first (real before synthetic), then each run's ``last.pt``
    (``runs/**/last.pt``: the weights of the run's last epoch, whose validation figure was not picked on the
    validation clips as ``best.pt``'s was) newest first, then ``extra``. A run's working parts are not models to
    pick: the folds of a cross-validation (``fold<i>/``, each trained on part of the data) and anything under a
    folder whose name starts with a dot (a chosen fusion's streams). Unreadable or vanished files are skipped:
    one bad file must not hide the others.
    """
    candidates: list[tuple[Path, str, str]] = [(p, p.stem, "shipped") for p in sorted(weights_dir.glob("*.pt"))]
    if runs_dir.is_dir():
        runs = []
        for p in runs_dir.rglob("last.pt"):
            if any(_WORKING.fullmatch(part) for part in p.parent.relative_to(runs_dir).parts):
                continue
            try:
                runs.append((p.stat().st_mtime, p))
            except OSError:
                continue
        candidates += [(p, "run: " + str(p.parent.relative_to(runs_dir)), "run") for _, p in sorted(runs, reverse=True)]
    candidates += [(p, f"hub: {p.name}", "hub") for p in extra or []]
    found: list[ModelEntry] = []
    for path, label, source in candidates:
        try:
            found.append(_cached_entry(path, label, source))
        except (VidclfError, OSError):
            continue
    shipped = sorted((m for m in found if m.source == "shipped"), key=lambda m: (m.synthetic, -(m.val_acc or 0.0)))
    return shipped + [m for m in found if m.source != "shipped"]


class PredictorPool:
    """Predictors kept loaded, one per checkpoint file version, the least recently used evicted first; safe
    to use from several request threads. A model is loaded outside the pool's lock, so one slow load does not
    hold up requests for models already loaded, and once: requests that miss the same file at once wait for
    the one load instead of each loading it (two copies of a fusion is hundreds of MB)."""

    def __init__(self, max_models: int = 4):
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, int], Predictor] = OrderedDict()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self.max_models = max_models

    def get(self, path: Path) -> Predictor:
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            raise VidclfError(
                f"the model file {path.name} is gone (removed or replaced): refresh the page and pick another"
            ) from None
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # the first request loads; the others wait here, then find the model loaded
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            try:
                predictor = Predictor(path, precision="auto")
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._models[key] = predictor
                self._loading.pop(key, None)  # after the model is in: a request now finds it, never loads it again
                evicted = [self._models.popitem(last=False)[1] for _ in range(len(self._models) - self.max_models)]
            for old in evicted:
                close = getattr(old, "close", None)
                if close is not None:
                    close()  # its MediaPipe graphs; a request still using it builds one again if it needs one
            return predictor
