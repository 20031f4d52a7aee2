"""How often each of the answer's sureness bands (vidclf.answer: "sure", "probably", "unsure") is right, on the
real clips that are not UCF-101 (../shared/real): the clips of the ten classes, and the clips of other actions
(where every answer that is not "not one of these" is wrong).

    python -m bench.answer_bands [--checkpoint weights/fusion.pt] [--limit N]
"""

from __future__ import annotations

import argparse
import collections
import os
from pathlib import Path

from bench.common import ROOT

REAL = Path(os.environ.get("VIDCLF_SHARED", ROOT.parent / "shared")) / "real"


def main() -> None:
    from vidclf.answer import sureness
    from vidclf.errors import VidclfError
    from vidclf.predict import Predictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "weights" / "fusion.pt"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips of each kind (0: all)")
    args = parser.parse_args()
    predictor = Predictor(args.checkpoint)
    # band -> [clips, right] for the ten classes' clips; band -> [clips, answered] for other actions
    positive: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    other: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for kind, table in (("positive", positive), ("other", other)):
        clips = sorted((REAL / kind).glob("*/*.mp4"))
        for clip in clips[: args.limit or None]:
            try:
                p = predictor.predict(clip)
            except VidclfError as e:
                print(f"skipped {clip.name}: {e}")
                continue
            band = sureness(p.probs)
            row = table[band]
            row[0] += 1
            if kind == "positive":
                row[1] += int(p.known and p.label == clip.parent.name)
            else:
                row[1] += int(p.known)
            print(f"{kind} {clip.parent.name}/{clip.name}: {p.label} {p.confidence:.2f} known={p.known} {band}")
    print("\nband | clips of the ten classes | right (known, the right class) | clips of other actions | answered")
    for band in ("sure", "probably", "unsure"):
        n, right = positive[band]
        m, answered = other[band]
        share = f"{right / n:.0%}" if n else "-"
        print(f"{band} | {n} | {right} ({share}) | {m} | {answered}")


if __name__ == "__main__":
    main()
