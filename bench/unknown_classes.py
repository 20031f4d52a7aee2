"""Leave one class out: how well does a score tell clips of an unknown action from known ones (pose stream)?

For each class c, a pose model is trained (the shipped recipe) on the other 9 classes of 5 of 6 group folds;
the held-out fold's clips are scored: known classes should be answered, class c refused. Prints the AUROC of
each score and the share of unknown-class clips refused when 95 % of known clips are answered.

    python -m bench.unknown_classes --cv runs/cv/pose_s0    # a `cv` run of the pose recipe (for its folds)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench import common
from vidclf.checkpoint import load_checkpoint
from vidclf.config import load_config
from vidclf.data.index import VideoRecord, group_of
from vidclf.data.landmarks import LandmarkDataset, records_landmarks
from vidclf.fusion import evidence, read_oof
from vidclf.models.pose import normalize_landmarks
from vidclf.training.loop import fit


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    s = np.concatenate([pos, neg])
    ranks = np.empty(len(s))
    ranks[np.argsort(s)] = np.arange(1, len(s) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cv", required=True)
    ap.add_argument("--config", default=str(common.ROOT / "presets" / "pose.json"))
    ap.add_argument("--out-dir", default="runs/unknown_classes")
    args = ap.parse_args()
    oof = read_oof(Path(args.cv) / "oof.npz")
    records = [VideoRecord(Path(p), int(y), group_of(Path(p))) for p, y in zip(oof["paths"], oof["labels"])]
    config = load_config(args.config)
    raw = records_landmarks(records, config.data.num_frames, config.data.cache_dir, show_progress=False)
    x = torch.from_numpy(np.stack([normalize_landmarks(r) for r in raw]))
    y, folds = oof["labels"], oof["folds"]
    scores: dict[str, tuple[list, list]] = {"top probability": ([], []), "evidence": ([], [])}
    for c in range(int(y.max()) + 1):
        f = c % (int(folds.max()) + 1)
        train, test = (folds != f) & (y != c), folds == f
        keep = [k for k in range(int(y.max()) + 1) if k != c]
        cfg = config.__class__(
            data=config.data,
            model=config.model,
            train=config.train.__class__(**{**config.train.__dict__, "out_dir": f"{args.out_dir}/{c}"}),
        )
        ds = LandmarkDataset(raw[train], [keep.index(k) for k in y[train]], augment=True)
        result = fit(cfg, ds, None, [str(k) for k in keep], show_progress=False)
        model = load_checkpoint(result.last_path).build_model()
        with torch.no_grad():
            logits = model(x[test], features=True).numpy()
        unknown = y[test] == c
        for name, s in (
            ("top probability", torch.from_numpy(logits).softmax(-1).max(1).values.numpy()),
            ("evidence", evidence(logits)),
        ):
            scores[name][0].append(s[~unknown])
            scores[name][1].append(s[unknown])
        print(f"class {c} held out", flush=True)
    print("| score | AUROC | unknown-class clips refused at 95 % known answered |\n| --- | --- | --- |")
    for name, (pos, neg) in scores.items():
        p, n = np.concatenate(pos), np.concatenate(neg)
        print(f"| {name} | {auroc(p, n):.2f} | {np.mean(n < np.quantile(p, 0.05)):.0%} |")


if __name__ == "__main__":
    main()
