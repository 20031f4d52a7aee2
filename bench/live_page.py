"""Live mode as the page gets it: a real clip streamed into the app's live sessions (``vidclf.live``) at the
webcam stream's rate, in real time, without a browser. For each session: the engine's time a frame (median,
p95, max), how often the page gets a new picture (updates a second), how far behind the camera that picture
is, and what building and encoding it costs (the skeleton drawn, JPEG as the page is sent it).

    python -m bench.live_page [--sessions 1 2] [--seconds 20] [--rate 10]
"""

from __future__ import annotations

import argparse
import io
import os
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import ROOT
from vidclf.engine import WorkoutEngine
from vidclf.live import LiveSessions
from vidclf.predict import Predictor
from vidclf.video import read_all_frames, probe

CLIP = Path(os.environ.get("VIDCLF_SHARED", ROOT.parent / "shared")) / (
    "real/positive/JumpingJack/RJ-song__MediapipePy_movement_detect__jumpingjacks.mp4"
)


def stream(sessions: LiveSessions, key: str, frames: np.ndarray, fps: float, rate: float, seconds: float) -> dict:
    """Send ``frames`` (looped) every 1/``rate`` s for ``seconds``, as the page does; what came back."""
    shown, lags, view_s = [], [], []
    t0 = time.perf_counter()
    for i in range(int(seconds * rate)):
        wait = t0 + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        frame = frames[int(i / rate * fps) % len(frames)]
        now = v0 = time.perf_counter()
        view = sessions.step(key, frame)
        if view is not None:
            Image.fromarray(view.image).save(io.BytesIO(), format="jpeg")
            view_s.append(time.perf_counter() - v0)
            shown.append(now)
            session = sessions.get(key)
            assert session is not None and session.latest is not None
            # how long ago the frame the page now shows came
            lags.append(sessions.clock() - session.started - session.latest[1].t_s)
    session = sessions.get(key)
    assert session is not None
    steps = np.asarray(session.step_s) * 1000
    settled = [t for t in shown if t - t0 > 3.0]  # after the model's first window
    return {
        "frames": session.frames,
        "dropped": session.dropped,
        "step_ms": np.percentile(steps, [50, 95, 100]),
        "updates_per_s": (len(settled) - 1) / (settled[-1] - settled[0]) if len(settled) > 1 else 0.0,
        "lag_s": np.nanpercentile(lags, [50, 95]) if lags else [np.nan, np.nan],
        "view_ms": 1000 * float(np.median(view_s)) if view_s else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=10.0, help="frames a second the page sends (stream_every 0.1)")
    args = ap.parse_args()
    if not CLIP.is_file():
        raise SystemExit(f"{CLIP} not found: set VIDCLF_SHARED to the folder holding real/")
    frames, fps = read_all_frames(CLIP), probe(CLIP).fps
    predictor = Predictor(ROOT / "weights" / "fusion.pt")
    with WorkoutEngine(predictor) as warm:  # the model's first call is not a session's cost
        for i in range(40):
            warm.push(frames[i % len(frames)], i / 10)
    print(
        f"live page: {CLIP.name} ({frames.shape[2]}x{frames.shape[1]}) sent at {args.rate:.0f} frames a second for "
        f"{args.seconds:.0f} s; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for n in args.sessions:
        sessions = LiveSessions(lambda: WorkoutEngine(predictor), max_sessions=n)
        results: dict[int, dict] = {}

        def run(k: int, sessions: LiveSessions = sessions, results: dict = results) -> None:
            results[k] = stream(sessions, str(k), frames, fps, args.rate, args.seconds)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sessions.close_all()
        for k, r in sorted(results.items()):
            print(
                f"  {n} session(s), #{k}: engine {r['step_ms'][0]:.0f} ms a frame (p95 {r['step_ms'][1]:.0f}, max "
                f"{r['step_ms'][2]:.0f}); page {r['updates_per_s']:.1f} updates a second, the picture "
                f"{r['lag_s'][0]:.2f} s behind (p95 {r['lag_s'][1]:.2f}); view + JPEG {r['view_ms']:.1f} ms; "
                f"{r['frames']} frames handled, {r['dropped']} dropped"
            )


if __name__ == "__main__":
    main()
