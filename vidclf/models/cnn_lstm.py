"""The CNN-LSTM classifier: a per-frame CNN, an LSTM over time, a linear layer on its last hidden state."""

from __future__ import annotations

import torch
from torch import nn

from vidclf.config import ModelConfig
from vidclf.models.backbones import build_backbone


class CNNLSTM(nn.Module):
    """``[B, T, C, H, W]`` clips -> ``[B, K]`` class logits.

    ``forward_features`` runs the CNN on every frame (``[B, T, D]``); ``forward_head`` runs the LSTM and the
    classifier on those features. The split lets a frozen backbone's features be computed once and cached.
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        *,
        hidden_size: int = 128,
        num_layers: int = 2,
        head: str = "lstm",
    ):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        # head="mean" drops the LSTM: the baseline that measures what frame order is worth.
        self.lstm = (
            nn.LSTM(feature_dim, hidden_size, num_layers=num_layers, batch_first=True) if head == "lstm" else None
        )
        self.fc = nn.Linear(hidden_size if head == "lstm" else feature_dim, num_classes)
        self.channels_last = False

    def use_channels_last(self) -> CNNLSTM:
        """Store the CNN's weights and inputs NHWC: on CPUs with oneDNN and on GPUs, convolutions run faster."""
        self.backbone.to(memory_format=torch.channels_last)
        self.channels_last = True
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W] -> [B, T, D]``."""
        if x.ndim != 5:
            raise ValueError(f"expected clips [B, T, C, H, W], got shape {tuple(x.shape)}")
        b, t = x.shape[:2]
        frames = x.flatten(0, 1)
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        return self.backbone(frames).reshape(b, t, -1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, K]``: the LSTM's last hidden state of the top layer (or, with ``head="mean"``, the
        features averaged over time), through ``fc``.

        Runs in fp32 even under autocast: it is a sliver of the compute and the recurrence accumulates error.
        """
        summary = self.summarize(features)
        with torch.autocast(features.device.type, enabled=False):
            return self.fc(summary)

    def summarize(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, T, D] -> [B, H]``: what the classifier reads (the LSTM's last hidden state of the top layer,
        or the features averaged over time). Also what "not one of these" measures distances in."""
        with torch.autocast(features.device.type, enabled=False):
            if self.lstm is None:
                return features.float().mean(1)
            _, (h_n, _) = self.lstm(features.float())
            return h_n[-1]

    def forward(self, x: torch.Tensor, features: bool = False) -> torch.Tensor:
        """Clips ``[B, T, C, H, W]``, or with ``features=True`` precomputed features ``[B, T, D]`` -> ``[B, K]``.

        One entry point for both, so that a DistributedDataParallel wrapper sees every training step.
        """
        return self.forward_head(x if features else self.forward_features(x))


def build_model(config: ModelConfig, num_classes: int, load_pretrained: bool = True) -> CNNLSTM:
    """A fresh :class:`CNNLSTM` for ``config``. ``load_pretrained=False`` skips ImageNet weights, as when a
    checkpoint's own weights are about to be loaded."""
    backbone, dim = build_backbone(
        config.backbone,
        use_pretrained=config.use_pretrained and load_pretrained,
        weights_path=config.backbone_weights if load_pretrained else None,
        dropout=config.dropout,
    )
    return CNNLSTM(
        backbone, dim, num_classes, hidden_size=config.hidden_size, num_layers=config.num_layers, head=config.head
    )
