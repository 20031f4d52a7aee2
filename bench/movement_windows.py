"""How many of the workout engine's decisions the movement check refuses on workouts (clips of the known
exercises, so every refusal is a wrong one), and the workout log with the check on.

    python -m bench.movement_windows [--checkpoint weights/fusion.pt] WORKOUT [WORKOUT ...]

Each workout runs once through :func:`vidclf.engine.run_file` with ``EngineSettings(movement_check=True)``;
every window the engine classifies is judged twice by the predictor's rule, with and without the movement
novelty, so one pass gives both: the windows answered by the evidence, those of them the movement alone
refuses, and their novelty against the checkpoint's movement threshold. The check is calibrated on whole
clips (32 frames over the clip) and a window is the last 4 s of a movement: this is what says whether the
engine may turn it on. Make workouts with ``python -m bench.join_workout`` (docs/counting.md), outside the
repository. The machine may be shared: this measures counts, not time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import common


def run(checkpoint: Path, workout: Path) -> dict:
    import torch

    from vidclf.engine import EngineSettings, run_file
    from vidclf.predict import Predictor

    torch.set_num_threads(2)
    predictor = Predictor(checkpoint, precision="auto")
    if predictor.movement is None:
        raise SystemExit(f"{checkpoint} has no movement profile (train_cli.py calibrate-movement)")
    windows: list[dict] = []
    verdict = predictor.verdict

    def judged(fused: torch.Tensor, pose_found: float | None, novelty: float | None = None):
        out = verdict(fused, pose_found, novelty)
        if novelty is not None or pose_found is not None:
            alone = verdict(fused, pose_found)
            windows.append(
                {
                    "answer": predictor.classes[int(out[0].argmax())],
                    "evidence_known": alone[1],
                    "known": out[1],
                    "novelty": novelty,
                }
            )
        return out

    predictor.verdict = judged  # type: ignore[method-assign]
    try:
        log = run_file(predictor, workout, settings=EngineSettings(movement_check=True))
    finally:
        predictor.close()
    answered = [w for w in windows if w["evidence_known"]]
    refused = [w for w in answered if not w["known"]]
    novelties = [w["novelty"] for w in answered if w["novelty"] is not None]
    return {
        "workout": workout.name,
        "windows": len(windows),
        "answered_by_evidence": len(answered),
        "refused_by_movement": len(refused),
        "refused_share": round(len(refused) / max(len(answered), 1), 3),
        "refused_answers": sorted({w["answer"] for w in refused}),
        "novelty_median": round(float(sorted(novelties)[len(novelties) // 2]), 3) if novelties else None,
        "movement_threshold": predictor.movement_threshold,
        "segments": [(s.label, round(s.start_s, 1), round(s.end_s, 1), s.reps) for s in log.segments],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workouts", nargs="+", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=common.ROOT / "weights" / "fusion.pt")
    args = parser.parse_args()
    for workout in args.workouts:
        print(json.dumps(run(args.checkpoint, workout)))


if __name__ == "__main__":
    main()
