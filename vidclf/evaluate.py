"""Classification metrics from logits: loss, top-1/top-5, per-class and mean per-class accuracy, confusion."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from vidclf.checkpoint import load_checkpoint
from vidclf.data.dataset import VideoClipDataset, cache_for
from vidclf.data.index import build_index, split_by_group
from vidclf.errors import DatasetError
from vidclf.training.loop import collect_logits, make_loader


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


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    split: int = 1,
    subset: str = "test",
    batch_size: int = 4,
    precision: str = "fp32",
    cache_dir: str | None = None,
    num_workers: int = 0,
) -> dict:
    """Metrics of a checkpoint on ``subset`` of ``data_root``, restricted to the checkpoint's own classes.

    ``subset``: "test" (the split's test list), "train" (its train list) or "val" (the validation groups the
    checkpoint's training config held out). Clips of other classes and listed-but-missing clips are skipped
    and counted in ``skipped_other_classes`` / ``missing``.
    """
    ck = load_checkpoint(checkpoint)
    index = build_index(data_root, "test" if subset == "test" else "train", split, ck.classes, 0)
    if subset == "val":
        data_cfg = (ck.config or {}).get("data", {})
        val_fraction, seed = data_cfg.get("val_fraction", 0.2), data_cfg.get("split_seed", 0)
        index = split_by_group(index, val_fraction, seed).val
        if not index.records:
            raise DatasetError("the checkpoint's config held out no validation groups (val_fraction 0)")
    spec = ck.input
    ds = VideoClipDataset(index.records, spec.num_frames, spec.img_size, spec.transform(), "uniform", cache_for(cache_dir),
                          spec.pair_gap)
    device = torch.device("cpu")
    model = ck.build_model()
    if precision == "bf16":
        model.use_channels_last()
    loader = make_loader(ds, batch_size, False, num_workers, device, 0)
    logits, labels = collect_logits(model, loader, device, precision)
    metrics = classification_metrics(logits, labels, ck.classes)
    metrics.update(
        checkpoint=str(checkpoint),
        data=index.source,
        split=split,
        subset=subset,
        skipped_other_classes=index.other_classes,
        missing=index.missing,
        epoch=ck.epoch,
    )
    return metrics
