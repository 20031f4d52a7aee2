"""Latency of the default model on phone-sized clips, workout log included: cold (a fresh server: the model
loaded at start, then the first request) and warm, per stage.

    python -m bench.phone_latency [--clips DIR] [--repeats 3] [--seconds 5 15 60] [--no-cold]

The clips are made once into ``--clips`` (outside the repository: they are made of a ../shared clip) with the
ffmpeg that imageio-ffmpeg ships: a real squat clip scaled and padded to 1280x720 landscape and 1080x1920
portrait, looped to 5, 15 and 60 s, 30 fps H.264 (High profile) at a phone's bit rate (8 Mbit/s at 720p,
16 at 1080x1920: a light film grain keeps the encoder from compressing the upscaled picture to nothing, so
decoding costs what a phone's clip costs).

``cold`` runs in a fresh process: ``start`` is importing vidclf, loading the checkpoint and
:meth:`vidclf.predict.Predictor.warm_up` (what the app does at start), ``first`` the first request after it.
``warm``: the median of ``--repeats`` later calls in one process. ``CPU``: the process's CPU seconds for the
call, all threads (MediaPipe's and torch's included): on a shared machine the wall time waits for other
people's work, the CPU time much less. Stages are exclusive times (a stage's
own time, less the stages it calls), medians over the warm calls: ``decode`` (OpenCV/FFmpeg), ``resize``
(colour conversion, resizing, the grey pictures), ``blazepose`` (static image mode: the pose stream's
frames), ``tracking`` (BlazePose's tracking mode: the engine's 10 a second), ``graph`` (building a MediaPipe
graph), ``motion_cnn`` (EfficientNet-Lite0), ``lstm`` (the pose LSTMs and the motion head), ``engine`` (its
decisions, less the above), ``count`` (the repetition counters); ``other`` is the rest of the wall time.
Stages on other threads (the workout engine behind the decoder, BlazePose's static graph beside it) add to
their stage but not to the wall time: stages can sum to more than the wall (``other`` is then negative).
Torch runs on 2 threads (a Space's cores), the engine's thread on one. The machine may be shared: say so
beside the numbers.

``--by-thread``: the warm calls' CPU seconds by thread (medians), read from ``/proc`` (Linux): ``decoder``
(the request's own thread: decoding, the pictures, the pixel streams), ``ffmpeg`` (FFmpeg's frame threads),
``engine`` (the workout engine's thread), ``blazepose`` (MediaPipe's graph threads, static and tracking),
``other`` (the rest: OpenMP's and OpenCV's pool threads, the static pass's feeder). Threads that end within a
call are sampled every 20 ms, so the last 20 ms of theirs may be missed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bench import common

SOURCE = "real/positive/BodyWeightSquats/RJ-song__MediapipePy_movement_detect__squat.mp4"  # 1280x720 source
PORTRAIT_SOURCE = "real/positive/BodyWeightSquats/trutadan__bachelors-thesis__squat.mp4"  # 406x720 portrait
KINDS = {"720p": (1280, 720, "8M", SOURCE), "1080x1920": (1080, 1920, "16M", PORTRAIT_SOURCE)}
STAGES = ("decode", "resize", "blazepose", "tracking", "graph", "motion_cnn", "lstm", "engine", "count")


def make_clip(out: Path, kind: str, seconds: float) -> Path:
    """A phone-sized H.264 clip of ``seconds`` (see the module's docstring); made once."""
    if out.exists():
        return out
    import imageio_ffmpeg

    w, h, rate, source = KINDS[kind]
    src = common.UCF_ROOT.parent / source
    vf = f"scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(src)]
    cmd += ["-t", str(seconds), "-vf", vf + ",noise=alls=5:allf=t", "-c:v", "libx264", "-profile:v", "high"]
    cmd += ["-preset", "veryfast", "-b:v", rate, "-maxrate", rate, "-bufsize", rate, "-pix_fmt", "yuv420p"]
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*cmd, str(out.with_suffix(".part.mp4"))], check=True)
    out.with_suffix(".part.mp4").rename(out)
    return out


