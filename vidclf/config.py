"""Frozen dataclass configs, loaded from ``params.json`` and overridden by CLI flags.

``params.json`` has three sections, ``data``, ``model`` and ``train``, whose keys are exactly the fields
below. Unknown keys, wrong types and impossible values raise :class:`ConfigError` naming the key and the fix.
Field names are unique across sections, so a CLI flag ``--lr`` or an override ``{"lr": 1e-3}`` finds its
section without being told.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidclf.errors import ConfigError
from vidclf.models.registry import BACKBONES

DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params.json"
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
# The recipes `choose` weighs, each a preset: the body's landmarks, and frozen ImageNet features of frame
# differences (the motion stream, which sees pixels: the scene and the objects too).
CHOOSER_RECIPES = {"pose": "pose.json", "motion": "efficientnet_lite0.json"}
# What `openset` trains on other-action clips: nothing, an "other" output, outlier exposure, or both.
OPEN_SET_RECIPES = ("none", "class", "oe", "both")

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "bf16", "fp32")
TRAIN_SAMPLINGS = ("uniform", "segment")
FRAME_INPUTS = ("rgb", "diff")
HEADS = ("lstm", "mean")


def pair_gap(frame_input: str, diff_gap: int) -> int:
    """Frames between the two frames of a pair for this input: ``diff_gap`` for the motion input
    (``"diff"``), 0 for plain frames. The one rule behind ``DataConfig.pair_gap`` and ``InputSpec.pair_gap``."""
    return diff_gap if frame_input == "diff" else 0


def gap_frames(gap: int, gap_fps: float, clip_fps: float) -> int:
    """Frames between the two frames of a pair in a clip of ``clip_fps`` frames a second, for a pair ``gap``
    frames apart at ``gap_fps``: the same time (2 frames at 25 fps, 80 ms: 5 frames at 60 fps), at least one
    frame; 0 (plain frames) stays 0. The one rule of training, evaluation and prediction.

    >>> gap_frames(2, 25.0, 25.0), gap_frames(2, 25.0, 30.0), gap_frames(2, 25.0, 60.0), gap_frames(2, 25.0, 10.0)
    (2, 2, 5, 1)
    """
    return max(1, round(gap * clip_fps / gap_fps)) if gap else 0


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where clips come from and how each becomes a ``[T, C, H, W]`` tensor."""

    data_root: str | None = None  # UCF-101 root (UCF-101/ + ucfTrainTestlist/) or a folder-per-class tree
    split: int = 1  # UCF-101 official split 1-3
    classes: tuple[str, ...] | None = None  # explicit class subset; None: the first num_classes found
    num_classes: int = 10  # with classes=None: how many classes to take, in classInd order (0 = all)
    num_frames: int = 20  # frames sampled per clip (T)
    img_size: int = 128  # frames are resized to img_size x img_size
    val_fraction: float = 0.2  # share of training *groups* held out for validation
    train_sampling: str = "uniform"  # "uniform" (same frames every epoch, cacheable) or "segment" (TSN jitter)
    # "diff" (default): each input is the frame diff_gap later minus the sampled frame (motion, TSN's RGB
    # difference), the input that won on real clips (docs/accuracy.md); "rgb": plain frames
    frame_input: str = "diff"
    diff_gap: int = 2  # with frame_input="diff": frames between the two frames of a difference, at diff_fps
    # the frame rate diff_gap is counted at: a clip of another rate takes its pair the same time apart (2 at
    # 25 fps: 80 ms, UCF-101's frame pairs; 5 frames at 60 fps), see gap_frames
    diff_fps: float = 25.0
    # where decoded frames, frozen-backbone features and pose landmarks are cached, so that the second epoch and
    # the second run decode nothing ("none" disables it); the motion preset's 224 px frames of 500 clips take
    # about 3 GB there
    cache_dir: str | None = ".cache/vidclf"
    num_workers: int = 0  # DataLoader worker processes
    split_seed: int = 0  # fixes which groups are held out for validation
    # clips of actions that are none of the classes (a folder of videos, any layout): training's "not one of
    # these" threshold is then set to refuse them too, not only to answer the validation groups' clips
    other_root: str | None = None

    def __post_init__(self) -> None:
        _check(self.split in (1, 2, 3), f"split must be 1, 2 or 3, got {self.split}")
        _check(self.num_classes >= 0, f"num_classes must be >= 0 (0 = all), got {self.num_classes}")
        _check(self.num_frames >= 1, f"num_frames must be >= 1, got {self.num_frames}")
        _check(self.img_size >= 32, f"img_size must be >= 32 pixels, got {self.img_size}")
        _check(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction}")
        _check(self.train_sampling in TRAIN_SAMPLINGS, f"train_sampling must be one of {TRAIN_SAMPLINGS}")
        _check(self.frame_input in FRAME_INPUTS, f"frame_input must be one of {FRAME_INPUTS}, got {self.frame_input!r}")
        _check(self.diff_gap >= 1, f"diff_gap must be >= 1 frame, got {self.diff_gap}")
        _check(self.diff_fps > 0, f"diff_fps must be > 0 frames a second, got {self.diff_fps}")
        _check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")

    @property
    def pair_gap(self) -> int:
        """Frames between the two frames of a pair, or 0 for plain frames."""
        return pair_gap(self.frame_input, self.diff_gap)


