"""The workout engine's speed: a live step's latency and a file's speed against real time, with peak memory.

    python -m bench.engine_speed live CLIP [--fps 10] [--seconds 30]
    python -m bench.engine_speed file CLIP [CLIP ...]

``live`` feeds CLIP's frames to one :class:`vidclf.engine.WorkoutEngine` the way the webcam stream does (at
``--fps`` a second, each frame pushed as it would arrive) and reports each push's latency (median, 95th
percentile) and the frames a second one engine can take. ``file`` runs :func:`vidclf.engine.run_file` on each
clip in a fresh process and reports its speed as a multiple of real time and the process's peak resident
memory (for the target: the same peak for a 1-minute and a 10-minute clip; make long clips with
``python -m bench.join_workout --loop-to 600``, outside the repository). Torch runs on ``--threads`` threads
(2: the cores a Space has). The machine may be shared: say so beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import common


def _predictor(threads: int):
    import torch

    from vidclf.predict import Predictor

    torch.set_num_threads(threads)
    return Predictor(common.ROOT / "weights" / "fusion.pt", precision="auto")


def live(clip: Path, *, fps: float, seconds: float, threads: int) -> dict:
    from vidclf.engine import WorkoutEngine
    from vidclf.video import iter_frames, probe

    predictor = _predictor(threads)
    info = probe(clip)
    step = max(1, round(info.fps / fps))
    times: list[float] = []
    statuses: dict[str, int] = {}
    with WorkoutEngine(predictor) as engine:
        for i, frame in enumerate(iter_frames(clip)):
            t = i / info.fps
            if t > seconds:
                break
            if i % step:
                continue
            t0 = time.perf_counter()
            state = engine.push(frame, t)
            times.append(time.perf_counter() - t0)
            statuses[state.status] = statuses.get(state.status, 0) + 1
        log = engine.finish()
    times.sort()
    return {
        "clip": clip.name,
        "frame": f"{info.width}x{info.height}",
        "pushed_fps": round(info.fps / step, 2),
        "frames": len(times),
        "median_ms": round(1000 * statistics.median(times), 1),
        "p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(1000 * times[-1], 1),
        "frames_per_s": round(len(times) / sum(times), 1),
        "statuses": statuses,
        "reps": log.reps,
    }


def one_file(clip: Path, *, threads: int) -> dict:
    from vidclf.engine import run_file
    from vidclf.video import probe

    predictor = _predictor(threads)
    t0 = time.perf_counter()
    log = run_file(predictor, clip)
    wall = time.perf_counter() - t0
    info = probe(clip)
    return {
        "clip": clip.name,
        "frame": f"{info.width}x{info.height}",
        "seconds": round(log.duration_s, 1),
        "wall_s": round(wall, 1),
        "x_real_time": round(log.duration_s / wall, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "segments": len(log.segments),
        "reps": log.reps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("live", "file", "_one"))
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.mode == "live":
        for clip in args.clips:
            print(json.dumps(live(clip, fps=args.fps, seconds=args.seconds, threads=args.threads)))
    elif args.mode == "_one":
        print(json.dumps(one_file(args.clips[0], threads=args.threads)))
    else:
        for clip in args.clips:  # a fresh process each: its peak memory is that clip's
            cmd = [sys.executable, "-m", "bench.engine_speed", "_one", str(clip), "--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=common.ROOT)
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
