"""Datasets: index clips on disk, turn them into tensors, and generate the synthetic set."""