@dataclass(frozen=True)
class ModelConfig:
    """The CNN-LSTM's shape. ``num_classes`` is not here: it is the length of the class list."""

    backbone: str = "custom"  # a name of vidclf.models.registry.BACKBONES: custom, resnet18, efficientnet_lite0, pose
    hidden_size: int = 128  # LSTM hidden size
    num_layers: int = 2  # LSTM layers
    use_pretrained: bool = True  # ImageNet weights (resnet18: torchvision download or backbone_weights; lite0: package)
    backbone_weights: str | None = None  # local file with ImageNet weights for the backbone (offline use)
    dropout: float = 0.5  # the custom CNN's Dropout before pooling
    # "lstm": the LSTM's last hidden state; "mean": frame features averaged (an order-blind baseline)
    head: str = "lstm"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            close = difflib.get_close_matches(self.backbone, list(BACKBONES), n=1)
            raise ConfigError(
                f"backbone must be one of {tuple(BACKBONES)}, got {self.backbone!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
            )
        _check(self.hidden_size >= 1, f"hidden_size must be >= 1, got {self.hidden_size}")
        _check(self.num_layers >= 1, f"num_layers must be >= 1, got {self.num_layers}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _check(self.head in HEADS, f"head must be one of {HEADS}, got {self.head!r}")


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe."""

    optimizer: str = "adam"  # "adam" or "adamw" (decoupled weight decay)
    lr: float = 1e-4  # the learning rate (the backbone's is lr * backbone_lr_scale)
    weight_decay: float = 0.0  # L2 penalty (Adam) or decoupled weight decay (AdamW)
    lr_schedule: str = "constant"  # "constant", or "cosine": decay to 0 over the epochs (steadier last epochs)
    label_smoothing: float = 0.0  # CrossEntropy label smoothing
    batch_size: int = 4  # clips per training step
    epochs: int = 50  # passes over the training clips (fewer with early stopping)
    patience: int = 0  # early stopping: epochs without a better validation accuracy (0 = off)
    augment: bool = True  # clip-consistent random crop/scale and flip on training clips
    pose_yaw: float = 0.0  # pose stream: with p 0.5, turn the skeleton up to this many degrees (a view change; 0 = off)
    pose_squeeze: float = 0.0  # pose stream: with p 0.5, compress x about the hips by up to this share (0 = off)
    pose_in_place: float = 0.0  # pose stream: probability of removing the hips' horizontal travel (0 = off)
    freeze_backbone: bool = False  # train only LSTM + head on cached per-frame features
    feature_views: int = 1  # frozen backbone: cached views per training clip (1 = eval view only; more = augmented)
    init_from: str | None = None  # start from this checkpoint's weights (e.g. a frozen-backbone run, to fine-tune)
    backbone_lr_scale: float = 1.0  # the backbone's learning rate is lr * this (0.1: fine-tune gently)
    # "auto": bf16 autocast where the hardware runs it natively (a GPU, a CPU with bf16 units), else fp32;
    # emulated bf16 on a CPU without those units trains several times slower than fp32
    precision: str = "auto"
    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    out_dir: str = "runs/latest"  # where best.pt, last.pt, history.json, curves.png and the reports are written
    seed: int = 0  # seeds the initial weights, the shuffling and the augmentation

    def __post_init__(self) -> None:
        _check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.patience >= 0, f"patience must be >= 0, got {self.patience}")
        _check(0 <= self.pose_yaw <= 90, f"pose_yaw is an angle in degrees, 0-90, got {self.pose_yaw}")
        _check(0 <= self.pose_squeeze < 1, f"pose_squeeze must be in [0, 1), got {self.pose_squeeze}")
        _check(0 <= self.pose_in_place <= 1, f"pose_in_place is a probability, got {self.pose_in_place}")
        _check(self.feature_views >= 1, f"feature_views must be >= 1, got {self.feature_views}")
        _check(
            self.feature_views == 1 or self.freeze_backbone,
            f"feature_views={self.feature_views} augments cached features of a frozen backbone: add --freeze-backbone "
            "(a trainable backbone is augmented on the fly by --augment)",
        )
        _check(self.backbone_lr_scale >= 0, f"backbone_lr_scale must be >= 0, got {self.backbone_lr_scale}")
        _check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: _section_to_dict(getattr(self, name)) for name in SECTIONS}


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _section_to_dict(section: Any) -> dict[str, Any]:
    out = dataclasses.asdict(section)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def field_types(cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass (the annotations are strings under PEP 563)."""
    return typing.get_type_hints(cls)


def field_docs(cls: type) -> dict[str, str]:
    """Each field's description, from the comment beside it or the comment lines just above it in the source
    (what ``--help`` shows for its flag)."""
    names = {f.name for f in dataclasses.fields(cls)}
    docs: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("#").strip())
            continue
        name = text.split(":", 1)[0]
        if name in names and ":" in text:
            beside = text.partition("  # ")[2].strip()
            docs[name] = beside or " ".join(above)
        above = []
    return docs


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed) for hints like ``int``, ``str | None``."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        non_none = [a for a in args if a is not type(None)]
        return non_none[0], len(non_none) < len(args)
    return hint, False


