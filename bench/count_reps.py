"""Repetition counting against counts made by eye (docs/rep_counts.csv): mean absolute error relative to
the true count, and the share counted within one, per class.

    python -m bench.count_reps
"""

from __future__ import annotations

from collections import defaultdict

from bench import common
from vidclf.reps import count_repetitions, frame_signal
from vidclf.video import probe, read_all_frames


def main() -> None:
    rows = [
        line.split(",")
        for line in (common.ROOT / "docs" / "rep_counts.csv").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    by_class: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for rel, truth in rows:
        path = common.UCF_ROOT / "UCF-101" / rel
        reps = count_repetitions(frame_signal(read_all_frames(path, (48, 64))), probe(path).fps)
        by_class[rel.split("/")[0]].append((int(truth), reps.count))
        print(
            f"{rel}: counted by eye {truth}, by vidclf {reps.count} (period {reps.period_s or 0:.2f} s, "
            f"confidence {reps.confidence:.2f})"
        )
    print("\n| class | clips | mean abs. error / true count | within one |\n| --- | --- | --- | --- |")
    every = []
    for name, pairs in sorted(by_class.items()):
        every += pairs
        mae = sum(abs(t - c) / t for t, c in pairs) / len(pairs)
        print(f"| {name} | {len(pairs)} | {mae:.2f} | {sum(abs(t - c) <= 1 for t, c in pairs) / len(pairs):.0%} |")
    mae = sum(abs(t - c) / t for t, c in every) / len(every)
    print(f"| all | {len(every)} | {mae:.2f} | {sum(abs(t - c) <= 1 for t, c in every) / len(every):.0%} |")


if __name__ == "__main__":
    main()