class Stages:
    """Exclusive time per stage: functions wrapped by :meth:`wrap` add their own time, less their callees'."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._local = threading.local()  # per thread, per active call: [start, time spent in callees]

    def reset(self) -> dict[str, float]:
        out, self.totals = dict(self.totals), defaultdict(float)
        return out

    def timed(self, stage: str, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            frame = [time.perf_counter(), 0.0]
            stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                stack.pop()
                spent = time.perf_counter() - frame[0]
                self.totals[stage] += spent - frame[1]
                if stack:
                    stack[-1][1] += spent

        return inner

    def wrap(self, owner: object, name: str, stage: str) -> None:
        fn = getattr(owner, name, None)
        if fn is not None:
            setattr(owner, name, self.timed(stage, fn))


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each of this process's threads so far: ``{tid: (name, seconds)}`` (Linux ``/proc``)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (stat[stat.index("(") + 1 : stat.rindex(")")], (int(fields[11]) + int(fields[12])) / _TICK)
    return out


class ThreadCPU:
    """CPU seconds by thread group over a call (see the module's docstring, ``--by-thread``)."""

    GROUPS = ("decoder", "ffmpeg", "engine", "blazepose", "other")

    def __init__(self) -> None:
        self._names: dict[int, str] = {}
        self._stop = threading.Event()

    def _group(self, tid: int, comm: str) -> str:
        if tid == threading.main_thread().native_id:
            return "decoder"
        if comm.startswith("av:"):
            return "ffmpeg"
        if comm.startswith("mediapipe"):
            return "blazepose"
        name = next((t.name for t in threading.enumerate() if t.native_id == tid), self._names.get(tid, ""))
        self._names[tid] = name
        return "engine" if name == "vidclf-engine" else "other"

    def measure(self, fn: Callable[[], object]) -> tuple[object, dict[str, float]]:
        start, last = _thread_cpu(), {}
        self._stop.clear()

        def poll() -> None:
            while not self._stop.is_set():
                now = _thread_cpu()
                for tid in now:
                    self._group(tid, now[tid][0])  # the Python name while the thread lives
                last.update(now)
                time.sleep(0.02)

        poller = threading.Thread(target=poll, name="bench-poller", daemon=True)
        poller.start()
        try:
            result = fn()
        finally:
            self._stop.set()
            poller.join()
        last.update(_thread_cpu())
        groups = dict.fromkeys(self.GROUPS, 0.0)
        for tid, (comm, cpu) in last.items():
            if tid != poller.native_id:
                groups[self._group(tid, comm)] += cpu - start.get(tid, (comm, 0.0))[1]
        return result, groups


class _TimedCapture:
    """An OpenCV capture whose decoding calls are timed (``decode``), the rest passed through."""

    def __init__(self, cap, stages: Stages):
        self._cap = cap
        for name in ("read", "grab", "retrieve"):
            setattr(self, name, stages.timed("decode", getattr(cap, name)))

    def __getattr__(self, name):
        return getattr(self._cap, name)


def instrument() -> Stages:
    """Wrap the functions of each stage (the names that exist in this version of vidclf)."""
    import vidclf.engine as engine
    import vidclf.models.pose as pose
    import vidclf.predict as predict
    import vidclf.reps as reps
    import vidclf.video as video

    st = Stages()
    opener = video._open
    video._open = lambda path: _TimedCapture(opener(path), st)  # type: ignore[assignment]
    for mod in (video, predict, engine):
        for name in ("resize_frame", "shrink_quick", "_to_rgb", "frame_signal", "grey_signal", "_thinned"):
            st.wrap(mod, name, "resize")
    st.wrap(reps, "frame_signal", "resize")
    st.wrap(reps, "grey_signal", "resize")
    st.wrap(engine.WorkoutEngine, "_resize", "resize")
    st.wrap(pose.PoseEstimator, "__call__", "blazepose")
    st.wrap(pose.PoseTracker, "__call__", "tracking")
    st.wrap(pose, "_mediapipe_pose", "graph")
    st.wrap(predict._Stream, "frame_features", "motion_cnn")
    st.wrap(predict._Stream, "head", "lstm")
    st.wrap(predict._Stream, "logits", "lstm")
    st.wrap(predict._Stream, "pixels", "resize")
    st.wrap(engine.WorkoutEngine, "_decide", "engine")
    st.wrap(reps.RepCounter, "update", "count")
    st.wrap(predict, "_one_set_counted_whole", "count")
    return st


def _motion_as_cnn(st: Stages) -> None:
    """The motion stream's ``logits`` on pixels runs its CNN: count it as ``motion_cnn``, not ``lstm``."""
    import vidclf.predict as predict

    plain = predict._Stream.logits.__wrapped__  # type: ignore[attr-defined]
    cnn, lstm = st.timed("motion_cnn", plain), st.timed("lstm", plain)
    predict._Stream.logits = lambda self, x: (lstm if self.pose else cnn)(self, x)  # type: ignore[assignment]


def _predictor(threads: int):
    import torch

    from vidclf.predict import Predictor

    torch.set_num_threads(threads)
    p = Predictor(common.ROOT / "weights" / "fusion.pt", precision="auto")
    warm_up = getattr(p, "warm_up", None)
    if warm_up is not None:
        warm_up()
    return p


def cold(clip: Path, threads: int) -> dict:
    """In a fresh process: the server's start (imports, the model, its warm-up) and its first request."""
    t0 = time.perf_counter()
    st = instrument()
    _motion_as_cnn(st)
    p = _predictor(threads)
    start = time.perf_counter() - t0
    st.reset()
    t1, c1 = time.perf_counter(), time.process_time()
    pred = p.predict(clip)
    first, cpu = time.perf_counter() - t1, time.process_time() - c1
    reps = pred.reps.count if pred.reps else None
    return {"start": start, "first": first, "cpu": cpu, "stages": st.reset(), "reps": reps}


def warm(clips: list[Path], repeats: int, threads: int, *, by_thread: bool = False) -> dict[str, dict]:
    st = instrument()
    _motion_as_cnn(st)
    p = _predictor(threads)
    out = {}
    per_thread = ThreadCPU()
    for clip in clips:
        p.predict(clip)  # this clip's first call
        st.reset()
        walls, cpus, stages, groups = [], [], [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            if by_thread:
                pred, g = per_thread.measure(functools.partial(p.predict, clip))
                groups.append(g)
            else:
                pred = p.predict(clip)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            stages.append(st.reset())
        med = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in STAGES}
        out[clip.name] = {
            "wall": statistics.median(walls),
            "walls": walls,
            "cpu": statistics.median(cpus),
            "stages": med,
            "label": pred.label,
            "reps": pred.reps.count if pred.reps else None,
            "segments": len(pred.workout.segments) if pred.workout else None,
            "threads": {k: statistics.median(g[k] for g in groups) for k in ThreadCPU.GROUPS} if groups else None,
        }
    return out


def _row(name: str, d: dict, wall: float) -> str:
    parts = "  ".join(f"{k} {d.get(k, 0.0):5.2f}" for k in STAGES if d.get(k, 0.0) >= 0.005)
    other = wall - sum(d.get(k, 0.0) for k in STAGES)
    return f"  {name:<26} {parts}  other {other:5.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path("/tmp/vidclf-phone-clips"))
    ap.add_argument("--seconds", type=float, nargs="+", default=[5, 15, 60])
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--by-thread", action="store_true", help="the warm calls' CPU by thread (Linux)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(cold(args.child, args.threads)))
        return
    if common.ROOT in args.clips.resolve().parents or args.clips.resolve() == common.ROOT:
        raise SystemExit("make the clips outside the repository (they are made of ../shared clips)")
    clips = [make_clip(args.clips / f"squat_{kind}_{s:g}s.mp4", kind, s) for kind in args.kinds for s in args.seconds]
    print(f"phone clips in {args.clips}; torch on {args.threads} threads; load average {os.getloadavg()[0]:.1f}")
    if not args.no_cold:
        print("cold (a fresh process: start = imports + model + warm-up; first = the first request):")
        for clip in clips:
            run = subprocess.run(
                [sys.executable, "-m", "bench.phone_latency", "--child", str(clip), "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                cwd=common.ROOT,
                check=True,
            )
            c = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"  {clip.name:<26} start {c['start']:5.2f} s  first request {c['first']:5.2f} s "
                f"(CPU {c['cpu']:5.2f} s)  reps {c['reps']}"
            )
            print(_row("  (its stages)", c["stages"], c["first"]))
    print(f"warm (median of {args.repeats} calls; stages in seconds, exclusive):")
    results = warm(clips, args.repeats, args.threads, by_thread=args.by_thread)
    for name, r in results.items():
        walls = ", ".join(f"{w:.2f}" for w in r["walls"])
        duration = float(name.rsplit("_", 1)[1].removesuffix("s.mp4"))
        print(
            f"  {name:<26} {r['wall']:5.2f} s ({walls}); CPU {r['cpu']:5.2f} s; "
            f"{duration / r['wall']:4.1f}x real time; {r['label']}, {r['reps']} reps, {r['segments']} segments"
        )
        print(_row("", r["stages"], r["wall"]))
        if r["threads"]:
            print("  CPU by thread: " + "  ".join(f"{k} {v:5.2f}" for k, v in r["threads"].items()))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
