"""Does teaching the shipped pose stream an eleventh exercise keep the ten? Accuracy on the ten before and after.

    python -m bench.teach_keeps --cache-dir /work/cache-real/vidclf

Anchors are written here (in a temporary folder) from the cached UCF-101 clips *outside* a few held-out groups,
the pose stream (``weights/pose_lstm.pt``) is taught each new exercise from its real clips in
``../shared/real/other``, and the ten classes are scored, base against taught, on the held-out groups' clips
(the shipped model trained on them: what is measured is what the new class takes away) and on the real
positives (``../shared/real/positive``, clips of the ten from other repositories, never trained on).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vidclf.checkpoint import load_checkpoint
from vidclf.data.index import VideoRecord, build_index
from vidclf.evaluate import answered_clips, checkpoint_logits, pose_found
from vidclf.training.teach import landmarks_cached, teach, write_anchors

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HELD = ("g08", "g12", "g16", "g20", "g24")
NEW = {"barbell squat": "barbell_squat", "pommel horse": "pommel_horse", "swimming": "swimming"}


def score(path: Path, records: list[VideoRecord], cache: str) -> dict:
    ck = load_checkpoint(path)
    logits = checkpoint_logits(ck, records, landmark_cache_dir=cache)
    answered = answered_clips(ck, logits, pose_found(ck, records, cache)).numpy()
    top = logits[:, : len(ck.classes)].argmax(1).numpy()
    labels = np.array([r.label for r in records])
    right = top == labels
    return {
        "acc": float(right.mean()),
        "answered_right": float((right & answered).mean()),
        "to_new": int((top >= 10).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache-dir", required=True, help="landmarks of ../shared/ucf101 and ../shared/real/positive")
    args = ap.parse_args()
    base_src = ROOT / "weights" / "pose_lstm.pt"
    classes = load_checkpoint(base_src).classes
    index = build_index(SHARED / "ucf101", "train", classes=classes, num_classes=0)
    cached = landmarks_cached(base_src, index.records, args.cache_dir)
    anchors = [r for r in cached if r.group not in HELD]
    held = [r for r in cached if r.group in HELD]
    real = SHARED / "real"
    with open(real / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    positives = [
        VideoRecord(real / r["path"], classes.index(r["label"]), r["source_repo"])
        for r in rows
        if r["path"].startswith("positive/") and r["label"] in classes
    ]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.pt"
        shutil.copy(base_src, base)
        write_anchors(base, anchors, cache_dir=args.cache_dir)
        print(f"anchors: {len(anchors)} UCF-101 clips outside {', '.join(HELD)}; held out: {len(held)} clips")
        before = {"ucf": score(base, held, args.cache_dir), "real": score(base, positives, args.cache_dir)}
        print(f"base: UCF held-out groups {before['ucf']}, real positives ({len(positives)}) {before['real']}")
        for name, folder in NEW.items():
            clips = sorted((real / "other" / folder).glob("*"))
            t0 = time.perf_counter()
            out = Path(tmp) / f"{folder}.pt"
            r = teach(base, name, clips[:3], out)
            took = time.perf_counter() - t0
            after = {"ucf": score(out, held, args.cache_dir), "real": score(out, positives, args.cache_dir)}
            print(
                f"taught {name!r} from {min(3, len(clips))} clips in {took:.0f} s (answers {r['answered']} of them): "
                f"UCF held-out groups {after['ucf']}, real positives {after['real']}"
            )


if __name__ == "__main__":
    main()
