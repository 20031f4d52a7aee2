#!/usr/bin/env python
"""vidclf command line: train, cv, evaluate, predict, synth, export, push.

    python train_cli.py train --data-root ../shared/ucf101 --backbone custom --out-dir runs/custom
    python train_cli.py evaluate --checkpoint runs/custom/best.pt --data-root ../shared/ucf101 --split 1 --json
    python train_cli.py predict --checkpoint weights/custom.pt clip.avi
    python train_cli.py synth --out data/synthetic

Every key of params.json is also a flag (``--lr 3e-4``, ``--num-frames 16``, ``--no-augment``); flags
override the file. Only argument parsing and printing live here: the work is in ``vidclf``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from vidclf.config import (
    CHOOSER_RECIPES,
    OPEN_SET_RECIPES,
    PRECISIONS,
    SECTIONS,
    Config,
    DataConfig,
    _base_type,
    field_docs,
    field_types,
    load_config,
)
from vidclf.errors import VidclfError


def _none_or(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; only flags given on the command line override params.json."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="params file, e.g. presets/pose.json (default: the project's params.json)",
    )
    parser.add_argument(
        "--classes-file",
        default=None,
        metavar="FILE",
        help="a text file naming the classes to train on, one per line (instead of --classes)",
    )
    try:
        defaults = load_config().to_dict()  # what a run without --config starts from
    except VidclfError:
        defaults = {}
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} settings (params.json '{section}')")
        hints = field_types(cls)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            hint, optional = _base_type(hints[f.name])
            flag = "--" + f.name.replace("_", "-")
            default = defaults.get(section, {}).get(f.name, f.default)
            shown = "none" if default is None else default
            kw: dict[str, Any] = {
                "dest": f"cfg__{f.name}",
                "default": argparse.SUPPRESS,
                # argparse formats help with %: a literal one is doubled
                "help": f"{docs.get(f.name, '')} (params.json: {shown})".replace("%", "%%"),
            }
            if hint is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            elif getattr(hint, "__origin__", None) is tuple:
                group.add_argument(flag, nargs="+", metavar="NAME", **kw)
            else:
                metavar = {int: "N", float: "X", str: "TEXT"}.get(hint, "VALUE")
                if f.name.endswith(("_root", "_dir", "_from", "_weights")):
                    metavar = "PATH"
                group.add_argument(flag, type=_none_or(hint) if optional else hint, metavar=metavar, **kw)


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = {k.removeprefix("cfg__"): v for k, v in vars(args).items() if k.startswith("cfg__")}
    if getattr(args, "classes_file", None):
        from vidclf.data.index import read_class_list

        if "classes" in overrides:
            raise VidclfError("give the classes either with --classes or with --classes-file, not both")
        overrides["classes"] = list(read_class_list(args.classes_file))
    return load_config(args.config, overrides)


def cmd_train(args: argparse.Namespace) -> int:
    from vidclf.data.dataset import training_data
    from vidclf.training import distributed
    from vidclf.training.loop import fit
    from vidclf.training.report import report_run

    config = config_from_args(args)
    dist = distributed.init(config.train.device)  # a no-op unless launched by torchrun
    say = print if dist.main else (lambda *a: None)
    if config.data.other_root:  # refused now, not after the training it would follow
        from vidclf.training.threshold import other_records

        others = other_records(config.data.other_root)
        say(f"clips of other actions, for the 'not one of these' threshold: {len(others)}")
    data = training_data(config, show_progress=not args.no_progress)
    say(data.describe())
    say(
        f"model: {config.model.backbone} CNN-LSTM, {len(data.classes)} classes; writing to {config.train.out_dir}"
        + (f"; {dist.world} processes" if dist.active else "")
    )
    interrupted, result = False, None
    previous = signal.signal(
        signal.SIGTERM, _interrupt
    )  # a SIGTERM ends the run like Ctrl-C: the report is still written
    try:
        result = fit(
            config,
            data.train,
            data.val,
            data.classes,
            resume=args.resume,
            show_progress=not args.no_progress,
            info={"data": data.index.source, "val_groups": list(data.split.val_groups)},
            dist=dist,
        )
        say(f"done ({result.stopped}); best epoch {result.best_epoch}")
        if dist.main:
            from vidclf.training.threshold import set_run_threshold, threshold_words

            calibrated = set_run_threshold(config, result, data.val)
            if calibrated is not None:
                say(threshold_words(calibrated))
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: the checkpoints of the finished epochs are kept; writing their report")
    finally:
        signal.signal(signal.SIGTERM, previous)
        distributed.shutdown(dist)
    if dist.main:
        # Loss and accuracy of both the best and the last weights on the validation clips, read as the epochs
        # read them (an interrupted run's report decodes the clips again)
        val, features = data.val, None
        if result is not None and result.val_inputs is not None:
            val, features = result.val_inputs, result.val_features
        if len(data.split.val.records):
            say(
                f"measuring best.pt and last.pt on the {len(data.split.val.records)} validation clips "
                "(validation.json, confusion images)"
            )
        for name, m in report_run(
            config.train.out_dir,
            val,
            data.classes,
            batch_size=config.train.batch_size,
            device=config.train.device,
            precision=config.train.precision,
            features=features,
        ).items():
            print(
                f"{name}.pt (epoch {m['epoch']}): validation loss {m['loss']:.4f}  top-1 {m['top1']:.4f}  "
                f"top-5 {m['top5']:.4f}  mean class acc {m['mean_class_acc']:.4f}"
            )
    return 130 if interrupted else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def cmd_choose(args: argparse.Namespace) -> int:
    from vidclf.config import apply_overrides
    from vidclf.config import PRESETS_DIR
    from vidclf.training.choose import FULL, QUICK, choose_and_train

    setting = QUICK if args.quick else FULL
    recipes = {}
    for name in args.recipes:
        args.config = str(PRESETS_DIR / CHOOSER_RECIPES[name])
        given = {k.removeprefix("cfg__") for k, v in vars(args).items() if k.startswith("cfg__") and v is not None}
        cuts = {k: v for k, v in setting.cuts.items() if k not in given}  # a flag given beats the setting's cut
        recipes[name] = apply_overrides(config_from_args(args), cuts)  # the flags override every recipe
    folds = args.folds or setting.folds
    out = args.out or "runs/choose"
    r = choose_and_train(recipes, folds, out, show_progress=not args.no_progress)
    print(r["table"])
    print(f"chosen: {r['winner']}: {r['why']}")
    print(f"trained on every clip, with its 'not one of these' threshold: {r['checkpoint']}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from vidclf.training.crossval import cross_validate

    cross_validate(config_from_args(args), args.folds, show_progress=not args.no_progress)
    return 0


def _clips_of(args: argparse.Namespace) -> dict:
    """Where the clips of an ``evaluate`` or ``calibrate`` come from."""
    return {"data_root": args.data_root, "split": args.split, "cache_dir": args.cache_dir}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from vidclf.evaluate import evaluate_checkpoint
    from vidclf.charts_png import save_confusion_png

    results = {}
    stems = [Path(c).stem for c in args.checkpoint]
    # Landmarks are cached where training and calibration keep theirs unless --cache-dir says otherwise: every
    # checkpoint of this run, and every later run, reads the same clips' landmarks estimated once.
    landmark_cache = args.cache_dir or DataConfig().cache_dir
    for ckpt, stem in zip(args.checkpoint, stems):
        m = evaluate_checkpoint(
            ckpt,
            **_clips_of(args),
            landmark_cache_dir=landmark_cache,
            subset=args.subset,
            batch_size=args.batch_size,
            precision=args.precision,
            show_progress=not (args.json or args.no_progress),
        )
        results[ckpt] = m
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            if stems.count(stem) > 1:  # runs/a/best.pt and runs/b/best.pt must not overwrite each other
                stem = f"{Path(ckpt).parent.name}_{stem}"
            (out / f"eval_{stem}.json").write_text(json.dumps(m, indent=1))
            save_confusion_png(m["confusion"], m["classes"], out / f"confusion_{stem}.png")
        if not args.json:
            print(
                f"{ckpt} (epoch {m['epoch']}) on {m['data']}: {m['num_clips']} clips, loss {m['loss']:.4f}, "
                f"top-1 {m['top1']:.4f}, top-5 {m['top5']:.4f}, mean class acc {m['mean_class_acc']:.4f}"
            )
            for name, pc in m["per_class"].items():
                acc = "  n/a" if pc["acc"] is None else f"{pc['acc']:.3f}"
                print(f"  {name:<24} {acc}  ({pc['n']} clips)")
            rej = m["rejection"]
            if rej["threshold"] is not None or rej.get("no_person"):
                rules = [f"below an evidence of {rej['threshold']:.2f}"] if rej["threshold"] is not None else []
                if rej.get("no_person"):
                    rules.append(
                        f"no person found on {rej['no_person']} clips, {rej['refused_no_person']} of them refused by "
                        "the person gate"
                    )
                print(
                    f"  'not one of these' ({'; '.join(rules)}): {rej['answered']:.1%} of these clips answered, "
                    f"accuracy {rej['answered_acc'] or 0:.4f} on those"
                )
            if m["skipped_other_classes"] or m["missing"]:
                print(
                    f"  skipped: {m['skipped_other_classes']} clips of other classes, "
                    f"{m['missing']} listed but missing on disk"
                )
    if args.json:
        print(json.dumps(next(iter(results.values())) if len(results) == 1 else results))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from vidclf.predict import Predictor

    predictor = Predictor(args.checkpoint, precision=args.precision)
    if not args.json:  # a JSON answer names each clip; its stderr holds only the clips that failed
        print(
            f"{args.checkpoint} ({predictor.checkpoint.backbone}, {len(predictor.classes)} classes): "
            f"{len(args.videos)} clip{'s' if len(args.videos) != 1 else ''} given on the command line"
        )
    failures, outputs, rows, header = 0, [], [], ""
    for video in args.videos:
        try:
            p = predictor.predict(video)
        except VidclfError as e:
            failures += 1
            print(f"error: {video}: {e}", file=sys.stderr)
            outputs.append({"video": video, "error": str(e)})
            continue
        outputs.append({"video": video, **p.to_dict(args.top)})
        if not args.json:
            top = ", ".join(f"{c} {q:.3f}" for c, q in p.top(args.top))
            answer = (
                p.label
                if p.known
                else f"not one of the {len(predictor.classes)} actions this model knows (closest: {p.label})"
            )
            print(f"{video}: {answer}  ({top})")
            if p.workout is not None and len(p.workout.segments) > 1:
                for seg in p.workout.segments:
                    reps = f", {seg.reps} reps" if seg.known else ""
                    print(f"  {seg.start_s:7.1f}-{seg.end_s:7.1f} s  {seg.label}{reps}")
        if p.workout is not None:
            lines = p.workout.to_csv().splitlines()
            header = "video," + lines[0]
            rows += [f"{_csv_field(video)},{line}" for line in lines[1:]]
    if args.csv:
        Path(args.csv).write_text("\n".join([header, *rows]) + "\n" if rows else "")
    if args.json:
        print(json.dumps(outputs[0] if len(outputs) == 1 else outputs))
    return 1 if failures else 0


def _csv_field(text: str) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([text])
    return out.getvalue()


def cmd_calibrate(args: argparse.Namespace) -> int:
    from vidclf.calibration import calibrate, calibrate_on_shipped

    if args.run:
        runs = [r.rsplit("@", 1) if r.endswith(("@last", "@best")) else [r, "last"] for r in args.run]
        r = calibrate_on_shipped(
            args.checkpoint,
            [d for d, _ in runs],
            epoch=[e for _, e in runs],
            answered=args.answered,
            cache_dir=args.cache_dir or DataConfig().cache_dir,
            oof_out=args.oof_out,
        )
        maps = ", ".join(f"{a:.2f}x{b:+.2f}" for a, b in r["maps"])
        print(
            f"{args.checkpoint}: 'not one of these' below an evidence of {r['threshold']:.3f} (was "
            f"{r['before']}; set on {r['source']}; maps per fold {maps})"
        )
        return 0
    r = calibrate(args.checkpoint, oof=args.oof, answered=args.answered, **_clips_of(args))
    cv = f"; cross-validated accuracy {r['cv_acc']:.3f} +- {r['cv_std']:.3f}" if r["cv_acc"] is not None else ""
    print(f"{args.checkpoint}: 'not one of these' below an evidence of {r['threshold']:.3f} (set on {r['source']}){cv}")
    return 0


def cmd_calibrate_movement(args: argparse.Namespace) -> int:
    from vidclf.calibration import calibrate_movement

    r = calibrate_movement(
        args.checkpoint,
        ucf_root=args.ucf_root,
        real_root=args.real_root,
        oof=args.oof,
        answered=args.answered,
        evidence_answered=args.evidence_answered,
        shrink=args.shrink,
        odds=args.odds,
        l2=args.l2,
        cache_dir=args.cache_dir or DataConfig().cache_dir,
        out=args.out,
    )
    rule, alone = r["rule"], r["evidence_alone"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.1%}"

    print(
        f"{args.checkpoint}: evidence threshold {r['threshold_before']} -> {r['evidence_threshold']:.3f}, movement "
        f"threshold {r['movement_threshold']:.3f} (on the {r['check']}); known clips answered "
        f"{pct(rule['known_answered'])} (refused: "
        f"UCF-101 {pct(rule['ucf_refused'])}, real {pct(rule['real_refused'])}); real answered and right "
        f"{rule['real_answered_right']:.3f}; other actions refused {pct(rule['other_refused'])} (evidence alone at "
        f"the same share: {pct(alone['other_refused'])}; nested by fold {r['nested_rule_mean']:.2f} +- "
        f"{r['nested_rule_std']:.2f} against {r['nested_evidence_alone_mean']:.2f} +- "
        f"{r['nested_evidence_alone_std']:.2f}; nested, pooled: {pct(r['nested_rule']['other_refused'])} refused, "
        f"known refused UCF-101 {pct(r['nested_rule']['ucf_refused'])}, real {pct(r['nested_rule']['real_refused'])}); "
        f"clips' scores in {r['out']}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from vidclf.calibration import build_fusion

    print(build_fusion(args.stream, args.oof, args.out, max_ratio=args.max_ratio, answered=args.answered)["summary"])
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from vidclf.calibration import build_ensemble

    r = build_ensemble(args.checkpoint, args.oof, args.out, oof_out=args.oof_out, answered=args.answered)
    print(r["summary"])
    return 0


def cmd_openset(args: argparse.Namespace) -> int:
    import numpy as np

    from vidclf.training.open_set import (
        cross_validate_open_set,
        load_open_set_data,
        mixed_folds,
        open_set_report,
        ship_open_set,
    )

    config = config_from_args(args)
    data = load_open_set_data(
        args.ucf_root, args.real_root, num_frames=config.data.num_frames, cache_dir=config.data.cache_dir
    )
    weights = {"real_weight": args.real_weight, "other_weight": args.other_weight}
    out = Path(config.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.member_out:  # train on every clip, one checkpoint per seed (``--ship`` averages them later)
        from vidclf.checkpoint import save_checkpoint
        from vidclf.training.open_set import train_member

        for seed in args.seeds:
            path = Path(args.member_out) / f"member_s{seed}.pt"
            save_checkpoint(path, train_member(data, config, recipe=args.recipe, seed=seed, **weights))
            print(f"wrote {path}")
        return 0
    if args.fold is not None:  # one fold of the cv, to be summed with the others' by --oof
        folds = mixed_folds(data.groups, data.kinds, args.folds)
        oof = cross_validate_open_set(
            data, config, recipe=args.recipe, folds=folds, seeds=args.seeds, only=[args.fold - 1], **weights
        )
        np.savez(out / f"fold{args.fold}.npz", paths=data.paths, folds=folds, seeds=np.array(args.seeds), **oof)
        print(f"wrote {out / f'fold{args.fold}.npz'}")
        return 0
    if args.oof:  # the out-of-fold logits of a cv run of this recipe (several files: their seeds, averaged)
        runs = [dict(np.load(f, allow_pickle=False)) for f in args.oof]
        if any(not np.array_equal(r["paths"], data.paths) for r in runs):
            raise VidclfError("the --oof files were made on other clips than these")
        # fold files of one seed set are summed (each holds its own fold's rows); seed sets are averaged
        by_seeds: dict[tuple, list[dict]] = {}
        for r in runs:
            by_seeds.setdefault(tuple(r["seeds"].tolist()), []).append(r)
        n = [len(s) for s in by_seeds]
        sums = [{key: sum(r[key] for r in rs) for key in ("logits", "logits_mirror")} for rs in by_seeds.values()]
        oof = {key: sum(w * r[key] for w, r in zip(n, sums)) / sum(n) for key in ("logits", "logits_mirror")}
        folds, seeds = runs[0]["folds"], [s for group in by_seeds for s in group]
    else:
        folds, seeds = mixed_folds(data.groups, data.kinds, args.folds), list(args.seeds)
        oof = cross_validate_open_set(data, config, recipe=args.recipe, folds=folds, seeds=seeds, **weights)
    np.savez(
        out / "oof.npz",
        paths=data.paths,
        labels=data.labels,
        kinds=data.kinds,
        groups=data.groups,
        folds=folds,
        classes=np.array(data.classes),
        seeds=np.array(seeds),
        recipe=np.array(args.recipe),
        **oof,
    )
    k = len(data.classes)
    report = {
        name: open_set_report(oof[name], data.labels, kinds=data.kinds, folds=folds, num_classes=k) for name in oof
    }
    report["recipe"] = {"recipe": args.recipe, "seeds": seeds, "folds": int(folds.max()) + 1, **weights}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if args.ship:
        from vidclf.checkpoint import load_checkpoint

        full = {"logits": oof["logits"], "labels": data.labels, "kinds": data.kinds, "folds": folds}
        members = [load_checkpoint(m) for m in args.members]
        ck = ship_open_set(data, members, oof=full, out=args.ship, answered=args.answered, notes=args.note)
        print(f"wrote {args.ship}: threshold {ck.reject_threshold:.4f} on 1 - P(other)")
        from vidclf.models.pose import found_mask

        beside = Path(args.ship).with_suffix(".oof.npz")  # what the threshold was set on, small, kept with the weights
        np.savez_compressed(
            beside,
            names=np.array([Path(p).parent.name + "/" + Path(p).name for p in data.paths]),
            labels=data.labels,
            kinds=data.kinds,
            folds=folds,
            found=np.array([found_mask(r).any() for r in data.raw]),
            logits=oof["logits"].astype(np.float32),
            classes=np.array(data.classes),
            seeds=np.array(seeds),
            recipe=np.array(args.recipe),
            epochs=np.array(config.train.epochs),
        )
        print(f"wrote {beside}")
    for name in oof:
        r = report[name]
        print(
            f"{args.recipe} ({name}): UCF-101 {r['ucf_acc_mean']:.3f} +- {r['ucf_acc_std']:.3f}, real-world "
            f"{r['real_acc_mean']:.3f} +- {r['real_acc_std']:.3f} (pooled {r['real_acc_pooled']:.3f}); other refused "
            f"{r['other_refused_95']:.0%} at 95 % answered, {r['other_refused_90']:.0%} at 90 %; AUROC {r['auroc']:.3f}"
        )
    return 0


def cmd_openset_novelty(args: argparse.Namespace) -> int:
    import numpy as np

    from vidclf.training.open_set import (
        combined_rule_report,
        known_score,
        load_open_set_data,
        oof_novelty,
        signatures_of,
    )

    if args.ucf_root is None and args.real_root is None:
        raise VidclfError("give the clips the --oof run was made on: --ucf-root and/or --real-root")
    if not Path(args.oof).is_file():
        raise VidclfError(f"--oof {args.oof}: no such file (the oof.npz an `openset` run writes in its --out-dir)")
    with np.load(args.oof, allow_pickle=False) as z:
        oof = {k: z[k] for k in z.files}
    missing = {"paths", "folds", args.logits} - set(oof)
    if missing:
        raise VidclfError(f"--oof {args.oof} lacks {sorted(missing)}: not the oof.npz of an `openset` run")
    data = load_open_set_data(args.ucf_root, args.real_root, num_frames=args.num_frames, cache_dir=args.cache_dir)
    if not np.array_equal(oof["paths"], data.paths):
        raise VidclfError(f"{args.oof} was made on other clips than these")
    k = len(data.classes)
    logits, folds = oof[args.logits], oof["folds"]
    evidence, predicted = known_score(logits, k), logits[:, :k].argmax(1)
    signatures = signatures_of(data.raw)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, scores = [], {}
    for shrink in args.shrink:
        novelty = oof_novelty(
            signatures, predicted, labels=data.labels, folds=folds, classes=data.classes, shrink=shrink
        )
        scores[f"novelty_shrink{shrink:g}"] = novelty
        for share in args.evidence_answered:
            r = combined_rule_report(
                evidence,
                novelty,
                predicted=predicted,
                labels=data.labels,
                kinds=data.kinds,
                folds=folds,
                num_classes=k,
                answered=args.answered,
                evidence_answered=share,
            )
            rows.append({"shrink": shrink, "evidence_answered": share, **r})
            c, e = r["combined"], r["evidence_alone"]
            print(
                f"shrink {shrink:g}, evidence answering {share:.0%}: other refused {c['other_refused']:.0%} "
                f"(folds {c['other_refused_fold_mean']:.2f} +- {c['other_refused_fold_std']:.2f}), real-world known "
                f"refused {c['real_refused']:.0%}, answered right {c['real_answered_right']:.3f} | evidence alone: "
                f"{e['other_refused']:.0%} ({e['other_refused_fold_mean']:.2f} +- {e['other_refused_fold_std']:.2f}), "
                f"{e['real_answered_right']:.3f} | AUROC novelty {r['novelty_auroc']:.3f}, "
                f"evidence {r['evidence_auroc']:.3f}"
            )
    (out / "novelty.json").write_text(json.dumps({"oof": str(args.oof), "logits": args.logits, "rows": rows}, indent=1))
    np.savez(
        out / "novelty_oof.npz",
        paths=data.paths,
        labels=data.labels,
        kinds=data.kinds,
        folds=folds,
        evidence=evidence,
        predicted=predicted,
        signatures=signatures,
        **scores,
    )
    print(f"wrote {out / 'novelty.json'} and {out / 'novelty_oof.npz'}")
    return 0


def cmd_openset_fuse(args: argparse.Namespace) -> int:
    import csv

    import numpy as np

    from vidclf.checkpoint import load_checkpoint
    from vidclf.data.index import VideoRecord, build_index
    from vidclf.evaluate import stream_logits
    from vidclf.training.open_set import fuse_open_set

    motion = load_checkpoint(args.motion)
    # the clips the motion stream never trained on: its own validation groups and the real-world positives
    index = build_index(args.ucf_root, "train", split=1, classes=motion.classes, num_classes=0)
    records = [r for r in index.records if r.group in set(motion.info.get("val_groups") or [])] if args.ucf else []
    root = Path(args.real_root)
    with open(root / "MANIFEST.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["path"].startswith("positive/") and row["label"] in motion.classes:
                records.append(VideoRecord(root / row["path"], motion.classes.index(row["label"]), row["source_repo"]))
    if args.motion_logits:  # computed before on these clips (paths, logits), e.g. by an earlier run
        with np.load(args.motion_logits, allow_pickle=False) as z:
            row = {p: i for i, p in enumerate(z["paths"].tolist())}
            missing = [str(r.path) for r in records if str(r.path) not in row]
            if missing:
                raise VidclfError(f"{args.motion_logits} lacks {len(missing)} of the clips, e.g. {missing[0]}")
            logits = z["logits"][[row[str(r.path)] for r in records]]
    else:
        logits = stream_logits(motion, records, precision="auto", cache_dir=args.cache_dir).numpy()
    with np.load(args.pose_oof, allow_pickle=False) as z:
        pose_oof = {k: z[k] for k in z.files}
    r = fuse_open_set(
        args.pose,
        args.motion,
        pose_oof=pose_oof,
        motion_logits={"paths": np.array([str(r.path) for r in records]), "logits": logits},
        out=args.out,
        max_ratio=args.max_ratio,
        weights=tuple(args.weights) if args.weights else None,
    )
    print(f"wrote {args.out}: {r}")
    return 0


def cmd_anchors(args: argparse.Namespace) -> int:
    from vidclf.checkpoint import load_checkpoint
    from vidclf.data.index import build_index
    from vidclf.training.teach import write_anchors

    classes = load_checkpoint(args.checkpoint).classes
    index = build_index(args.data_root, "train", split=args.split, classes=classes, num_classes=0)
    records = index.records
    if args.cached_only:
        from vidclf.training.teach import landmarks_cached

        records = landmarks_cached(args.checkpoint, records, args.cache_dir)
    path = write_anchors(args.checkpoint, records, cache_dir=args.cache_dir)
    print(f"wrote {path}: summaries of {len(records)} clips of {index.source}")
    return 0


def cmd_teach(args: argparse.Namespace) -> int:
    from vidclf.training.teach import teach

    r = teach(args.checkpoint, args.name, args.videos, args.out)
    print(
        f"wrote {r['out']}: {len(r['classes'])} classes ({', '.join(r['classes'])}); it answers "
        f"{r['answered']} of the {r['clips']} clips with {args.name!r}"
    )
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from vidclf.data.synthetic import make_synthetic_dataset, write_examples

    if args.examples:
        for path in write_examples(args.out, seed=args.seed):
            print(f"wrote SYNTHETIC example {path}")
        return 0
    out = make_synthetic_dataset(args.out, groups=args.groups, clips_per_group=args.clips_per_group, seed=args.seed)
    print(f"wrote the SYNTHETIC dataset to {out} (UCF-101 layout); train on it with --data-root {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from vidclf.model_card import export_model

    ckpt_path, card_path = export_model(args.checkpoint, args.out, args.note)
    print(f"wrote {ckpt_path} and {card_path}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from vidclf.hub import push_checkpoint

    print(push_checkpoint(args.checkpoint, args.repo, args.card))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train_cli.py", description="vidclf: CNN-LSTM video action classification")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a CNN-LSTM (flags override params.json)")
    add_config_flags(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt after its last finished epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cv", help="group k-fold cross-validation of a training config (validation by group)")
    add_config_flags(p)
    p.add_argument("--folds", type=int, default=6, metavar="N", help="group folds, each validated once (default 6)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser(
        "choose",
        help="cross-validate the recipes (pose, motion, their fusion) by group on your data, train the best on all",
    )
    add_config_flags(p)
    p.add_argument(
        "--recipes", nargs="+", default=list(CHOOSER_RECIPES), choices=list(CHOOSER_RECIPES), help="(default: all)"
    )
    p.add_argument("--folds", type=int, default=None, metavar="N", help="group folds per recipe (default 4; quick: 2)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the Train tab's quick setting: 2 folds, fewer epochs, 128 px, one view a clip (flags given still win)",
    )
    p.add_argument("--out", default=None, metavar="DIR", help="where the runs go (default runs/choose)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=cmd_choose)

    p = sub.add_parser("evaluate", help="metrics of checkpoint(s) on a split's test list")
    p.add_argument("--checkpoint", nargs="+", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--subset",
        default="test",
        choices=("test", "train", "val"),
        help="test list (default), train list, or the validation groups held out in training",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument(
        "--cache-dir",
        default=None,
        metavar="PATH",
        help="cache the clips' decoded frames and pose landmarks here (a motion model's frames of a few hundred "
        "clips take GBs); default: frames not cached, pose landmarks cached in .cache/vidclf (where train keeps "
        "them), so that they are estimated once for all checkpoints and runs",
    )
    p.add_argument("--out", default=None, help="also write eval_<name>.json and confusion_<name>.png here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify video files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("videos", nargs="+")
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", default=None, metavar="PATH", help="write each video's workout log (its segments) here")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "calibrate", help="set a checkpoint's 'not one of these' threshold (and cv accuracy) from validation clips"
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--oof", default=None, help="the oof.npz of a `cv` run of the checkpoint's recipe")
    p.add_argument("--data-root", default=None, help="or: calibrate on the validation groups the checkpoint held out")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument(
        "--answered", type=float, default=0.95, help="share of known-class clips still answered (default 0.95)"
    )
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="DIR[@best]",
        help="or: a cv run of each of the checkpoint's models, in order (repeat; @best where the shipped model was "
        "the epoch its validation picked): the out-of-fold predictions are mapped to the shipped models' scale",
    )
    p.add_argument("--oof-out", default=None, help="with --run: keep the mapped out-of-fold logits here")
    p.add_argument("--cache-dir", default=None)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "calibrate-movement",
        help="give a checkpoint with a pose stream the movement check (vidclf.novelty) and set its 'not one of these' "
        "thresholds together on clips it never trained on",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--ucf-root", required=True, help="UCF-101's training clips (the profile and the out-of-fold rows)")
    p.add_argument("--real-root", default=None, help="a real-clip tree laid out as ../shared/real (MANIFEST.tsv)")
    p.add_argument("--oof", default=None, help="its mapped out-of-fold predictions (default <ckpt>.oof.npz)")
    p.add_argument("--answered", type=float, default=0.95, help="share of known-class clips the rule answers")
    p.add_argument(
        "--evidence-answered", type=float, default=0.98, help="share the evidence threshold alone answers (0.98)"
    )
    p.add_argument("--shrink", type=float, default=0.5, help="class covariances shrunk this far to the pooled one")
    p.add_argument(
        "--odds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the log-odds of another action (novelty and the classifier's confidence, learned from the "
        "--real-root's other/ clips) rather than the novelty alone",
    )
    p.add_argument("--l2", type=float, default=0.01, help="the odds' L2 weight on their standardised inputs")
    p.add_argument("--out", default=None, help="every clip's scores (default <ckpt>.movement.npz)")
    p.add_argument("--json", default=None, help="write the measures here too")
    p.add_argument("--cache-dir", default=None, help="where the clips' landmarks are cached")
    p.set_defaults(func=cmd_calibrate_movement)

    p = sub.add_parser(
        "fuse", help="late-fuse trained checkpoints, weights chosen on their cv runs' out-of-fold predictions"
    )
    p.add_argument("--stream", action="append", required=True, help="a checkpoint (repeat; the first is trusted most)")
    p.add_argument(
        "--oof", action="append", required=True, help="the oof.npz of each stream's recipe, in the same order"
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--max-ratio",
        type=float,
        default=1.0,
        help="no stream weighs more than this times the first (default 1: pose leads; 0 or less: no bound)",
    )
    p.add_argument("--answered", type=float, default=0.95)
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("ensemble", help="average models of one recipe trained with different seeds into one checkpoint")
    p.add_argument("--checkpoint", nargs="+", required=True)
    p.add_argument("--oof", nargs="+", required=True, help="each seed's cv oof.npz, in the same order")
    p.add_argument("--out", required=True)
    p.add_argument("--oof-out", default=None, help="also write the averaged out-of-fold predictions here (for `fuse`)")
    p.add_argument("--answered", type=float, default=0.95)
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser(
        "openset",
        help="cross-validate the pose stream trained with other-action clips (UCF-101 groups and source repositories)",
    )
    add_config_flags(p)
    p.add_argument("--ucf-root", default=None, help="a UCF-101 root (its split-1 train list)")
    p.add_argument("--real-root", default=None, help="a real-clip tree with MANIFEST.tsv (../shared/real)")
    p.add_argument("--recipe", default="both", choices=OPEN_SET_RECIPES)
    p.add_argument("--folds", type=int, default=6)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--real-weight", type=float, default=3.0, help="loss weight of a real-world clip of a known class")
    p.add_argument("--other-weight", type=float, default=1.5, help="loss weight of an other-action clip")
    p.add_argument("--oof", nargs="+", default=None, help="oof.npz of earlier runs of this recipe (skip the cv)")
    p.add_argument("--fold", type=int, default=None, help="run fold i (1-based) of the cv alone")
    p.add_argument("--member-out", default=None, help="train each seed on all clips; write DIR/member_s<seed>.pt")
    p.add_argument("--members", nargs="+", default=[], help="with --ship: the member checkpoints to average")
    p.add_argument("--note", action="append", default=[], help="with --ship: a line for the model card")
    p.add_argument("--ship", default=None, help="write the members, calibrated on --oof, here")
    p.add_argument("--answered", type=float, default=0.95)
    p.set_defaults(func=cmd_openset)

    p = sub.add_parser(
        "openset-novelty",
        help="measure a movement-shape check (is the clip's movement like its answer's training clips?) on top of "
        "an openset run's out-of-fold logits",
    )
    p.add_argument("--oof", required=True, help="the oof.npz of an `openset` run (its folds are reused)")
    p.add_argument("--logits", default="logits", choices=("logits", "logits_mirror"))
    p.add_argument("--ucf-root", default=None)
    p.add_argument("--real-root", default=None)
    p.add_argument("--cache-dir", default=".cache/vidclf", help="where the clips' landmarks are cached")
    p.add_argument("--num-frames", type=int, default=32)
    p.add_argument("--shrink", type=float, nargs="+", default=[0.5], help="class covariance shrunk towards pooled")
    p.add_argument(
        "--evidence-answered",
        type=float,
        nargs="+",
        default=[1.0, 0.99, 0.98, 0.97],
        help="share of known clips the evidence alone answers; the movement check takes the rest",
    )
    p.add_argument("--answered", type=float, default=0.95, help="share of known clips the combined rule answers")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_openset_novelty)

    p = sub.add_parser(
        "openset-fuse",
        help="fuse an open-set pose checkpoint with a motion stream, weights chosen on clips neither trained on",
    )
    p.add_argument("--pose", required=True)
    p.add_argument("--pose-oof", required=True, help="the oof.npz of the pose checkpoint's `openset` run")
    p.add_argument("--motion", required=True)
    p.add_argument("--ucf-root", required=True)
    p.add_argument("--real-root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-ratio", type=float, default=0.5)
    p.add_argument("--weights", type=float, nargs=2, default=None, help="pose and motion weights, not chosen")
    p.add_argument(
        "--ucf", action=argparse.BooleanOptionalAction, default=True, help="also the motion stream's validation groups"
    )
    p.add_argument("--cache-dir", default=".cache/vidclf")
    p.add_argument("--motion-logits", default=None, help="an npz of the motion stream's logits on these clips")
    p.set_defaults(func=cmd_openset_fuse)

    p = sub.add_parser(
        "anchors", help="write a checkpoint's anchor file (what `teach` keeps its classes apart from new ones with)"
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-root", required=True, help="the clips it was trained on (their train list)")
    p.add_argument("--split", type=int, default=1, choices=(1, 2, 3))
    p.add_argument("--cache-dir", default=".cache/vidclf", help="landmarks and frames cached here")
    p.add_argument(
        "--cached-only", action="store_true", help="a pose model: only the clips whose landmarks are in the cache"
    )
    p.set_defaults(func=cmd_anchors)

    p = sub.add_parser("teach", help="teach a model with an anchor file one more action from 3-12 clips (a minute)")
    p.add_argument("--checkpoint", required=True, help="the model to extend, e.g. weights/pose_lstm.pt")
    p.add_argument("--name", required=True, help="the new action's name")
    p.add_argument("--out", required=True, help="where the model with one more class goes")
    p.add_argument("videos", nargs="+", help="3-12 clips of the new action")
    p.set_defaults(func=cmd_teach)

    p = sub.add_parser("synth", help="write the SYNTHETIC action dataset (UCF-101 layout)")
    p.add_argument("--out", required=True)
    p.add_argument("--groups", type=int, default=6)
    p.add_argument("--clips-per-group", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", action="store_true", help="write the app's example clips instead of a dataset")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("export", help="shrink a checkpoint for shipping (fp16, no optimizer) and write its model card")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="e.g. weights/custom.pt; the card goes beside it as .md")
    p.add_argument("--note", action="append", default=[], help="a line for the card (how it was trained, machine, ...)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("push", help="upload a checkpoint and its card to a Hugging Face Hub model repo")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--repo", required=True, help="owner/name")
    p.add_argument("--card", default=None, help="model card (default: the checkpoint's .md beside it)")
    p.set_defaults(func=cmd_push)
    return parser


class _Console(logging.StreamHandler):
    """Writes to the sys.stdout (or sys.stderr) of the moment a line is logged, not of the moment it was made:
    one that outlives its command (in a test, or anything that calls ``main`` in-process) never writes to a
    closed stream."""

    def __init__(self, *, to_stderr: bool):
        super().__init__()
        self.to_stderr = to_stderr

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr if self.to_stderr else sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass  # the stream is looked up when a line is written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # vidclf logs its progress (epochs, folds, resumes): the command shows it on stdout, like its results; other
    # libraries' log lines stay out of it. A --json answer must be JSON alone: its log goes to stderr. Each call
    # sets its own handler (a test may call main several times, each time with other streams).
    vidclf_log = logging.getLogger("vidclf")
    for old in [h for h in vidclf_log.handlers if h.get_name() == "vidclf-cli"]:
        vidclf_log.removeHandler(old)
    handler = _Console(to_stderr=getattr(args, "json", False))
    handler.set_name("vidclf-cli")
    handler.setFormatter(logging.Formatter("%(message)s"))
    vidclf_log.addHandler(handler)
    vidclf_log.setLevel(logging.INFO)
    vidclf_log.propagate = False
    if getattr(args, "max_ratio", None) is not None and args.max_ratio <= 0:
        args.max_ratio = None
    try:
        return args.func(args)
    except VidclfError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
