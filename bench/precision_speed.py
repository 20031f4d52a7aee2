"""Training speed in bf16 autocast against fp32 on this machine's CPU, interleaved in one run.

``precision: "auto"`` (params.json) trains in bf16 only where the hardware has bf16 units; this prints what
``auto`` chose here and what each choice costs, so the rule can be checked on any machine:

    python -m bench.precision_speed [--repeats 3] [--size 64] [--frames 8]

Each timing is one epoch of the custom CNN-LSTM over a small SYNTHETIC set (forward, backward, Adam step),
after a warm-up epoch; bf16 and fp32 alternate so that a change in the machine's load hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from vidclf.config import apply_overrides, load_config
from vidclf.data.dataset import training_data
from vidclf.data.synthetic import make_synthetic_dataset
from vidclf.models.cnn_lstm import build_model
from vidclf.runtime import make_loader, resolve_precision
from vidclf.training.loop import train_one_epoch


def epoch_seconds(cfg, data, precision: str) -> float:
    torch.manual_seed(0)
    model = build_model(cfg.model, len(data.classes))
    if precision == "bf16":
        model.use_channels_last()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cpu = torch.device("cpu")
    loader = make_loader(data.train, cfg.train.batch_size, shuffle=True, num_workers=0, device=cpu, seed=0)
    how = dict(device=cpu, precision=precision, desc="", show_progress=False)
    train_one_epoch(model, loader, optimizer, nn.CrossEntropyLoss(), **how)  # warm-up (and the frame cache)
    t0 = time.perf_counter()
    train_one_epoch(model, loader, optimizer, nn.CrossEntropyLoss(), **how)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="frame size in px")
    ap.add_argument("--frames", type=int, default=8, help="frames per clip")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic_dataset(Path(tmp) / "synth", groups=4, clips_per_group=2, size=(96, 96), seed=0)
        cfg = apply_overrides(
            load_config(),
            {
                "data_root": str(root),
                "num_classes": 0,
                "num_frames": args.frames,
                "img_size": args.size,
                "augment": False,
                "cache_dir": str(Path(tmp) / "cache"),
            },
        )
        data = training_data(cfg)
        auto = resolve_precision("auto", torch.device("cpu"))
        print(
            f"{len(data.train)} SYNTHETIC training clips, {args.frames} frames at {args.size} px, batch "
            f"{cfg.train.batch_size}, {torch.get_num_threads()} threads; bf16 units on this CPU: "
            f'{"yes" if auto == "bf16" else "no"} ("auto" trains in {auto})'
        )
        times: dict[str, list[float]] = {"bf16": [], "fp32": []}
        for _ in range(args.repeats):
            for precision in times:
                times[precision].append(epoch_seconds(cfg, data, precision))
        bf16, fp32 = (statistics.median(times[p]) for p in ("bf16", "fp32"))
        for precision, seconds in times.items():
            print(f"  {precision}: {' '.join(f'{s:.2f}' for s in seconds)} s an epoch")
        print(f"bf16 / fp32 (medians): {bf16 / fp32:.2f}x the time")


if __name__ == "__main__":
    main()
