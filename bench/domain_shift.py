"""Accuracy under domain shift: validation clips as other cameras would give them, per stream and fused.

Each clip is classified by the models of the cross-validation fold that held it out (never trained on it),
after each shift of ``vidclf.shifts``. The pose stream should hold where the pixel stream falls.

    python -m bench.domain_shift --pose-cv runs/cv/pose_s0 --pixel-cv runs/cv/efficientnet_lite0 --per-class 4
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from vidclf.fusion import read_oof
from vidclf.predict import DISPLAY_MAX_SIDE, Predictor
from vidclf.shifts import SHIFTS
from vidclf.video import fit_within, probe, read_all_frames


def chosen_clips(oof: dict, per_class: int) -> list[tuple[str, int, int]]:
    """``per_class`` clips of every class, taken round-robin over the folds: (path, label, fold)."""
    out = []
    for label in sorted(set(oof["labels"].tolist())):
        rows = [i for i in range(len(oof["paths"])) if oof["labels"][i] == label]
        by_fold = defaultdict(list)
        for i in rows:
            by_fold[int(oof["folds"][i])].append(i)
        picked, k = [], 0
        while len(picked) < per_class and any(by_fold.values()):
            fold = sorted(by_fold)[k % len(by_fold)]
            if by_fold[fold]:
                picked.append(by_fold[fold].pop(0))
            k += 1
        out += [(str(oof["paths"][i]), int(oof["labels"][i]), int(oof["folds"][i])) for i in picked]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pose-cv", required=True, help="a `cv` run of the pose recipe (fold<i>/last.pt, oof.npz)")
    ap.add_argument("--pixel-cv", required=True, help="a `cv` run of the pixel recipe")
    ap.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=(0.5, 0.4, 0.6, 0.3),
        help="fusion weights, pose and pixels, one pair after another: each pair is a fusion column",
    )
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--out", default=None, help="also write the table as JSON here")
    args = ap.parse_args()

    oof = read_oof(Path(args.pose_cv) / "oof.npz")
    clips = chosen_clips(oof, args.per_class)
    predictors: dict[tuple[str, int], Predictor] = {}

    def model(kind: str, fold: int) -> Predictor:
        if (kind, fold) not in predictors:
            cv = args.pose_cv if kind == "pose" else args.pixel_cv
            predictors[kind, fold] = Predictor(
                Path(cv) / f"fold{fold + 1}" / "last.pt", precision="fp32" if kind == "pose" else "bf16"
            )
        return predictors[kind, fold]

    pairs = [tuple(args.weights[i : i + 2]) for i in range(0, len(args.weights) - 1, 2)]
    correct: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for n, (path, label, fold) in enumerate(clips, 1):
        info = probe(path)
        frames = read_all_frames(path, fit_within(info, DISPLAY_MAX_SIDE))
        for name, shift in SHIFTS.items():
            shifted = shift(frames)
            pose = model("pose", fold).predict_frames(shifted, info.fps)
            pixel = model("pixel", fold).predict_frames(shifted, info.fps)
            classes = list(pose.probs)
            truth = classes[label]
            correct[name]["pose"].append(pose.label == truth)
            correct[name]["pixels"].append(pixel.label == truth)
            for w in pairs:
                fused = [
                    w[0] * np.log(max(pose.probs[c], 1e-12)) + w[1] * np.log(max(pixel.probs[c], 1e-12))
                    for c in classes
                ]
                correct[name][f"fusion {w[0]:g}:{w[1]:g}"].append(classes[int(np.argmax(fused))] == truth)
        print(f"{n}/{len(clips)} {Path(path).name}", flush=True)

    table = {shift: {m: float(np.mean(v)) for m, v in by_model.items()} for shift, by_model in correct.items()}
    columns = list(next(iter(table.values())))
    print(
        f"\n{len(clips)} validation clips ({args.per_class} a class), each by the models of the fold that held it out\n"
    )
    print("| shift | " + " | ".join(columns) + " |\n|" + " --- |" * (len(columns) + 1))
    for shift, accs in table.items():
        print(f"| {shift} | " + " | ".join(f"{accs[c]:.2f}" for c in columns) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps({"clips": len(clips), "accuracy": table}, indent=1))


if __name__ == "__main__":
    main()
