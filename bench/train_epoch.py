"""Training benchmark: seconds per epoch on the real clips, three ways, per backbone.

(a) naive: decode every clip and run the whole CNN-LSTM forward and backward, every epoch;
(b) frame cache: decoded frames read from the cache (warm), whole model trained;
(c) frozen backbone + feature cache (warm): only the LSTM and head are trained.

Each way is timed on ``--clips`` training clips (one pass = one "epoch" of that many clips) and scaled to
the 401 training clips of ``../shared/ucf101`` split 1 (validation groups held out).

    python -m bench.train_epoch [--clips 24] [--backbones custom resnet18 efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from torch import nn

from bench.common import UCF_ROOT
from vidclf.config import apply_overrides, load_config
from vidclf.data.dataset import VideoClipDataset, training_data
from vidclf.models.cnn_lstm import build_model
from vidclf.training.features import feature_dataset
from vidclf.runtime import make_loader, resolve_device
from vidclf.training.loop import make_optimizer, train_one_epoch

FULL_EPOCH_CLIPS = 401


def epoch_seconds(model, dataset, cfg, *, features=False) -> float:
    device = resolve_device("cpu")
    loader = make_loader(dataset, cfg.train.batch_size, shuffle=True, num_workers=0, device=device, seed=0)
    opt = make_optimizer(model, cfg.train)
    t0 = time.perf_counter()
    train_one_epoch(
        model,
        loader,
        opt,
        nn.CrossEntropyLoss(),
        device=device,
        precision=cfg.train.precision,
        show_progress=False,
        features=features,
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--backbones", nargs="+", default=["custom", "resnet18", "efficientnet_lite0"])
    ap.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    args = ap.parse_args()
    scale = FULL_EPOCH_CLIPS / args.clips
    print(
        f"seconds per training epoch of {FULL_EPOCH_CLIPS} clips (measured on {args.clips}, scaled), "
        f"20 frames, 128 px, batch 4, {args.precision}, {torch.get_num_threads()} threads"
    )
    for backbone in args.backbones:
        with tempfile.TemporaryDirectory() as cache_dir:
            cfg = apply_overrides(
                load_config(),
                {
                    "data_root": str(UCF_ROOT),
                    "backbone": backbone,
                    "use_pretrained": False,
                    "cache_dir": cache_dir,
                    "augment": False,
                    "precision": args.precision,
                },
            )
            data = training_data(cfg)
            records = data.train.records[:: max(1, len(data.train) // args.clips)][: args.clips]
            tf = data.val.transform
            clips = dict(num_frames=20, img_size=128, transform=tf, pair_gap=data.val.pair_gap)
            naive_ds = VideoClipDataset(records, **clips)
            cached_ds = VideoClipDataset(records, **clips, cache=data.train.cache)
            torch.manual_seed(0)
            model = build_model(cfg.model, len(data.classes))
            if args.precision == "bf16":
                model.use_channels_last()
            a = epoch_seconds(model, naive_ds, cfg) * scale
            epoch_seconds(model, cached_ds, cfg)  # fills the frame cache
            b = epoch_seconds(model, cached_ds, cfg) * scale
            model.backbone.requires_grad_(requires_grad=False)
            features = dict(
                cache_dir=cache_dir, device=torch.device("cpu"), precision=args.precision, show_progress=False
            )
            feature_dataset(model, cached_ds, **features)  # fills the feature cache
            feats = feature_dataset(model, cached_ds, **features)
            c = epoch_seconds(model, feats, cfg, features=True) * scale
            print(
                f"  {backbone:<18} (a) naive {a:8.1f} s   (b) frame cache {b:8.1f} s   (c) frozen + features {c:6.2f} s"
                f"   (a)/(b) {a / b:5.2f}x   (a)/(c) {a / c:7.1f}x"
            )


if __name__ == "__main__":
    main()
