"""Ship a trained checkpoint: fp16 weights without optimizer state, and a Markdown model card beside it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from vidclf.checkpoint import load_checkpoint, save_checkpoint


def model_card(ckpt_path: str | Path, notes: list[str] | None = None, run_history: list[dict] | None = None) -> str:
    """Markdown describing the checkpoint: classes, data, config, validation accuracy, epochs, time.

    ``run_history`` is the whole run's history (from its ``last.pt``); a ``best.pt`` only knows the epochs
    up to itself.
    """
    ck = load_checkpoint(ckpt_path)
    history = run_history or ck.history
    seconds = sum(h.get("seconds", 0.0) for h in history)
    val = ck.metrics.get("val_acc")
    cfg = ck.config or {}
    synthetic = all(c.startswith("Synth") for c in ck.classes)
    lines = [
        f"# {Path(ckpt_path).stem}: {ck.model.backbone} CNN-LSTM" + (" (SYNTHETIC data)" if synthetic else ""),
        "",
        f"- **Classes ({len(ck.classes)})**: {', '.join(ck.classes)}",
        f"- **Data**: {ck.info.get('data', 'n/a')}; validation groups held out: {', '.join(ck.info.get('val_groups', [])) or 'none'}",
        f"- **Validation accuracy** (best epoch {ck.epoch}): {val:.3f}" if val is not None else "- **Validation accuracy**: n/a",
        f"- **Train accuracy at that epoch**: {ck.metrics.get('train_acc', float('nan')):.3f}",
        f"- **Epochs run**: {len(history)}; wall time {seconds / 60:.1f} min "
        f"({seconds / max(len(history), 1):.0f} s/epoch)",
        f"- **Input**: {ck.input.num_frames} frames sampled uniformly, {ck.input.img_size}x{ck.input.img_size}, "
        f"normalised with mean {[round(m, 3) for m in ck.input.mean]} and std {[round(s, 3) for s in ck.input.std]} "
        "on [0, 1] pixels" + (f"; each model frame is the frame {ck.input.diff_gap} later minus the sampled one (motion: frame differences)"
                              if ck.input.pair_gap else ""),
        f"- **Model**: {ck.model}",
        f"- **Training config**: `{cfg.get('train', {})}`",
        f"- **Machine**: {platform.machine()} CPU, {torch.get_num_threads()} threads visible, torch {torch.__version__}",
    ]
    for note in notes or []:
        lines.append(f"- {note}")
    lines += ["", f"## The run, epoch by epoch (the shipped weights are epoch {ck.epoch})", "", "| epoch | train loss | train acc | val loss | val acc | s |",
              "| --- | --- | --- | --- | --- | --- |"]
    for h in history:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {h['epoch']} | {fmt(h.get('train_loss'))} | {fmt(h.get('train_acc'))} | {fmt(h.get('val_loss'))} "
                     f"| {fmt(h.get('val_acc'))} | {h.get('seconds', 0):.0f} |")
    return "\n".join(lines) + "\n"


def export_model(src: str | Path, dst: str | Path, notes: list[str] | None = None) -> tuple[Path, Path]:
    """Write ``dst`` (fp16, no optimizer) and ``dst`` with ``.md`` (the card)."""
    dst = Path(dst)
    save_checkpoint(dst, load_checkpoint(src), half=True)
    last = Path(src).parent / "last.pt"
    run_history = load_checkpoint(last).history if last.is_file() else None
    card = dst.with_suffix(".md")
    card.write_text(model_card(dst, notes, run_history))
    return dst, card
