"""One training run at a time in a background thread, with live status for the app: a run of one config, or
the recipe chooser (cross-validate the recipes by group, train the winner on every clip)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from vidclf.config import Config
from vidclf.data.dataset import training_data
from vidclf.errors import VidclfError
from vidclf.training.loop import fit
from vidclf.training.report import report_run
from vidclf.training.threshold import set_run_threshold, threshold_words

log = logging.getLogger(__name__)


@dataclass
class JobStatus:
    state: str = "idle"  # idle, preparing, running, finished, stopped, failed
    message: str = ""
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    eta_s: float | None = None
    history: list[dict] = field(default_factory=list)
    out_dir: str | None = None
    finished_runs: int = 0  # bumps when a run ends with a checkpoint, so the app knows to refresh its model list
    kind: str = "train"  # "train": one config; "choose": the recipe chooser
    stage: str = ""  # the chooser's: which recipe and fold is running
    choice: str = ""  # the chooser's table of the recipes' scores and why the winner won (Markdown), once known

    @property
    def running(self) -> bool:
        return self.state in ("preparing", "running")


class TrainingJob:
    """Starts :func:`fit` in a thread; refuses a second run while one is going; ``stop()`` ends it cleanly.
    A run started with an ``owner`` (the app: the page's session) stops only when that owner asks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = JobStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner: str | None = None

    def status(self) -> JobStatus:
        with self._lock:
            return copy.deepcopy(self._status)

    def start(self, config: Config, prepare: Callable[[], None] | None = None, *, owner: str | None = None) -> None:
        """Start training ``config``; ``prepare()`` runs first in the thread (e.g. generating the synthetic set)."""
        self._launch(
            JobStatus(
                state="preparing", message="preparing data", epochs=config.train.epochs, out_dir=config.train.out_dir
            ),
            lambda: self._run(config, prepare),
            owner,
        )

    def start_choice(
        self,
        recipes: Mapping[str, Config],
        folds: int,
        out: Path,
        prepare: Callable[[], None] | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        """Start the recipe chooser (:func:`~vidclf.training.choose.choose_and_train`) on ``recipes`` with ``folds``
        group folds, its chosen model written to ``out/last.pt``; ``prepare()`` runs first in the thread."""
        first = next(iter(recipes.values()))
        self._launch(
            JobStatus(
                state="preparing",
                message="checking the data",
                epochs=first.train.epochs,
                out_dir=str(out),
                kind="choose",
                stage="checking the data",
            ),
            lambda: self._run_choice(recipes, folds, out, prepare),
            owner,
        )

    def _launch(self, status: JobStatus, target: Callable[[], None], owner: str | None) -> None:
        with self._lock:
            if self._status.running:
                raise VidclfError("a training run is already in progress: wait for it to end")
            self._owner = owner
            status.finished_runs = self._status.finished_runs
            self._status = status
            self._stop.clear()
            self._thread = threading.Thread(target=target, daemon=True, name="vidclf-train")
            self._thread.start()

    def stop(self, *, owner: str | None = None) -> None:
        """Ask the running run to end after its current step; refused unless ``owner`` started it."""
        with self._lock:
            if self._status.running and self._owner is not None and owner != self._owner:
                raise VidclfError("only the page that started this training run can stop it")
        self._stop.set()

    def _update(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._status, k, v)

    def _run(self, config: Config, prepare) -> None:
        try:
            if prepare is not None:
                prepare()
            data = training_data(config, show_progress=False)
            self._update(state="running", message=data.describe())
            on_step, on_epoch = self._fresh_run(config.train.epochs)
            result = fit(
                config,
                data.train,
                data.val,
                data.classes,
                show_progress=False,
                on_step=on_step,
                on_epoch=on_epoch,
                stop=self._stop,
                info={"data": data.index.source, "val_groups": list(data.split.val_groups), "trained_in": "app"},
            )
            has_model = Path(result.last_path).exists()
            calibrated = None
            if has_model:
                self._update(message="setting the 'not one of these' threshold on the validation clips")
                calibrated = set_run_threshold(config, result, data.val)
                report_run(
                    config.train.out_dir,
                    result.val_inputs if result.val_inputs is not None else data.val,
                    data.classes,
                    batch_size=config.train.batch_size,
                    device=config.train.device,
                    precision=config.train.precision,
                    features=result.val_features if result.val_inputs is not None else None,
                )
            with self._lock:
                self._status.state = "stopped" if result.stopped == "user" else "finished"
                last = result.history[-1] if result.history else {}
                self._status.message = (
                    f"{self._status.state}: the model of the last epoch ({last.get('epoch')}) has validation "
                    f"accuracy {_percent(last.get('val_acc'))} (the best epoch, {result.best_epoch}: "
                    f"{_percent(result.best_val_acc)}, picked on those same clips)"
                    + (f"; {threshold_words(calibrated)}" if calibrated is not None else "")
                    if has_model
                    else "stopped before the first epoch ended: no model saved"
                )
                self._status.eta_s = 0.0
                self._status.finished_runs += int(has_model)
        except VidclfError as e:
            self._update(state="failed", message=str(e))
        except Exception as e:  # a bug: keep the server alive and say what happened
            log.exception("training crashed")
            self._update(state="failed", message=f"training crashed: {type(e).__name__}: {e}")

    def _fresh_run(self, epochs: int) -> tuple[Callable[[int, int, float], None], Callable[[dict], None]]:
        """Callbacks of one fit whose curves replace the last one's (a run of one config; a chooser's folds, then its
        final training)."""
        t0 = time.perf_counter()
        with self._lock:
            self._status.history, self._status.epochs = [], epochs
            self._status.epoch = self._status.step = self._status.steps = 0

        def on_step(step: int, steps: int, loss: float) -> None:
            with self._lock:
                s = self._status
                s.epoch, s.step, s.steps = len(s.history) + 1, step, steps
                # time per unit of progress so far, validation included (a training step alone underestimates
                # an epoch), times what is left
                done = len(s.history) + step / steps
                s.eta_s = (time.perf_counter() - t0) / done * (s.epochs - done)

        def on_epoch(row: dict) -> None:
            with self._lock:
                self._status.history.append(dict(row))

        return on_step, on_epoch

    def _run_choice(self, recipes: Mapping[str, Config], folds: int, out: Path, prepare) -> None:
        from vidclf.training.choose import ChooserHooks, choose_and_train
        from vidclf.training.crossval import Stopped

        current: dict[str, Callable] = {}

        def on_stage(words: str, config: Config | None) -> None:
            if config is not None:  # a fit of this config starts: fresh curves
                step, epoch = self._fresh_run(config.train.epochs)
                current.update(step=step, epoch=epoch)
            self._update(state="running", stage=words, message=words)

        hooks = ChooserHooks(
            on_stage=on_stage,
            on_step=lambda *a: current["step"](*a) if "step" in current else None,
            on_epoch=lambda row: current["epoch"](row) if "epoch" in current else None,
            stop=self._stop,
        )
        try:
            if prepare is not None:
                prepare()
            r = choose_and_train(recipes, folds, out, hooks=hooks, info={"trained_in": "app"})
            with self._lock:
                s = self._status
                s.state, s.stage, s.eta_s = "finished", "done", 0.0
                s.choice = f"{r['table']}\n\n**Chosen: {r['winner']}**: {r['why']}."
                s.message = (
                    f"finished: {r['winner']} chosen, trained on all {r['clips']} clips, with its 'not one of these' "
                    "threshold set on the cross-validation's held-out predictions"
                )
                s.finished_runs += 1
        except Stopped as e:
            self._update(state="stopped", message=str(e))
        except VidclfError as e:
            self._update(state="failed", message=str(e))
        except Exception as e:  # a bug: keep the server alive and say what happened
            log.exception("the recipe chooser crashed")
            self._update(state="failed", message=f"choosing a recipe crashed: {type(e).__name__}: {e}")


def _percent(share: float | None) -> str:
    return "n/a" if share is None or share < 0 else f"{share:.1%}"
