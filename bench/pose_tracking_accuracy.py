"""Does the shipped pose stream answer the same on BlazePose's tracking-mode landmarks as on the static ones it
was trained on? If so, a prediction can classify from the landmarks its workout engine tracks (10 a second)
instead of a second BlazePose pass over the 32 frames the stream samples.

    python -m bench.pose_tracking_accuracy [--out /tmp/vidclf-tracking.json] [--ucf-every N]

For each of the 528 UCF-101 clips in ../shared/ucf101 and the 54 real positives in ../shared/real/positive:

- ``static``: BlazePose in static image mode on the pose stream's 32 uniformly sampled frames at 640 px (what
  prediction does today and training did);
- ``tracked``: BlazePose in tracking mode on the clip's frames at the engine's 10 a second and 320 px (what the
  engine does), then for each of the 32 sampled frames the tracked frame nearest in time (``nearest``) or the
  tracked frames resampled uniformly (``uniform``, what the engine's windows do).

Each set goes through the shipped fusion's pose LSTMs (the three seeds, weighted as the checkpoint says) and
the whole fusion (the motion stream's logits are the same in both). The fusion's pose LSTMs trained on the UCF
clips (so there accuracy is near 1 and agreement is what says something) and never saw the real ones.
Results per clip are kept in ``--out`` so that an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from bench import common

SHARED = common.UCF_ROOT.parent


def _clips(ucf_every: int) -> list[tuple[str, Path, str]]:
    """The real positives and every ``ucf_every``-th UCF-101 clip, interleaved (an interrupted run has both)."""
    ucf = sorted((common.UCF_ROOT / "UCF-101").rglob("*.avi"))[::ucf_every]
    real = sorted((SHARED / "real" / "positive").rglob("*.mp4"))
    a = [("ucf", p, p.parent.name) for p in ucf]
    b = [("real", p, p.parent.name) for p in real]
    out = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def tracked_landmarks(path: Path, max_side: int = 320, rate_hz: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """The engine's tracking of a clip: ``(times [M], landmarks [M, 33, 4])``, frames taken by the engine's rule."""
    import cv2

    from vidclf.models.pose import PoseTracker
    from vidclf.video import iter_frames, probe

    info = probe(path)
    times, marks = [], []
    next_sample = -math.inf
    size = None
    with PoseTracker() as tracker:
        for i, frame in enumerate(iter_frames(path)):
            t = i / info.fps
            if t < next_sample:
                continue
            next_sample = max(next_sample + 1.0 / rate_hz, t + 0.5 / rate_hz)
            if size is None:
                h, w = frame.shape[:2]
                scale = min(1.0, max_side / max(h, w))
                size = (max(1, round(h * scale)), max(1, round(w * scale)))
            small = frame if frame.shape[:2] == size else cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA)
            times.append(t)
            marks.append(tracker(np.ascontiguousarray(small)))
    return np.array(times), np.stack(marks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/vidclf-tracking.json"))
    ap.add_argument("--ucf-every", type=int, default=1, help="every n-th UCF-101 clip (all real ones)")
    args = ap.parse_args()
    import torch

    from vidclf.data.landmarks import POSE_MAX_SIDE
    from vidclf.models.pose import PoseEstimator, normalize_landmarks
    from vidclf.predict import Predictor
    from vidclf.sampling import uniform_indices
    from vidclf.video import fit_within, load_clip, probe, read_frames

    torch.set_num_threads(1)
    predictor = Predictor(common.ROOT / "weights" / "fusion.pt", precision="fp32")
    classes = predictor.classes
    pose = [(s, w) for s, w in predictor.streams if s.pose]
    motion = [(i, s, w) for i, (s, w) in enumerate(predictor.streams) if not s.pose]
    estimator = PoseEstimator()
    done = json.loads(args.out.read_text()) if args.out.exists() else {}

    def pose_logits(raw: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(normalize_landmarks(raw))[None]
        return [s.logits(x)[0] for s, _ in pose]

    for n, (group, path, label) in enumerate(_clips(args.ucf_every)):
        key = str(path.relative_to(SHARED))
        if key in done:
            continue
        info = probe(path)
        idx = uniform_indices(info.num_frames, 32)
        clip = load_clip(path, 32, None, max_side=POSE_MAX_SIDE, info=info)
        static = estimator(clip.frames)
        times, marks = tracked_landmarks(path)
        nearest = marks[[int(np.argmin(np.abs(times - i / info.fps))) for i in idx]]
        uniform = marks[uniform_indices(len(marks), 32)]
        motion_lg = {}
        for i, s, _ in motion:
            sidx = s.indices(info.num_frames, info.fps)
            frames = read_frames(path, sidx, fit_within(info, POSE_MAX_SIDE))
            motion_lg[i] = s.logits(s.pixels(frames)[None])[0]
        row = {"group": group, "label": label}
        for name, raw in (("static", static), ("nearest", nearest), ("uniform", uniform)):
            pls = pose_logits(raw)
            wsum = sum(w for _, w in pose)
            pose_lp = sum(w * lg[: len(classes)].log_softmax(-1) for (_, w), lg in zip(pose, pls)) / wsum
            row[f"{name}_pose"] = classes[int(pose_lp.argmax())]
            outs, it = [], iter(pls)
            for i, (s, _) in enumerate(predictor.streams):
                outs.append(next(it) if s.pose else motion_lg[i])
            probs, known, _ = predictor.verdict(predictor.fuse(outs), None)
            row[f"{name}_fusion"] = classes[int(probs.argmax())]
            row[f"{name}_known"] = known
        done[key] = row
        args.out.write_text(json.dumps(done))
        if n % 20 == 0:
            print(n, key, row, flush=True)
    report(done)


def report(done: dict) -> None:
    for group in ("ucf", "real"):
        rows = [r for r in done.values() if r["group"] == group]
        if not rows:
            continue
        print(f"{group}: {len(rows)} clips")
        for stream in ("pose", "fusion"):
            acc = {
                m: np.mean([r[f"{m}_{stream}"] == r["label"] for r in rows]) for m in ("static", "nearest", "uniform")
            }
            agree = {
                m: np.mean([r[f"{m}_{stream}"] == r[f"static_{stream}"] for r in rows]) for m in ("nearest", "uniform")
            }
            print(
                f"  {stream:<6} accuracy static {acc['static']:.3f}  tracked-nearest {acc['nearest']:.3f}  "
                f"tracked-uniform {acc['uniform']:.3f};  agreement with static: nearest {agree['nearest']:.3f}  "
                f"uniform {agree['uniform']:.3f}"
            )


if __name__ == "__main__":
    main()
