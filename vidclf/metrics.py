"""Classification metrics from logits (pure: tensors in, numbers out): loss, top-1/top-5, per-class and mean
per-class accuracy, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> dict:
    """Metrics of ``logits [N, K]`` against ``labels [N]``.

    ``confusion[i][j]`` counts clips of true class ``i`` predicted as ``j``. ``mean_class_acc`` averages
    over the classes that have clips, so a class absent from the data does not count as 0.
    """
    n, k = logits.shape
    if n == 0:
        raise ValueError("no clips to evaluate")
    logits = logits.float()
    loss = F.cross_entropy(logits, labels).item()
    pred = logits.argmax(1)
    topk = logits.topk(min(5, k), dim=1).indices
    top5 = (topk == labels[:, None]).any(1).float().mean().item()
    confusion = torch.zeros(k, k, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    per_class = {}
    for i, name in enumerate(classes):
        total = int(confusion[i].sum())
        per_class[name] = {"acc": (int(confusion[i, i]) / total) if total else None, "n": total}
    accs = [v["acc"] for v in per_class.values() if v["acc"] is not None]
    return {
        "loss": loss,
        "top1": (pred == labels).float().mean().item(),
        "top5": top5,
        "mean_class_acc": sum(accs) / len(accs),
        "num_clips": n,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "classes": list(classes),
    }
