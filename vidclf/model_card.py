"""Ship a trained checkpoint: fp16 weights without optimizer state, and a Markdown model card beside it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from vidclf.checkpoint import Checkpoint, InputSpec, load_checkpoint, save_checkpoint


def _input_line(spec: InputSpec) -> str:
    if spec.features == "landmarks":
        return (
            f"- **Input**: {spec.num_frames} frames sampled uniformly; on each, MediaPipe BlazePose (frozen, the full "
            "model bundled with mediapipe 0.10.14) finds 33 body landmarks, which are hip-centred and divided by the "
            "clip's torso length (plus joint angles, the hips' path, visibility and a person-found flag)"
        )
    return (
        f"- **Input**: {spec.num_frames} frames sampled uniformly, {spec.img_size}x{spec.img_size}, "
        "normalised with mean "
        f"{[round(m, 3) for m in spec.mean]} and std {[round(s, 3) for s in spec.std]} on [0, 1] pixels"
        + (
            f"; each model frame is the frame {1000 * spec.diff_gap / spec.diff_fps:.0f} ms later ({spec.diff_gap} "
            f"frames at {spec.diff_fps:g} fps) minus the sampled one (motion: frame differences)"
            if spec.pair_gap
            else ""
        )
    )


def _shared_lines(ck: Checkpoint) -> list[str]:
    lines = []
    cv = ck.metrics.get("cv_acc")
    if cv is not None:
        how = ck.info.get(
            "cv_description",
            "group folds of the training groups, each clip predicted by a model that never trained on its group",
        )
        std = ck.metrics.get("cv_std")
        lines.append(f"- **Cross-validated accuracy** ({how}): {cv:.3f}" + (f" ± {std:.3f}" if std is not None else ""))
    real = ck.metrics.get("real_cv_acc")
    if real is not None:
        std = ck.metrics.get("real_cv_std")
        lines.append(
            "- **Real-world clips, cross-validated by source repository** (phones, webcams, studios; never UCF-101): "
            f"{real:.3f}" + (f" ± {std:.3f}" if std is not None else "")
        )
    if ck.reject_threshold is not None and ck.has_other:
        refused = ck.metrics.get("other_refused")
        lines.append(
            f'- **"Not one of these"** where the pose stream\'s "other" output (trained on clips of other actions) '
            f"has a probability above {1 - ck.reject_threshold:.3f}, or no person is found "
            f"({ck.info.get('reject_calibration', 'set on validation clips')})"
            + (
                f"; out of fold it refused {refused:.0%} of the other-action clips (AUROC "
                f"{ck.metrics.get('auroc_other', float('nan')):.3f})"
                if refused is not None
                else ""
            )
        )
    elif ck.reject_threshold is not None:
        lines.append(
            f'- **"Not one of these"** below an evidence (log-sum-exp of the logits) of {ck.reject_threshold:.3f} '
            f"({ck.info.get('reject_calibration', 'set on validation clips')})"
        )
    lines += _movement_lines(ck)
    return lines


def _movement_lines(ck: Checkpoint) -> list[str]:
    """The movement check (vidclf.novelty), where the checkpoint has one, and what it was measured to do."""
    profile = ck.info.get("movement_profile")
    if not profile or profile.get("threshold") is None:
        return []
    novelty = (
        f"the Mahalanobis distance, per dimension, of the clip's {len(profile['signature'])}-number movement "
        "signature to the class's Gaussian, fit on every known-class clip at hand, UCF-101's and real-world"
    )
    if profile.get("odds"):
        line = (
            '- **Movement check**: also "not one of these" when the clip looks like another action: log-odds of '
            f"another action above {profile['threshold']:.3f} (a logistic regression on the movement's novelty, "
            f"{novelty}, and on the classifier's evidence, top probability, margin and entropy, learned from the "
            "known-class clips against clips of other actions; a clip with a person in fewer than 4 frames is left "
            "to the other rules)"
        )
    else:
        line = (
            "- **Movement check**: also \"not one of these\" when the body's movement is far from the answer's "
            f"class: a novelty above {profile['threshold']:.3f} ({novelty}; a clip with a person in fewer than 4 "
            "frames is left to the other rules)"
        )
    m = ck.info.get("movement_calibration") or {}
    rule, alone, before = m.get("rule"), m.get("evidence_alone"), m.get("before")
    if rule and alone and rule.get("other_refused") is not None:
        clips = m.get("clips", {})
        where = (
            "on out-of-fold scores (each clip scored by odds and profiles fit without its fold: "
            if profile.get("odds")
            else "on clips it never trained on ("
        )
        line += (
            f"; {where}{clips.get('ucf')} UCF-101 out of fold, {clips.get('real')} real-world "
            f"and {clips.get('other')} of other actions) the rule refuses {rule['other_refused']:.0%} of the other "
            f"actions against {alone['other_refused']:.0%} for the evidence alone answering as many known clips"
            + (f" and {before['other_refused']:.0%} for the threshold before" if before else "")
            + f"; known clips refused: UCF-101 {rule['ucf_refused']:.1%}, real-world {rule['real_refused']:.1%}"
        )
        if m.get("nested_rule_mean") is not None:
            line += (
                f"; thresholds set fold by fold on the other folds: {m['nested_rule_mean']:.2f} ± "
                f"{m['nested_rule_std']:.2f} of each fold's other actions refused"
                + (
                    f" ({m['nested_rule']['other_refused']:.0%} of all of them)"
                    if (m.get("nested_rule") or {}).get("other_refused") is not None
                    else ""
                )
                + f", against {m['nested_evidence_alone_mean']:.2f} ± {m['nested_evidence_alone_std']:.2f} for the "
                "evidence alone (docs/accuracy.md)"
            )
    return [line]


def _how_measured(ck: Checkpoint, history: list[dict]) -> str:
    """How far the validation figure of ``ck`` (epoch ``ck.epoch`` of a run with ``history``) can be trusted."""
    train = (ck.config or {}).get("train", {})
    run, planned, patience = len(history), train.get("epochs"), train.get("patience")
    if ck.epoch < run:
        return (
            f"epoch {ck.epoch}, picked as the best of {run} epochs on these same validation clips: optimistic; "
            "the run's last.pt is measured without that choice"
        )
    if ck.epoch == planned:
        return f"epoch {ck.epoch}, the last of a fixed {planned}-epoch schedule: not picked on these clips"
    if patience:
        return (
            f"epoch {ck.epoch}, the last: early stopping ended the run {patience} epochs after its best one, a stop "
            "decided on these same clips"
        )
    return f"epoch {ck.epoch}, the last one run (stopped before the planned {planned})"


def model_card(ckpt_path: str | Path, notes: list[str] | None = None, run_history: list[dict] | None = None) -> str:
    """Markdown describing the checkpoint: classes, data, config, validation accuracy, epochs, time.

    ``run_history`` is the whole run's history (from its ``last.pt``); a ``best.pt`` only knows the epochs
    up to itself.
    """
    ck = load_checkpoint(ckpt_path)
    synthetic = all(c.startswith("Synth") for c in ck.classes)
    ensemble = ck.is_fusion and "ensemble" in ck.backbone
    kind = (
        ""
        if ensemble
        else " late fusion"
        if ck.is_fusion
        else (" LSTM on body landmarks" if ck.backbone == "pose" else " CNN-LSTM")
    )
    title = f"# {Path(ckpt_path).stem}: {ck.backbone}{kind}"
    lines = [
        title + (" (SYNTHETIC data)" if synthetic else ""),
        "",
        f"- **Classes ({len(ck.classes)})**: {', '.join(ck.classes)}",
    ]
    if ck.is_fusion:
        weights = ", ".join(f"{stream.backbone} × {w:.3g}" for stream, w in ck.streams)
        how = (
            "the models of one recipe trained with different seeds, their logits averaged"
            if ensemble
            else "the fused logits are the weighted sum of the streams' logits (weights chosen on out-of-fold "
            "predictions of "
            "the training groups, never on test clips)"
        )
        data = ck.info.get("data")
        lines += [f"- **Streams**: {weights}: {how}", *([f"- **Data**: {data}"] if data else []), *_shared_lines(ck)]
        per_stream = ck.metrics.get("streams_cv_acc") or {}
        if per_stream:
            lines.append(
                "- **Each stream alone, same clips**: " + ", ".join(f"{k} {v:.3f}" for k, v in per_stream.items())
            )
        members = ck.metrics.get("members_cv_acc")
        if members:
            lines.append("- **Each seed alone, same clips**: " + ", ".join(f"{v:.3f}" for v in members))
        inputs = {stream.backbone: stream.input for stream, _ in ck.streams}
        for name, spec in inputs.items():
            assert spec is not None
            lines.append(_input_line(spec).replace("- **Input**", f"- **{name} input**"))
        first = ck.streams[0][0]
        lines.append(f"- **Training config** ({first.backbone}): `{(first.config or {}).get('train', {})}`")
        lines += [f"- {note}" for note in notes or []]
        return "\n".join(lines) + "\n"
    assert ck.input is not None
    history = run_history or ck.history
    seconds = sum(h.get("seconds", 0.0) for h in history)
    val = ck.metrics.get("val_acc")
    cfg = ck.config or {}
    lines += [
        f"- **Data**: {ck.info.get('data', 'n/a')}; validation groups held out: "
        f"{', '.join(ck.info.get('val_groups', [])) or 'none'}",
        f"- **Validation accuracy** ({_how_measured(ck, history)}): {val:.3f}"
        if val is not None
        else "- **Validation accuracy**: n/a (trained on every group)",
        *_shared_lines(ck),
        *(
            [f"- **Train accuracy at that epoch**: {ck.metrics['train_acc']:.3f}"]
            if ck.metrics.get("train_acc") is not None
            else []
        ),
        f"- **Epochs run**: {len(history)}; wall time {seconds / 60:.1f} min "
        f"({seconds / max(len(history), 1):.0f} s/epoch)"
        if history
        else f"- **Epochs run**: {ck.epoch}",
        _input_line(ck.input),
        f"- **Model**: {ck.model}",
        f"- **Training config**: `{cfg.get('train', {})}`",
        f"- **Machine**: {platform.machine()} CPU, {torch.get_num_threads()} threads visible, "
        f"torch {torch.__version__}",
    ]
    for note in notes or []:
        lines.append(f"- {note}")
    lines += []
    if not history:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"## The run, epoch by epoch (the shipped weights are epoch {ck.epoch})",
        "",
        "| epoch | train loss | train acc | val loss | val acc | s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for h in history:
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(
            f"| {h['epoch']} | {fmt(h.get('train_loss'))} | {fmt(h.get('train_acc'))} | {fmt(h.get('val_loss'))} "
            f"| {fmt(h.get('val_acc'))} | {h.get('seconds', 0):.0f} |"
        )
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
