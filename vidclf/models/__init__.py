"""Models: the backbone registry, per-frame backbones, the pose stream's features, the CNN-LSTM."""
