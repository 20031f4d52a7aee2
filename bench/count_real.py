"""The workout log of any clips, one line a clip: the clip's answer, each segment (label, from-to, repetitions,
the signal that counted them) and the total, as ``predict --json`` counts them. For clips with no count by
eye: which sets are counted 0, which labels waver, what a long set gives (the clips counted by eye are
``python -m bench.count_reps --real``'s).

    python -m bench.count_real ../shared/real/long/*.mp4 ../shared/real/positive/*/*.mp4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import common
from bench.count_reps import log_line
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
        assert p.workout is not None
        zero += p.workout.reps == 0
        print(f"{clip.parent.name}/{clip.name} {log_line(p)}")
    print(f"\n{zero} of {len(args.clips)} clips counted 0")


if __name__ == "__main__":
    main()
