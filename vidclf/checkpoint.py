"""Write and read checkpoints. A checkpoint carries everything inference needs, so no flags are needed.

A checkpoint is a ``torch.save``-d dict of tensors and plain Python values only (no pickled classes), read
back with ``weights_only=True``: loading a file never runs code from it. Writes go to a temporary file in
the same folder and are renamed over the target, so a process killed mid-write leaves the previous file
intact.

Keys: ``format``, ``format_version``, ``model`` (a :class:`ModelConfig` as a dict), ``classes``, ``input``
(``num_frames``, ``img_size``, ``mean``, ``std``, ``frame_input``, ``diff_gap``, ``diff_fps``, ``features``),
``state_dict``,
and optionally ``epoch``, ``metrics``, ``history``, ``train_state``, ``config`` (the full training config) and
``info`` (free text).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidclf.config import FRAME_INPUTS, Config, ModelConfig, coerce, gap_frames, pair_gap
from vidclf.data.transforms import ClipTransform
from vidclf.errors import CheckpointError, ConfigError
from vidclf.models.cnn_lstm import CNNLSTM, build_model
from vidclf.models.registry import get_backbone

FORMAT = "vidclf-checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputSpec:
    """How a clip must be prepared for the model: sampled frames, frame size, normalisation."""

    num_frames: int
    img_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    frame_input: str = "rgb"  # "rgb", or "diff": differences of frame pairs diff_gap apart
    diff_gap: int = 2
    # diff_gap counts frames at this rate (a file without it: 25, UCF-101's rate its models were trained at)
    diff_fps: float = 25.0
    features: str = "pixels"  # "pixels": frames through a CNN; "landmarks": BlazePose landmarks (the pose stream)

    @property
    def pair_gap(self) -> int:
        """Frames between the two frames of a pair, or 0 when the model takes plain frames."""
        return pair_gap(self.frame_input, self.diff_gap)

    def pair_gap_at(self, fps: float) -> int:
        """Frames between the two frames of a pair in a clip of ``fps`` frames a second: the same time apart
        as in training (:func:`vidclf.config.gap_frames`), or 0 for plain frames."""
        return gap_frames(self.pair_gap, self.diff_fps, fps)

    @classmethod
    def from_config(cls, config: Config) -> InputSpec:
        """The input a model trained with ``config`` reads: the one place a spec is made from a config."""
        spec = get_backbone(config.model.backbone)
        d = config.data
        return cls(
            num_frames=d.num_frames,
            img_size=d.img_size,
            mean=spec.mean,
            std=spec.std,
            frame_input=d.frame_input if spec.input == "pixels" else "rgb",
            diff_gap=d.diff_gap,
            diff_fps=d.diff_fps,
            features=spec.input,
        )

    def transform(self) -> ClipTransform:
        """The deterministic transform of evaluation and prediction for this input."""
        return ClipTransform(mean=self.mean, std=self.std, diff=self.pair_gap > 0)


@dataclass(frozen=True)
class Checkpoint:
    """One CNN-LSTM (``model``, ``input``, ``state_dict``), or a late fusion of several (``streams``): each
    stream a whole checkpoint of the same classes with its weight; the fused log-probability of a class is
    the weighted sum of the streams' log-probabilities (a fusion has ``model=None`` and no weights of its own).

    ``other_output``: the model has one more output after the classes, trained on clips of other actions:
    "not one of these" (never one of ``classes``, never shown as a class).

    ``reject_threshold``: a clip whose known-class score is below it is "not one of these classes" (set on
    out-of-fold or validation clips so that 95 % of clips of known classes are still answered); None: always
    answer. The score (:func:`vidclf.verdict.known_score`) is one minus the probability of the "other" output
    where a stream has one, else the evidence (log-sum-exp) of the fused logits.
    """

    model: ModelConfig | None
    classes: tuple[str, ...]
    input: InputSpec | None
    state_dict: dict[str, torch.Tensor]
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_state: dict[str, Any] | None = None  # optimizer, RNG, early-stopping counters: what --resume needs
    config: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    streams: tuple[tuple[Checkpoint, float], ...] = ()
    reject_threshold: float | None = None
    other_output: bool = False

    @property
    def is_fusion(self) -> bool:
        return bool(self.streams)

    @property
    def person_gate(self) -> tuple[str, ...]:
        """The classes the person gate applies to (:meth:`vidclf.predict.Predictor.verdict`): a clip on which a
        pose stream finds no person is refused when its top class is one of these. Every class, unless training
        found most clips of a class without a person (``info["person_gate"]`` of the pose stream, written by
        training: BlazePose finds no rider on a horse, no surfer on a wave)."""
        for ck in (self, *(s for s, _ in self.streams)):
            gate = ck.info.get("person_gate")
            if gate is not None:
                return tuple(str(c) for c in gate)
        return self.classes

    @property
    def has_other(self) -> bool:
        """Whether this model, or a stream of it, has an "other" output."""
        return self.other_output or any(ck.other_output for ck, _ in self.streams)

    @property
    def backbone(self) -> str:
        """``"custom"``, ``"pose"``, ...; a fusion names its streams: ``"fusion(pose+efficientnet_lite0)"``."""
        if self.is_fusion:
            names = list(dict.fromkeys(ck.backbone for ck, _ in self.streams))  # an ensemble's seeds: one name
            if len(names) == 1:
                return f"{names[0]} (ensemble of {len(self.streams)})"
            return "fusion(" + "+".join(names) + ")"
        assert self.model is not None
        return self.model.backbone

    def build_model(self) -> CNNLSTM:
        """The model with this checkpoint's weights, in eval mode, fp32."""
        if self.model is None:
            raise CheckpointError(f"a {self.backbone} checkpoint has one model per stream: build each stream's")
        model = build_model(self.model, len(self.classes) + int(self.other_output), load_pretrained=False)
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(
                f"checkpoint weights do not fit a {self.model.backbone} CNN-LSTM: {str(e)[:300]}"
            ) from None
        return model.eval()


