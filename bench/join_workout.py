"""Join real clips into a workout, with still pauses between them: each clip's last frame held (nobody moves),
every part scaled and padded to one size and frame rate. The workouts of docs/counting.md are made with it,
OUTSIDE the repository (clips of ../shared are never copied in):

    python -m bench.join_workout /work/notes/workouts/w1.mp4 \
        real/positive/JumpingJack/venkatnarayana24__project-3-2__jumping_jacks.mp4 pause=9 \
        real/positive/BodyWeightSquats/Myoxyn__images__squats.mp4 pause=9 \
        real/positive/PushUps/Myoxyn__images__push_ups.mp4

A part is a clip (relative to ../shared, or a path), optionally ``@START-END`` seconds of it, optionally
``xN`` repeated N times (``clip x3`` is three times in a row); ``pause=S`` holds the previous part's last frame
for S seconds; ``--loop-to S`` repeats the whole list until the workout is S seconds long (a long clip for
bench.engine_speed). Needs the ffmpeg that imageio-ffmpeg ships.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from bench import common

SHARED = common.UCF_ROOT.parent


def _clip(spec: str) -> tuple[Path, float | None, float | None]:
    path, _, span = spec.partition("@")
    p = Path(path)
    if not p.is_absolute():
        p = SHARED / p
    if not p.exists():
        raise SystemExit(f"no such clip: {p}")
    if not span:
        return p, None, None
    a, _, b = span.partition("-")
    return p, float(a), float(b)


def parts_of(args: list[str]) -> list[tuple[Path, float | None, float | None, float]]:
    """``[(clip, start, end, pause after)]`` from the command line's parts."""
    out: list[tuple[Path, float | None, float | None, float]] = []
    for a in args:
        if a.startswith("pause="):
            if not out:
                raise SystemExit("a pause needs a clip before it")
            p, s, e, _ = out[-1]
            out[-1] = (p, s, e, float(a.split("=", 1)[1]))
        elif a.startswith("x") and a[1:].isdigit():
            if not out:
                raise SystemExit("a repeat needs a clip before it")
            out += [out[-1]] * (int(a[1:]) - 1)
        else:
            out.append((*_clip(a), 0.0))
    return out


def join(out: Path, parts: list[tuple[Path, float | None, float | None, float]], *, size=(640, 360), fps=30) -> Path:
    """Write the workout to ``out`` (H.264 MP4)."""
    import imageio_ffmpeg

    w, h = size
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error"]
    chains = []
    for i, (path, start, end, pause) in enumerate(parts):
        if start is not None and end is not None:
            cmd += ["-ss", f"{start}", "-t", f"{end - start}"]
        cmd += ["-i", str(path)]
        chain = (
            f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
            f"setsar=1,fps={fps}"
        )
        if pause > 0:
            chain += f",tpad=stop_mode=clone:stop_duration={pause}"
        chains.append(chain + f"[v{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(len(parts)))
    graph += f"concat=n={len(parts)}:v=1:a=0[out]"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd += ["-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"]
    cmd += ["-pix_fmt", "yuv420p", str(out)]
    subprocess.run(cmd, check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("parts", nargs="+")
    ap.add_argument("--size", default="640x360", help="WxH of the workout")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--loop-to", type=float, default=0.0, help="repeat the parts until this many seconds")
    args = ap.parse_args()
    if common.ROOT in args.out.resolve().parents:
        raise SystemExit("write workouts outside the repository (they are made of ../shared clips)")
    parts = parts_of(args.parts)
    if args.loop_to:
        from vidclf.video import probe

        one = sum(
            ((e - s) if s is not None and e is not None else probe(p).duration_s) + pause for p, s, e, pause in parts
        )
        parts = parts * max(1, int(-(-args.loop_to // one)))
    w, h = (int(v) for v in args.size.split("x"))
    print(join(args.out, parts, size=(w, h), fps=args.fps))


if __name__ == "__main__":
    main()
