"""Repetition counting against counts made by eye: mean absolute error relative to the true count, the share
counted within one and the share exact, per class; for what the app and ``predict --json`` say (the default
model: the workout log's exercise segments, ``Predictor.predict``).

Two tables of counts by eye:

- ``docs/rep_counts.csv``: 42 short UCF-101 training clips (also counted from the picture's motion alone);
- ``docs/rep_counts_real.csv`` (``--real``): clips that are not UCF-101 (``../shared/real``: phones, webcams,
  studios), each clip's log printed (the answer, every segment's label, span, repetitions and what counted
  them), then the table for all, for each half of the source repositories (a fixed split, so that a change
  can be tuned on one half and checked on the other), for the counts marked sure, and the clear sets that
  count 0 and why.

    python -m bench.count_reps [--checkpoint weights/fusion.pt]
    python -m bench.count_reps --real [--half tune|check]
"""

from __future__ import annotations

import argparse
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench import common
from vidclf.predict import SIGNAL_DECODE_SIZE, Prediction, Predictor
from vidclf.reps import count_repetitions, frame_signal
from vidclf.video import probe, read_all_frames

SHARED = common.UCF_ROOT.parent
HALVES = ("tune", "check")


@dataclass(frozen=True)
class RealClip:
    """One row of docs/rep_counts_real.csv: ``path`` relative to ../shared; ``count`` None where not countable."""

    path: str
    label: str
    count: int | None
    sure: bool
    note: str

    @property
    def source(self) -> str:
        """The source repository's owner (the file name before its first ``__``): a group of clips."""
        return Path(self.path).name.split("__")[0]

    @property
    def half(self) -> str:
        """``"tune"`` or ``"check"``: the half of the sources this clip's falls in (a fixed hash of the source's
        name, fixed before any tuning on these clips)."""
        return HALVES[1 - zlib.crc32(self.source.encode()) % 2]


def real_clips(path: Path | None = None) -> list[RealClip]:
    """The rows of docs/rep_counts_real.csv, not-countable ones included (``count`` None)."""
    rows = []
    for line in (path or common.ROOT / "docs" / "rep_counts_real.csv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rel, label, count, sure, note = line.split(",", 4)
        rows.append(RealClip(rel, label, int(count) if count else None, sure == "sure", note))
    return rows


def table(title: str, by_class: dict[str, list[tuple[int, int]]]) -> None:
    print(f"\n{title}\n\n| class | clips | mean abs. error / true count | within one | exact |")
    print("| --- | --- | --- | --- | --- |")
    every = []
    for name, pairs in sorted(by_class.items()):
        every += pairs
        print(f"| {name} | {len(pairs)} | {_mae(pairs):.2f} | {_within(pairs):.0%} | {_exact(pairs):.0%} |")
    print(f"| **all** | **{len(every)}** | {summary(every, bold=True)} |")


def summary(pairs: list[tuple[int, int]], *, bold: bool = False) -> str:
    """``(true, counted)`` pairs -> "MAE | within one | exact" table cells."""
    cells = [f"{_mae(pairs):.2f}", f"{_within(pairs):.0%}", f"{_exact(pairs):.0%}"]
    return " | ".join(f"**{c}**" if bold else c for c in cells)


def _mae(pairs: list[tuple[int, int]]) -> float:
    return sum(abs(t - c) / t for t, c in pairs) / len(pairs)


def _within(pairs: list[tuple[int, int]]) -> float:
    return sum(abs(t - c) <= 1 for t, c in pairs) / len(pairs)


def _exact(pairs: list[tuple[int, int]]) -> float:
    return sum(t == c for t, c in pairs) / len(pairs)


def log_line(p: Prediction) -> str:
    """A prediction's answer and workout log in one line: the clip's label (or "not one of these"), each
    segment but rest as label, span, repetitions and the signal that counted them, and the total."""
    log = p.workout
    assert log is not None
    parts = [
        f"{s.label} {s.start_s:.1f}-{s.end_s:.1f}: {s.reps}" + (f" ({s.rep_source})" if s.rep_source else "")
        for s in log.segments
        if s.label != "rest"
    ]
    answer = p.label if p.known else f"not one of these (closest {p.label})"
    return f"({log.duration_s:.1f} s): {answer}; {'; '.join(parts) or 'no movement'}; **{log.reps}**"


def ucf(predictor: Predictor, checkpoint: str) -> None:
    rows = [
        line.split(",")
        for line in (common.ROOT / "docs" / "rep_counts.csv").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
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
    table(f"What vidclf says ({checkpoint}; counted from: {dict(sources)})", product)
    table("The picture's motion alone", pixels)


def real(predictor: Predictor, checkpoint: str, clips: Iterable[RealClip]) -> None:
    counted: list[tuple[RealClip, int, Prediction]] = []
    for clip in clips:
        if clip.count is None:
            continue
        p = predictor.predict(SHARED / clip.path)
        assert p.workout is not None
        counted.append((clip, p.workout.reps, p))
        print(f"{clip.path} [{clip.half}]: by eye {clip.count}{'' if clip.sure else ' (unsure)'}, {log_line(p)}")
    if not counted:
        raise SystemExit("no countable clip in the table (or none in this half)")
    by_class: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for clip, n, _ in counted:
        by_class[clip.label].append((clip.count or 0, n))
    table(f"What vidclf says on real clips ({checkpoint})", by_class)
    print("\n| clips | n | mean abs. error / true count | within one | exact |\n| --- | --- | --- | --- | --- |")
    groups: dict[str, list[tuple[RealClip, int, Prediction]]] = {"all": counted}
    for h in HALVES:
        mine = [row for row in counted if row[0].half == h]
        groups[f"{h} half ({', '.join(sorted({c.source for c, _, _ in mine}))})"] = mine
    groups["sure only"] = [row for row in counted if row[0].sure]
    for name, rows in groups.items():
        if rows:
            print(f"| {name} | {len(rows)} | {summary([(c.count or 0, n) for c, n, _ in rows])} |")
    zero = [(c, p) for c, n, p in counted if n == 0]
    print(f"\nClear sets counted 0: {len(zero)} of {len(counted)}")
    for clip, p in zero:
        assert p.workout is not None
        unknown = not p.workout.exercises
        why = "no exercise segment (every movement rest or 'not one of these')" if unknown else "no event counted"
        print(f"- {clip.path}: by eye {clip.count}; {why}; answer {p.label if p.known else 'not one of these'}")
    # "not one of these" counts nothing: how much of the clear sets it took
    refused = [(c, p) for c, _, p in counted if p.workout and any(s.kind == "unknown" for s in p.workout.segments)]
    print(f"Clear sets with a 'not one of these' segment: {len(refused)} of {len(counted)}")
    for clip, p in refused:
        assert p.workout is not None
        spans = [f"{s.start_s:.1f}-{s.end_s:.1f}" for s in p.workout.segments if s.kind == "unknown"]
        at = ", ".join(spans)
        print(f"- {clip.path}: by eye {clip.count}, counted {p.workout.reps}; 'not one of these' at {at} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(common.ROOT / "weights" / "fusion.pt"))
    ap.add_argument("--real", action="store_true", help="the real clips of docs/rep_counts_real.csv")
    ap.add_argument("--half", choices=HALVES, help="with --real: only the clips of one half of the sources")
    args = ap.parse_args()
    predictor = Predictor(args.checkpoint, precision="auto")
    if args.real:
        real(predictor, args.checkpoint, [c for c in real_clips() if args.half in (None, c.half)])
    else:
        ucf(predictor, args.checkpoint)


if __name__ == "__main__":
    main()