def _process_umask() -> int:
    """The process's umask, read without changing it (Linux reports it in /proc; elsewhere it is read once
    here, at import, before any request thread exists: setting it, even for an instant, would make files that
    other threads create meanwhile world-writable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


def fusion_checkpoint(
    streams: list[tuple[Checkpoint, float]],
    *,
    reject_threshold: float | None = None,
    metrics: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> Checkpoint:
    """A late fusion of trained checkpoints of the same classes, each with its weight."""
    if len(streams) < 2:
        raise CheckpointError("a fusion needs at least two streams")
    classes = streams[0][0].classes
    for ck, weight in streams:
        if ck.classes != classes:
            raise CheckpointError(f"fusion streams must share their classes: {list(ck.classes)} vs {list(classes)}")
        if ck.is_fusion or weight < 0:
            raise CheckpointError("a fusion stream must be a single model with a weight >= 0")
    return Checkpoint(
        model=None,
        classes=classes,
        input=None,
        state_dict={},
        streams=tuple(streams),
        reject_threshold=reject_threshold,
        metrics=dict(metrics or {}),
        info=dict(info or {}),
    )


def _payload(ckpt: Checkpoint, half: bool) -> dict[str, Any]:
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in ckpt.state_dict.items()
    }
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "fusion" if ckpt.is_fusion else "cnn_lstm",
        "model": dataclasses.asdict(ckpt.model) if ckpt.model is not None else None,
        "classes": list(ckpt.classes),
        "input": (
            {**dataclasses.asdict(ckpt.input), "mean": list(ckpt.input.mean), "std": list(ckpt.input.std)}
            if ckpt.input is not None
            else None
        ),
        "state_dict": state,
        "epoch": ckpt.epoch,
        "metrics": ckpt.metrics,
        "history": ckpt.history,
        "train_state": None if half else ckpt.train_state,
        "config": ckpt.config,
        "info": ckpt.info,
        "streams": [{"weight": float(w), "checkpoint": _payload(ck, half)} for ck, w in ckpt.streams],
        "reject_threshold": ckpt.reject_threshold,
        "other_output": ckpt.other_output,
    }


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint, half: bool = False) -> Path:
    """Write ``ckpt`` atomically. ``half=True`` stores float weights as fp16 and drops the optimizer (shipping)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = _payload(ckpt, half)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; a checkpoint is shared like any output
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        if found:
            raise CheckpointError(
                f"{path.name} refused: it would import {found.group(1)}, and checkpoints are loaded weights-only "
                "(tensors and plain values); re-save it with vidclf"
            ) from None
        raise CheckpointError(f"{path.name} is not a readable checkpoint (corrupt or not a torch file)") from None
    except Exception as e:  # zip errors, truncation, EOF: all mean "not a readable checkpoint"
        raise CheckpointError(
            f"{path.name} is not a readable checkpoint ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(
            f"{path.name} is not a vidclf checkpoint (a bare state_dict or another tool's file?); "
            "train one with `train_cli.py train`"
        )
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name} has checkpoint format version {version}; this vidclf reads version {FORMAT_VERSION}"
        )
    return _from_payload(raw, path.name)


def _from_payload(raw: dict[str, Any], name: str) -> Checkpoint:
    try:
        threshold = raw.get("reject_threshold")
        threshold = float(threshold) if threshold is not None else None
        if raw.get("kind") == "fusion":
            streams = tuple((_from_payload(s["checkpoint"], name), float(s["weight"])) for s in raw["streams"])
            return fusion_checkpoint(
                list(streams), reject_threshold=threshold, metrics=raw.get("metrics") or {}, info=raw.get("info") or {}
            )
        model_raw = dict(raw["model"])
        known = {f.name for f in dataclasses.fields(ModelConfig)}
        model = ModelConfig(**{k: coerce("model", k, v) for k, v in model_raw.items() if k in known})
        inp = raw["input"]
        spec = InputSpec(  # a "sampling" key of older files is ignored: inference samples uniformly
            num_frames=int(inp["num_frames"]),
            img_size=int(inp["img_size"]),
            mean=tuple(inp["mean"]),
            std=tuple(inp["std"]),
            frame_input=inp.get("frame_input", "rgb"),
            diff_gap=int(inp.get("diff_gap", 2)),
            diff_fps=float(inp.get("diff_fps", 25.0)),
            features=inp.get("features", "pixels"),
        )
        if spec.frame_input not in FRAME_INPUTS:
            raise ValueError(f"frame_input {spec.frame_input!r} (this vidclf knows {FRAME_INPUTS})")
        classes = tuple(str(c) for c in raw["classes"])
        state = raw["state_dict"]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{name} is missing or has a malformed field: {e}") from None
    except ConfigError as e:
        raise CheckpointError(f"{name} was written by another vidclf: {e}") from None
    return Checkpoint(
        model=model,
        classes=classes,
        input=spec,
        state_dict=state,
        epoch=int(raw.get("epoch") or 0),
        metrics=raw.get("metrics") or {},
        history=raw.get("history") or [],
        train_state=raw.get("train_state"),
        config=raw.get("config"),
        info=raw.get("info") or {},
        reject_threshold=threshold,
        other_output=bool(raw.get("other_output", False)),
    )
