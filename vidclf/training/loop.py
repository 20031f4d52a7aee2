"""The training loop, as plain functions you can read top to bottom.

``fit`` trains a CNN-LSTM: one pass over the training clips per epoch, validation after every epoch, the
``last`` checkpoint written every epoch and ``best`` (by validation accuracy) when it improves, a
``history.json`` and ``curves.png`` beside them. ``--resume`` picks up after the last finished epoch.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Sized
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence

from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from vidclf.charts_png import save_curves_png
from vidclf.checkpoint import Checkpoint, InputSpec, load_checkpoint, save_checkpoint
from vidclf.config import Config, TrainConfig
from vidclf.data.dataset import VideoClipDataset
from vidclf.errors import CheckpointError
from vidclf.models.cnn_lstm import CNNLSTM, build_model
from vidclf.models.registry import get_backbone
from vidclf.runtime import (
    Dist,
    all_sum,
    autocast,
    barrier,
    collect_logits,
    make_loader,
    resolve_device,
    resolve_precision,
)
from vidclf.training.distributed import device_for


logger = logging.getLogger(__name__)


def make_optimizer(model: CNNLSTM, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW; the backbone in its own group at ``lr * backbone_lr_scale``."""
    backbone = list(model.backbone.parameters())
    ids = {id(p) for p in backbone}
    groups = [
        {"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale},
        {"params": [p for p in model.parameters() if id(p) not in ids], "lr": cfg.lr},
    ]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """The share of the base learning rate used in ``epoch`` (1-based): 1, or a cosine from 1 towards 0.

    A function of the epoch alone, so ``--resume`` continues the schedule without any saved state.
    """
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
    return 1.0


StepCallback = Callable[[int, int, float], None]  # (step, steps_in_epoch, running loss)


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    *,
    device: torch.device,
    precision: str,
    desc: str = "",
    show_progress: bool = True,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
    features: bool = False,
    dist: Dist = Dist(),
    epoch: int = 0,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean ``loss`` and ``acc``. Ends early, mid-epoch, if ``stop`` is set.

    ``loader`` yields clips ``[B, T, C, H, W]``, or with ``features=True`` cached features ``[B, T, D]``.
    ``model`` may be wrapped in DistributedDataParallel; the returned metrics cover all ranks.
    """
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
    model.train()
    total_loss, correct, seen = 0.0, 0.0, 0.0
    # disable=None: no bar where stderr is not a terminal (a log redirected to a file gets the epoch lines only)
    bar = tqdm(loader, desc=desc, disable=None if show_progress else True, leave=False, dynamic_ncols=True)
    for step, (clips, labels) in enumerate(bar, 1):
        if stop is not None and stop.is_set():
            break
        clips = clips.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, precision):
            logits = model(clips, features=features)
        loss = loss_fn(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
        if on_step is not None:
            on_step(step, len(loader), total_loss / seen)
    bar.close()
    total_loss, correct, seen = all_sum([total_loss, correct, seen], dist, device)
    return {"loss": total_loss / max(seen, 1), "acc": correct / max(seen, 1), "clips": int(seen)}


def validate(
    model: CNNLSTM,
    loader: DataLoader,
    *,
    device: torch.device,
    precision: str,
    features: bool = False,
    dist: Dist = Dist(),
) -> dict[str, float]:
    """Validation loss and accuracy over every clip of every rank's shard, each clip counted once."""
    logits, labels = collect_logits(model, loader, device, precision, features=features)
    loss_sum = nn.functional.cross_entropy(logits, labels, reduction="sum").item() if len(labels) else 0.0
    correct = (logits.argmax(1) == labels).sum().item() if len(labels) else 0
    loss_sum, correct, n = all_sum([loss_sum, correct, len(labels)], dist, device)
    return {"loss": loss_sum / n, "acc": correct / n, "clips": int(n)}


@dataclass
class FitResult:
    out_dir: Path
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = -1.0
    stopped: str = "finished"  # "finished", "early_stopping" or "user"
    # What every epoch was validated on (cached features or landmarks for a frozen or pose model, else clips)
    # and whether those are features: a report of best.pt and last.pt that reads the same inputs in the same
    # precision finds the very figures of their epochs' lines, and needs no second pass through a frozen CNN.
    val_inputs: Dataset | None = None
    val_features: bool = False

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"


EpochCallback = Callable[[dict], None]


@dataclass(kw_only=True)
class TrainState:
    """Where a run starts: the model and its optimizer (fresh, from ``init_from``, or resumed) and, when
    resuming, the history and early-stopping counters so far."""

    model: CNNLSTM
    optimizer: torch.optim.Optimizer
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = -1.0
    bad_epochs: int = 0
    start_epoch: int = 1


def build_state(
    config: Config,
    classes: Sequence[str],
    *,
    out_dir: Path,
    resume: bool,
    device: torch.device,
    main: bool = True,
) -> TrainState:
    """The model (on ``device``) and optimizer of a run: fresh, started from ``init_from``, or resumed from
    ``out_dir/last.pt`` (whose missing ``best.pt`` is repaired by the main process)."""
    log = logger.info if main else logger.debug  # one process speaks for a distributed run
    tc = config.train
    # Resuming or starting from a checkpoint overwrites every weight: no ImageNet weights to fetch (offline too).
    pretrained = not resume and tc.init_from is None
    model = build_model(config.model, len(classes), load_pretrained=pretrained).to(device)
    if config.train.init_from and not resume:
        start = load_checkpoint(config.train.init_from)
        if tuple(start.classes) != tuple(classes) or start.backbone != config.model.backbone:
            raise CheckpointError(
                f"--init-from {config.train.init_from}: a {start.backbone} model of classes "
                f"{list(start.classes)}, not a {config.model.backbone} model of {list(classes)}"
            )
        model.load_state_dict(start.build_model().state_dict())
        log(f"starting from the weights of {config.train.init_from} (epoch {start.epoch})")
    if resolve_precision(config.train.precision, device) == "bf16":
        model.use_channels_last()
    optimizer = make_optimizer(model, tc)
    result = FitResult(out_dir)
    bad_epochs, start_epoch = 0, 1

    if resume:
        ck = _resume_from(result.last_path, config, classes)
        state = ck.train_state
        assert state is not None  # _resume_from refuses a checkpoint without one
        model.load_state_dict(ck.state_dict)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        result.history = list(ck.history)
        result.best_epoch = int(state["best_epoch"])
        result.best_val_acc = float(state["best_val_acc"])
        bad_epochs = int(state["bad_epochs"])
        start_epoch = ck.epoch + 1
        log(f"resuming {result.last_path} after epoch {ck.epoch}")
        if main and result.best_epoch == ck.epoch and _epoch_of(result.best_path) != ck.epoch:
            save_checkpoint(result.best_path, ck)
            log(
                f"{result.best_path.name} was not written for epoch {ck.epoch} (the run was killed): "
                f"rewritten from {result.last_path.name}"
            )

    return TrainState(
        model=model,
        optimizer=optimizer,
        history=result.history,
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        bad_epochs=bad_epochs,
        start_epoch=start_epoch,
    )


def prepare_inputs(
    config: Config,
    model: CNNLSTM,
    train_ds: Dataset,
    val_ds: Dataset | None,
    *,
    device: torch.device,
    dist: Dist = Dist(),
    show_progress: bool = True,
) -> tuple[Dataset, Dataset | None, bool, int]:
    """What the epochs read: ``(train, val or None, features?, loader workers)``. A frozen backbone's clips become
    cached per-frame features ``[T, D]`` (computed once, :mod:`vidclf.training.features`); the pose stream's
    datasets already hold landmark features; a trainable backbone reads clips ``[T, C, H, W]``."""
    log = logger.info if dist.main else logger.debug
    if val_ds is not None and len(cast(Sized, val_ds)) == 0:
        val_ds = None
    if val_ds is None:
        log("no validation clips: 'best' is chosen by training accuracy")
    landmarks = get_backbone(config.model.backbone).input == "landmarks"
    frozen = config.train.freeze_backbone and not landmarks
    workers = config.data.num_workers
    if landmarks:
        workers = 0  # pose landmarks are in memory: the datasets hold them already
    elif frozen:
        # The CNN never changes: run it once per clip (cached on disk) and train the LSTM and head on features.
        from vidclf.training.features import FeatureViews, feature_dataset

        assert isinstance(train_ds, VideoClipDataset) and (val_ds is None or isinstance(val_ds, VideoClipDataset))
        model.backbone.requires_grad_(requires_grad=False)
        log("frozen backbone: computing per-frame features once (cached)")

        def features_of(ds: VideoClipDataset, *, views: int = 1, **how) -> FeatureViews:
            return feature_dataset(
                model,
                ds,
                cache_dir=config.data.cache_dir,
                device=device,
                precision=config.train.precision,
                views=views,
                **how,
            )

        views = config.train.feature_views
        if dist.active and config.data.cache_dir:  # each rank fills the cache for its share, then all read it
            features_of(train_ds, views=views, show_progress=False, shard=(dist.rank, dist.world))
            if val_ds is not None:
                features_of(val_ds, show_progress=False, shard=(dist.rank, dist.world))
            barrier(dist)
        train_ds = features_of(train_ds, views=views, show_progress=show_progress)
        val_ds = features_of(val_ds, show_progress=show_progress) if val_ds is not None else None
        workers = 0  # cached features are small reads: no worker processes needed
    return train_ds, val_ds, frozen or landmarks, workers


def person_gate(train_ds: Dataset, val_ds: Dataset | None, classes: Sequence[str], *, warn: bool = True) -> dict:
    """For a pose model (landmark datasets): per class, the share of its clips with a person found in some frame
    (``person_found``), and the classes the person gate applies to (``person_gate``): those with at least
    :data:`~vidclf.data.landmarks.PERSON_GATE_MIN_FOUND` of them. A class below gets a warning. ``{}`` for other
    models."""
    from vidclf.data.landmarks import PERSON_GATE_MIN_FOUND, LandmarkDataset, person_found_by_class

    parts = [d for d in (train_ds, val_ds) if isinstance(d, LandmarkDataset)]
    if not parts:
        return {}
    labels = [label for d in parts for label in d.labels]
    shares = person_found_by_class(np.concatenate([d.raw for d in parts]), labels, classes)
    gate = [c for c in classes if shares.get(c, 1.0) >= PERSON_GATE_MIN_FOUND]
    for k, c in enumerate(classes):
        if c not in gate and warn:
            logger.warning(
                f"{c}: a person was found in only {shares[c]:.0%} of its {labels.count(k)} clips; the person gate "
                f"(no person, no answer) is off for {c}, so its clips are answered without one"
            )
    return {"person_found": shares, "person_gate": gate}


def fit(
    config: Config,
    train_ds: Dataset,
    val_ds: Dataset | None,
    classes: Sequence[str],
    resume: bool = False,
    show_progress: bool = True,
    on_epoch: EpochCallback | None = None,
    on_step: StepCallback | None = None,
    stop: threading.Event | None = None,
    info: dict | None = None,
    dist: Dist = Dist(),
) -> FitResult:
    """Train per ``config``; write ``best.pt``, ``last.pt``, ``history.json`` and ``curves.png`` to its ``out_dir``.

    Under torchrun (``dist.active``) every rank runs this same function: the model is wrapped in
    DistributedDataParallel, each rank sees its share of every global batch, metrics are summed over ranks,
    and rank 0 alone writes files and logs.
    """
    tc, out_dir = config.train, Path(config.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dist.main:
        for stale in out_dir.glob(".*.pt.*.tmp"):  # a checkpoint write cut short by a kill: never a checkpoint
            stale.unlink(missing_ok=True)
    device = resolve_device(device_for(dist, tc.device))
    show_progress = show_progress and dist.main
    log = logger.info if dist.main else logger.debug  # rank 0 speaks for a distributed run
    torch.manual_seed(tc.seed)

    state = build_state(config, classes, out_dir=out_dir, resume=resume, device=device, main=dist.main)
    model, optimizer = state.model, state.optimizer
    loss_fn = nn.CrossEntropyLoss(label_smoothing=tc.label_smoothing)
    result = FitResult(out_dir, history=state.history, best_epoch=state.best_epoch, best_val_acc=state.best_val_acc)
    bad_epochs, start_epoch = state.bad_epochs, state.start_epoch

    train_ds, val_ds, features, workers = prepare_inputs(
        config, model, train_ds, val_ds, device=device, dist=dist, show_progress=show_progress
    )
    result.val_inputs, result.val_features = val_ds, features
    run_info = {**(info or {}), **person_gate(train_ds, val_ds, classes, warn=dist.main)}

    def loader(ds: Dataset, *, shuffle: bool) -> DataLoader:
        return make_loader(
            ds, tc.batch_size, shuffle=shuffle, num_workers=workers, device=device, seed=tc.seed, dist=dist
        )

    train_loader = loader(train_ds, shuffle=True)
    val_loader = loader(val_ds, shuffle=False) if val_ds is not None else None
    net = DistributedDataParallel(model) if dist.active else model
    spec = InputSpec.from_config(config)

    base_lrs = [tc.lr * tc.backbone_lr_scale, tc.lr]  # make_optimizer's groups: backbone, then the rest
    for epoch in range(start_epoch, tc.epochs + 1):
        t0 = time.perf_counter()
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * lr_factor(tc.lr_schedule, epoch, tc.epochs)
        train = train_one_epoch(
            net,
            train_loader,
            optimizer,
            loss_fn,
            device=device,
            precision=tc.precision,
            desc=f"epoch {epoch}/{tc.epochs}",
            show_progress=show_progress,
            on_step=on_step,
            stop=stop,
            features=features,
            dist=dist,
            epoch=epoch,
        )
        if stop is not None and stop.is_set():
            result.stopped = "user"  # the unfinished epoch is dropped: last.pt stays at the last whole epoch
            log(f"stopped by user during epoch {epoch}; kept {result.best_path.name} from epoch {result.best_epoch}")
            break
        val = (
            validate(model, val_loader, device=device, precision=tc.precision, features=features, dist=dist)
            if val_loader
            else {"loss": None, "acc": None}
        )
        row = {
            "epoch": epoch,
            "train_loss": train["loss"],
            "train_acc": train["acc"],
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "seconds": time.perf_counter() - t0,
        }
        result.history.append(row)
        score = val["acc"] if val["acc"] is not None else train["acc"]
        improved = score > result.best_val_acc
        if improved:
            result.best_val_acc, result.best_epoch, bad_epochs = score, epoch, 0
        else:
            bad_epochs += 1

        ck = Checkpoint(
            model=config.model,
            classes=tuple(classes),
            input=spec,
            state_dict=model.state_dict(),
            epoch=epoch,
            metrics={k: v for k, v in row.items() if k != "epoch"},
            history=result.history,
            train_state={
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "best_epoch": result.best_epoch,
                "best_val_acc": result.best_val_acc,
                "bad_epochs": bad_epochs,
            },
            config=config.to_dict(),
            info=run_info,
        )
        if dist.main:
            # last.pt first: it is the record --resume trusts, and a kill between the two writes is
            # repaired on resume from it (best.pt can then only lag, never run ahead of last.pt).
            save_checkpoint(result.last_path, ck)
            if improved:
                save_checkpoint(result.best_path, ck)
            (out_dir / "history.json").write_text(json.dumps(result.history, indent=1))
            save_curves_png(result.history, out_dir / "curves.png")

        val_text = f"val loss {val['loss']:.4f} acc {val['acc']:.4f}" if val_loader else "no validation"
        log(
            f"epoch {epoch}/{tc.epochs}: train loss {train['loss']:.4f} acc {train['acc']:.4f} | {val_text} | "
            f"{row['seconds']:.1f}s" + (" *best*" if improved else "")
        )
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(train["loss"]):
            result.stopped = "diverged"
            log("training loss is not finite: stopping; lower --lr")
            break
        if tc.patience and bad_epochs >= tc.patience:
            result.stopped = "early_stopping"
            log(
                f"early stopping: no better validation accuracy for {tc.patience} epochs "
                f"(best epoch {result.best_epoch})"
            )
            break
    barrier(dist)  # rank 0's files are complete before any rank goes on
    return result


def _epoch_of(path: Path) -> int | None:
    """The epoch a checkpoint on disk holds, or None where there is none that loads."""
    try:
        return load_checkpoint(path).epoch
    except CheckpointError:
        return None


def _resume_from(path: Path, config: Config, classes: Sequence[str]) -> Checkpoint:
    if not path.is_file():
        raise CheckpointError(f"--resume: no {path.name} in {path.parent} to resume from")
    ck = load_checkpoint(path)
    if ck.train_state is None:
        raise CheckpointError(f"--resume: {path} holds no optimizer state (a shipped or exported checkpoint)")
    if tuple(ck.classes) != tuple(classes):
        raise CheckpointError(f"--resume: {path} was trained on classes {list(ck.classes)}, not {list(classes)}")
    if ck.model != config.model:
        raise CheckpointError(f"--resume: {path} has model {ck.model}, but the config asks for {config.model}")
    wanted = InputSpec.from_config(config)
    if ck.input != wanted:
        changed = [
            f"{f}: {getattr(ck.input, f)!r} -> {getattr(wanted, f)!r}"
            for f in ("num_frames", "img_size", "frame_input", "diff_gap", "features", "mean", "std")
            if getattr(ck.input, f) != getattr(wanted, f)
        ]
        raise CheckpointError(
            f"--resume: {path} was trained on other inputs ({'; '.join(changed)}); resume with the "
            "run's own settings, or start a new --out-dir"
        )
    return ck