def coerce(section: str, key: str, value: Any) -> Any:
    """Check ``value`` against the field's type; convert lossless cases (int for float, list for tuple)."""
    hint, optional = _base_type(field_types(SECTIONS[section])[key])
    where = f"{section}.{key}"
    if value is None:
        _check(optional, f"{where} cannot be null")
        return None
    origin = typing.get_origin(hint)
    if origin is tuple:
        _check(
            isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
            f"{where} must be a list of strings, got {value!r}",
        )
        return tuple(value)
    if hint is float:
        _check(
            isinstance(value, (int, float)) and not isinstance(value, bool), f"{where} must be a number, got {value!r}"
        )
        return float(value)
    if hint is int:
        _check(isinstance(value, int) and not isinstance(value, bool), f"{where} must be an integer, got {value!r}")
        return value
    if hint is bool:
        _check(isinstance(value, bool), f"{where} must be true or false, got {value!r}")
        return value
    if hint is str:
        _check(isinstance(value, str), f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {hint} for {where}")  # a bug in this module, not user input


def section_of(key: str) -> str:
    """The section that owns ``key`` (field names are unique across sections)."""
    for name, cls in SECTIONS.items():
        if key in {f.name for f in dataclasses.fields(cls)}:
            return name
    known = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    hint = difflib.get_close_matches(key, known, n=1)
    raise ConfigError(
        f"unknown config key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else f"; known keys: {known}")
    )


def _build_section(section: str, values: dict[str, Any]) -> Any:
    cls = SECTIONS[section]
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            raise ConfigError(
                f"unknown key {section}.{key}"
                + (f"; did you mean {section}.{hint[0]}?" if hint else f"; known: {sorted(known)}")
            )
    return cls(**{k: coerce(section, k, v) for k, v in values.items()})


def config_from_dict(raw: Any, source: str = "config") -> Config:
    """A :class:`Config` from a ``{"data": {...}, "model": {...}, "train": {...}}`` mapping (sections optional)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a JSON object with sections {list(SECTIONS)}")
    for name, values in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"unknown section {name!r} in {source}; sections are {list(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"section {name!r} in {source} must be a JSON object")
    return Config(**{name: _build_section(name, raw.get(name, {})) for name in SECTIONS})


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``params.json`` (the project's by default) and apply ``overrides`` (``{"lr": 1e-3, ...}``)."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    config = config_from_dict(raw, source=str(path))
    return apply_overrides(config, overrides or {})


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A new config with ``{key: value}`` applied; keys are field names, optionally ``section.key``."""
    by_section: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        owner = section_of(name)  # raises for unknown keys with a suggestion
        section = section or owner
        if section not in SECTIONS:
            raise ConfigError(f"unknown section {section!r} in override {key!r}; sections are {list(SECTIONS)}")
        if section != owner:
            raise ConfigError(f"{name!r} is a {owner} setting, not a {section} one: use {owner}.{name} or just {name}")
        by_section[section][name] = coerce(section, name, value)
    return Config(**{name: dataclasses.replace(getattr(config, name), **by_section[name]) for name in SECTIONS})
