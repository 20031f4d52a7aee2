"""Models: per-frame CNN backbones and the CNN-LSTM that runs over their features."""

from vidclf.models.cnn_lstm import CNNLSTM, build_model

__all__ = ["CNNLSTM", "build_model"]
