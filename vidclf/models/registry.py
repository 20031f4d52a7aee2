"""Every backbone and its facts, in one table: the way timm keeps a model's ``default_cfg`` beside it.

A :class:`BackboneSpec` says what a backbone is built from (an entry point, imported only when the model
is built, so this table is cheap to read from the config and the app), what each frame becomes
(``feature_dim``), what it reads (``input``: ``"pixels"`` are normalised with ``mean``/``std``;
``"landmarks"`` are the pose stream's normalised BlazePose landmarks) and how to describe it to a person.
The config's choices, the app's choices and the error messages all come from here: a new backbone is one
entry.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from collections.abc import Callable

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    entry_point: str  # "module:function" returning (module [N, ...] -> [N, D], D)
    feature_dim: int
    input: str = "pixels"  # "pixels" (frames [T, 3, H, W]) or "landmarks" (pose features [T, D])
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    pretrained: str = ""  # where ImageNet weights come from, for help texts; "" when there are none
    sees: str = ""  # what the model looks at, in plain words, for the app

    @property
    def builder(self) -> Callable:
        module, _, function = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), function)


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("custom", "vidclf.models.backbones:custom_cnn", 512, sees="the moving pixels (a small CNN)"),
        BackboneSpec(
            "resnet18",
            "vidclf.models.backbones:resnet18",
            512,
            pretrained="torchvision download or --backbone-weights",
            sees="the moving pixels (ResNet-18)",
        ),
        BackboneSpec(
            "efficientnet_lite0",
            "vidclf.models.backbones:efficientnet_lite0",
            1280,
            mean=(127 / 255,) * 3,
            std=(128 / 255,) * 3,
            pretrained="offline, from a PyPI package",
            sees="the moving pixels (EfficientNet-Lite0, ImageNet features)",
        ),
        BackboneSpec(
            "pose",
            "vidclf.models.backbones:pose_features",
            146,
            input="landmarks",
            sees="the body's pose (33 BlazePose landmarks per frame)",
        ),
    )
}


def get_backbone(name: str) -> BackboneSpec:
    """The spec of backbone ``name``; an unknown name raises ``ValueError`` naming the closest known one."""
    try:
        return BACKBONES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(BACKBONES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown backbone {name!r}{hint} (known: {', '.join(BACKBONES)})") from None
