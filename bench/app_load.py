"""Load on the running app: requests per second, p50/p95 latency, and the server's memory over many requests.

Starts app.py on a free localhost port, sends ``--requests`` predictions through gradio_client with
``--clients`` in flight at once (a real clip, the custom model), and samples the server's RSS.

    python -m bench.app_load [--requests 300] [--clients 4] [--model custom]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.app_server import AppServer
from bench.common import real_clips


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    from gradio_client import Client, handle_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--model", default="custom")
    args = ap.parse_args()
    clip = handle_file(str(real_clips(50)[7]))
    with tempfile.TemporaryDirectory() as tmp, AppServer(Path(tmp), Path(tmp) / "app.log") as server:
        pid = server.proc.pid
        client = Client(server.url, verbose=False, download_files=False)
        client.predict(clip, args.model, api_name="/predict")  # warm: model loaded
        rss = [(0, rss_mb(pid))]
        latencies: list[float] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))
        errors = []

        def worker():
            c = Client(server.url, verbose=False, download_files=False)
            for _ in counter:
                t0 = time.perf_counter()
                try:
                    c.predict(clip, args.model, api_name="/predict")
                except Exception as e:
                    errors.append(str(e))
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    if len(latencies) % 50 == 0:
                        rss.append((len(latencies), rss_mb(pid)))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    lat = sorted(latencies)
    print(
        f"app load: {args.requests} predictions ({args.model} model, a real 320x240 clip), "
        f"{args.clients} clients at once"
    )
    print(
        f"  throughput {args.requests / wall:.2f} requests/s; latency p50 {1000 * statistics.median(lat):.0f} ms, "
        f"p95 {1000 * lat[int(0.95 * (len(lat) - 1))]:.0f} ms; errors {len(errors)}"
    )
    print("  server RSS (MB) after n requests: " + ", ".join(f"{n}: {m:.0f}" for n, m in rss))


if __name__ == "__main__":
    main()
