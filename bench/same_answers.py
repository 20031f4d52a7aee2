"""Do two versions of the tree give the same answers? Each predicts the same clips with its own ``weights/``
and code, in a process of its own, and the answers are compared: label, "not one of these", class
probabilities (within ``--tol``), the repetitions (count and times) and the workout log's segments, and the
pose stream's landmarks on its classified frames. A speed change must pass it, or say what changed.

    git -C /work/main archive <commit> | tar -x -C /work/cache/<name>/before    # the other tree, outside the repo
    python -m bench.same_answers --before /work/cache/<name>/before [--clips a.mp4 b.avi ...] [--timed]

Without ``--clips``: the 15 s phone clips of ``bench.phone_latency`` (made there once) and four ../shared
clips (a UCF-101 clip, two real positives, a long real set). ``--timed`` also times a second (warm) call of
each clip in each tree, the trees' calls interleaved clip by clip (one process per tree, kept alive): wall
and CPU seconds, with the load average, for a before/after ratio on a shared machine. Exits 1 if any
answer differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
SHARED = Path(os.environ.get("VIDCLF_SHARED", ROOT.parent / "shared"))
DEFAULT_CLIPS = [
    Path("/tmp/vidclf-phone-clips/squat_720p_15s.mp4"),
    Path("/tmp/vidclf-phone-clips/squat_1080x1920_15s.mp4"),
    SHARED / "ucf101/UCF-101/JumpRope/v_JumpRope_g22_c02.avi",
    SHARED / "real/positive/PushUps",
    SHARED / "real/positive/JumpingJack",
    SHARED / "real/long/APKA-llc__exercise-tracking__pushups.mp4",
]


def _answer(p) -> dict:
    """What a prediction answers, JSON-able (``Prediction`` of whichever tree)."""
    out = {
        "label": p.label,
        "known": bool(p.known),
        "score": float(p.score),
        "probs": {k: float(v) for k, v in p.probs.items()},
        "reps": p.reps.count if p.reps is not None else None,
        "rep_times": [list(t) for t in p.reps.times] if p.reps is not None else [],
        "segments": [s.to_dict() for s in p.workout.segments] if p.workout is not None else [],
        "landmarks": None if p.landmarks is None else p.landmarks.tolist(),
    }
    return out


def child(tree: Path) -> None:
    """Serve the other side: read a clip path and a "timed" flag a line, answer JSON a line."""
    sys.path.insert(0, str(tree))
    import vidclf  # noqa: F401  (first: the process settings it makes before torch loads)
    import torch

    from vidclf.predict import Predictor

    threads = int(os.environ.get("SAME_ANSWERS_THREADS", "2"))  # a Space's cores, as bench.phone_latency
    torch.set_num_threads(threads)
    predictor = Predictor(tree / "weights" / "fusion.pt", precision="auto")
    getattr(predictor, "warm_up", lambda: None)()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        clip, timed = json.loads(line)
        p = predictor.predict(clip)
        out = _answer(p)
        if timed:
            t0, c0 = time.perf_counter(), time.process_time()
            predictor.predict(clip)
            out["wall"], out["cpu"] = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps(out), flush=True)


class _Side:
    def __init__(self, tree: Path):
        env = dict(os.environ, PYTHONPATH=str(tree), GLOG_minloglevel="2")  # MediaPipe says less
        cmd = [sys.executable, str(HERE), "--child", str(tree)]
        self.proc = subprocess.Popen(cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._line()  # ready

    def _line(self) -> dict:
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            if line.startswith("{"):
                return json.loads(line)
        raise SystemExit(f"the process for {self.proc.args[-1]} ended (exit {self.proc.wait()})")

    def ask(self, clip: Path, timed: bool) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([str(clip), timed]) + "\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def differences(a: dict, b: dict, tol: float) -> list[str]:
    """What differs between two answers (empty: the same)."""
    out = []
    if a["label"] != b["label"] or a["known"] != b["known"]:
        out.append(f"answer {a['label']} (known {a['known']}) -> {b['label']} (known {b['known']})")
    dp = max(abs(a["probs"][k] - b["probs"].get(k, float("nan"))) for k in a["probs"])
    if not dp <= tol:
        out.append(f"probabilities differ by up to {dp:.2g}")
    if abs(a["score"] - b["score"]) > tol * 100:
        out.append(f"evidence {a['score']:.4f} -> {b['score']:.4f}")
    if a["reps"] != b["reps"]:
        out.append(f"repetitions {a['reps']} -> {b['reps']}")
    elif any(abs(x - y) > 0.051 for s, t in zip(a["rep_times"], b["rep_times"]) for x, y in zip(s, t)):
        out.append("repetition times moved by more than 0.05 s")
    seg = lambda d: [(s["label"], s["known"], s["start_s"], s["end_s"], s["reps"]) for s in d["segments"]]  # noqa: E731
    if seg(a) != seg(b):
        out.append(f"segments {seg(a)} -> {seg(b)}")
    la, lb = a["landmarks"], b["landmarks"]
    if (la is None) != (lb is None):
        out.append("landmarks present on one side only")
    elif la is not None:
        import numpy as np

        x, y = np.asarray(la, float), np.asarray(lb, float)
        if x.shape != y.shape or not np.array_equal(np.isnan(x), np.isnan(y)):
            out.append("landmarks: a body found on one side only")
        else:
            d = np.nanmax(np.abs(x - y)) if np.isfinite(x).any() else 0.0
            if d > 1e-4:
                out.append(f"landmarks moved by up to {d:.2g} (units of the frame)")
    return out


def _clips(given: list[Path]) -> list[Path]:
    out = []
    for c in given:
        out.extend(sorted(c.glob("*.mp4"))[:1] if c.is_dir() else [c])  # a folder: its first clip
    missing = [c for c in out if not c.exists()]
    if missing:
        raise SystemExit(f"missing clips: {', '.join(map(str, missing))} (phone clips: python -m bench.phone_latency)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="the other tree (exported outside the repository)")
    ap.add_argument("--after", type=Path, default=ROOT, help="this tree by default")
    ap.add_argument("--clips", type=Path, nargs="+", default=DEFAULT_CLIPS)
    ap.add_argument("--tol", type=float, default=1e-4, help="largest difference of a class probability")
    ap.add_argument("--timed", action="store_true", help="time a warm call of each clip on each side")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child.resolve())
        return
    if args.before is None:
        ap.error("--before is required")
    clips = _clips(args.clips)
    print(f"before {args.before}, after {args.after}; load average {os.getloadavg()[0]:.1f}", flush=True)
    before, after = _Side(args.before.resolve()), _Side(args.after.resolve())
    failed = 0
    walls: list[tuple[float, float]] = []
    try:
        for clip in clips:
            a, b = before.ask(clip, args.timed), after.ask(clip, args.timed)
            diff = differences(a, b, args.tol)
            failed += bool(diff)
            what = f"{b['label']} {'known' if b['known'] else 'unknown'}, {b['reps']} reps, {len(b['segments'])} seg"
            print(f"{'SAME' if not diff else 'DIFFERENT':<9} {clip.name[:48]:<48} {what}", flush=True)
            for d in diff:
                print(f"          {d}", flush=True)
            if args.timed:
                walls.append((a["wall"], b["wall"]))
                print(
                    f"          warm call: before {a['wall']:.2f} s (CPU {a['cpu']:.2f}), after {b['wall']:.2f} s "
                    f"(CPU {b['cpu']:.2f}): x{a['wall'] / b['wall']:.2f}; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        before.close()
        after.close()
    if walls:
        print(f"all clips: before {sum(w for w, _ in walls):.1f} s, after {sum(w for _, w in walls):.1f} s")
    print(f"{len(clips) - failed} of {len(clips)} clips answered the same; load average {os.getloadavg()[0]:.1f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
