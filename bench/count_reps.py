"""Repetition counting against counts made by eye (docs/rep_counts.csv): mean absolute error relative to
the true count, and the share counted within one, per class; for what the app and ``predict --json`` say
(the default model: the picture's motion and, where a person is found, the joints, the surer of the two),
and for the picture's motion alone.

    python -m bench.count_reps [--checkpoint weights/fusion.pt]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from bench import common
from vidclf.predict import SIGNAL_DECODE_SIZE, Predictor
from vidclf.reps import count_repetitions, frame_signal
from vidclf.video import probe, read_all_frames


def table(title: str, by_class: dict[str, list[tuple[int, int]]]) -> None:
    print(f"\n{title}\n\n| class | clips | mean abs. error / true count | within one | exact |")
    print("| --- | --- | --- | --- | --- |")
    every = []
    for name, pairs in sorted(by_class.items()):
        every += pairs
        print(f"| {name} | {len(pairs)} | {_mae(pairs):.2f} | {_within(pairs):.0%} | {_exact(pairs):.0%} |")
    print(
        f"| **all** | **{len(every)}** | **{_mae(every):.2f}** | **{_within(every):.0%}** | **{_exact(every):.0%}** |"
    )


def _mae(pairs: list[tuple[int, int]]) -> float:
    return sum(abs(t - c) / t for t, c in pairs) / len(pairs)


def _within(pairs: list[tuple[int, int]]) -> float:
    return sum(abs(t - c) <= 1 for t, c in pairs) / len(pairs)


def _exact(pairs: list[tuple[int, int]]) -> float:
    return sum(t == c for t, c in pairs) / len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(common.ROOT / "weights" / "fusion.pt"))
    args = ap.parse_args()
    rows = [
        line.split(",")
        for line in (common.ROOT / "docs" / "rep_counts.csv").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    predictor = Predictor(args.checkpoint, precision="auto")
    product: dict[str, list[tuple[int, int]]] = defaultdict(list)
    pixels: dict[str, list[tuple[int, int]]] = defaultdict(list)
    sources: dict[str, int] = defaultdict(int)
    for rel, truth in rows:
        path = common.UCF_ROOT / "UCF-101" / rel
        reps = predictor.predict(path).reps
        assert reps is not None
        alone = count_repetitions(frame_signal(read_all_frames(path, SIGNAL_DECODE_SIZE)), probe(path).fps)
        name = rel.split("/")[0]
        product[name].append((int(truth), reps.count))
        pixels[name].append((int(truth), alone.count))
        sources[reps.source] += 1
        print(
            f"{rel}: by eye {truth}, vidclf {reps.count} from the {reps.source} (period {reps.period_s or 0:.2f} s, "
            f"confidence {reps.confidence:.2f}); the picture's motion alone {alone.count}"
        )
    table(f"What vidclf says ({args.checkpoint}; counted from: {dict(sources)})", product)
    table("The picture's motion alone", pixels)


if __name__ == "__main__":
    main()
