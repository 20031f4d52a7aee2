"""The workout log of real clips, one line a clip: the clip's answer, each segment (label, from-to, repetitions)
and the total, as ``predict --json`` counts them. For clips with no count by eye (``../shared/real``): which
sets are counted 0, which labels waver, what a long set gives.

    python -m bench.count_real ../shared/real/long/*.mp4 ../shared/real/positive/*/*.mp4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import common
from vidclf.predict import Predictor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--checkpoint", default=str(common.ROOT / "weights" / "fusion.pt"))
    args = ap.parse_args()
    predictor = Predictor(args.checkpoint, precision="auto")
    zero = 0
    for clip in args.clips:
        p = predictor.predict(clip)
        log = p.workout
        assert log is not None
        segments = "; ".join(
            f"{s.label} {s.start_s:.1f}-{s.end_s:.1f}: {s.reps}" for s in log.segments if s.label != "rest"
        )
        zero += log.reps == 0
        answer = p.label if p.known else f"not one of these (closest {p.label})"
        print(f"{clip.parent.name}/{clip.name} ({log.duration_s:.1f} s): {answer}; {segments}; **{log.reps}**")
    print(f"\n{zero} of {len(args.clips)} clips counted 0")


if __name__ == "__main__":
    main()
