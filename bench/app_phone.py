"""What a person waits for in the app on phone-sized clips, beside the predictor's own time, in one run.

    python -m bench.app_phone [--clips DIR] [--rounds 3] [--kinds 720p 1080x1920 hevc1080p] [--no-fresh]
        [--no-client] [--before TREE] [--two-people]

For each 15 s phone clip (``bench.phone_latency``'s 1280x720 and 1080x1920 H.264 MP4, and ``hevc1080p``: a
phone camera's own HEVC ``.mov``, which a browser cannot play, so the app makes the player a copy; all made
once outside the repository) and each round, interleaved:

- ``predictor``: ``Predictor.predict`` warm, in a separate process that loads and warms the default model as
  ``app.py`` does (``PredictorPool``, ``warm_up``);
- ``app fn``: in that process, right after, ``app.predict`` itself (the clip looked up and probed, the
  prediction, the skeleton frames written, the figures): the server's work for one request, less Gradio;
- ``client``: ``gradio_client``'s ``/predict`` on a running app (the upload included, the result's files not
  downloaded);
- ``browser``: Chromium (Playwright, a 1280x900 desktop page loaded before the clock starts): the clip set in
  the upload box, until the answer and its details have replaced what was there, as a person waits; then
  until the player's first picture (the upload itself, or its copy). ``upload``: the file posted, from the
  page's resource timing; ``then the answer``: the upload's end to the answer on the page.

Each line gives the wall seconds, the CPU seconds of the process doing the work (the worker's, or the app
server's with its children, read from ``/proc``; also the server's until it is quiet again, its player copy
included) and the load average; for the browser also Chromium's CPU, all its processes (here it shares the
server's 2 cores; a person's browser does not), and Gradio's own timings of the prediction
(``GRADIO_PROFILING=1``: queue, preprocess, the function, postprocess). Each measurement starts once every
server is quiet. ``--before TREE``: that tree's app too (a ``git archive`` of a commit, outside the
repository), the browser's wait on both, which goes first alternating by round. A fresh server's first request
(the model loaded and warmed at start, as ``app.py`` does), by the browser, one server per clip, comes first.
``--two-people``: person A uploads the HEVC clip and, the moment A's answer shows (when A's player copy
starts), person B a 720p clip: B's wait on each tree. The summary gives the medians and the ratios to the
predictor. The machine may be shared: compare the ratios, measured in the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.app_server import AppServer
from bench.common import ROOT
from bench.phone_latency import SOURCE, make_clip

_TICK = os.sysconf("SC_CLK_TCK")
# the answer and its details once the details say the time taken (or the message that replaced them)
DETAILS = (
    "() => { const t = ['#answer', '#answer-details'].map(s => { const e = document.querySelector(s + ' .prose');"
    " return e ? e.textContent : ''; }); return / s in all\\.|Could not use/.test(t.join('|')) ? t.join('|') : ''; }"
)


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of process ``pid`` and every process under it (Linux ``/proc``), waited-for
    children included."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15]) / _TICK
        todo.extend(children.get(p, []))
    return total


def worker() -> None:
    """The in-process side: the default model loaded and warmed as ``app.py`` does; a clip's path on each line
    of stdin -> one JSON line: the predictor's call and then ``app.predict``'s, wall and CPU seconds."""
    import app

    entry = app.models()[0]
    predictor = app.POOL.get(entry.path)
    predictor.warm_up()
    print(json.dumps({"label": entry.label}), flush=True)
    for line in sys.stdin:
        clip = line.strip()
        t0, c0 = time.perf_counter(), time.process_time()
        p = predictor.predict(clip)
        t1, c1 = time.perf_counter(), time.process_time()
        out = app.predict(clip, entry.label, progress=lambda *a, **k: None)
        t2, c2 = time.perf_counter(), time.process_time()
        print(
            json.dumps(
                {
                    "predictor": t1 - t0,
                    "predictor_cpu": c1 - c0,
                    "app_fn": t2 - t1,
                    "app_fn_cpu": c2 - c1,
                    "label": p.label,
                    "answer": out[1].strip().lstrip("#").strip().splitlines()[0].strip(),
                }
            ),
            flush=True,
        )


class Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.app_phone", "--worker"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        )
        self.label = self._read()["label"]

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the worker exited")
            if line.startswith("{"):
                return json.loads(line)

    def run(self, clip: Path) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{clip}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


def traces(server: AppServer) -> dict[str, dict]:
    """Gradio's own timings of the requests since the last call (``GRADIO_PROFILING=1``), summed by function:
    ``{fn: {"queue_wait": ms, "preprocess": ms, "fn_call": ms, "postprocess": ms, "total": ms, "upload": ms}}``."""
    import httpx

    base = f"{server.url}gradio_api/profiling"
    got = httpx.get(f"{base}/traces").json()
    httpx.post(f"{base}/clear")
    out: dict[str, dict] = {}
    for t in got:
        d = out.setdefault(t["fn_name"] or "?", {})
        for k in ("queue_wait", "preprocess", "fn_call", "postprocess", "total", "upload"):
            d[k] = d.get(k, 0.0) + t.get(f"{k}_ms", 0.0)
    return out


def by_client(server: AppServer, clip: Path, label: str) -> dict:
    from gradio_client import Client, handle_file

    client = Client(server.url, verbose=False, download_files=False)
    c0, t0 = tree_cpu(server.proc.pid), time.perf_counter()
    out = client.predict(handle_file(str(clip)), label, api_name="/predict")
    wall, cpu = time.perf_counter() - t0, tree_cpu(server.proc.pid) - c0
    fn = float(re.search(r"([\d.]+) s in all", out[2]).group(1))
    return {"wall": wall, "cpu": cpu, "fn": fn, "answer": _title(out[1])}


# when the player first has a picture to show (the upload itself, or the copy made for it)
PLAYER_JS = """() => { window.vidclfPlayer = null; document.addEventListener("loadeddata", e => {
  const inBox = e.target.closest && e.target.closest("#clip");
  if (window.vidclfPlayer === null && inBox) window.vidclfPlayer = performance.now();
}, true); return performance.now(); }"""


def by_browser(browser, server: AppServer, clip: Path) -> dict:
    """One upload in a fresh desktop page, timed from the file set in the box to the answer on the page, and
    to the first picture in the player."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url)
        page.wait_for_selector("#clip input[type=file]", state="attached", timeout=60_000)
        page.locator("#details").get_by_text("Details").click()  # the time taken is in the details
        page.wait_for_timeout(300)
        chromium = browser_pid()
        s0, c0 = tree_cpu(server.proc.pid), tree_cpu(chromium) if chromium else 0.0
        t0 = time.perf_counter()
        start = page.evaluate(PLAYER_JS)
        page.locator("#clip input[type=file]").set_input_files(str(clip))
        page.wait_for_function(f"() => ({DETAILS})()", timeout=300_000, polling=20)
        wall = time.perf_counter() - t0
        seen = page.evaluate("() => performance.now()")
        cpu = tree_cpu(server.proc.pid) - s0
        chromium_cpu = (tree_cpu(chromium) - c0) if chromium else float("nan")
        try:
            page.wait_for_function("() => window.vidclfPlayer !== null", timeout=120_000, polling=50)
            player = (page.evaluate("() => window.vidclfPlayer") - start) / 1000
        except PlaywrightTimeout:
            player = float("nan")
        entries = page.evaluate(
            "() => performance.getEntriesByType('resource').map(e => ({name: e.name, start: e.startTime,"
            " end: e.responseEnd}))"
        )
        details = page.evaluate(f"() => ({DETAILS})()")
    finally:
        context.close()
    upload = [e for e in entries if "/upload" in e["name"] and e["start"] >= start]
    up_end = min((e["end"] for e in upload), default=start)
    fn = re.search(r"([\d.]+) s in all", details)
    return {
        "wall": wall,
        "cpu": cpu,
        "chromium_cpu": chromium_cpu,
        "upload": (up_end - start) / 1000,
        "answer": (seen - up_end) / 1000,
        "player": player,
        "fn": float(fn.group(1)) if fn else float("nan"),
        "title": _title(details.split("|")[0]),
    }


def _title(markdown: str) -> str:
    return markdown.strip().lstrip("#").strip().splitlines()[0].strip()


def settle(servers: list[AppServer], limit_s: float = 120.0) -> float:
    """Wait until no server (nor anything it started, a player's copy) works: under 10 % of a core for a
    second. Returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        c0 = [tree_cpu(s.proc.pid) for s in servers]
        time.sleep(1)
        if all(tree_cpu(s.proc.pid) - c < 0.1 for s, c in zip(servers, c0)):
            break
    return time.perf_counter() - t0


_BROWSER_PID: list[int] = []


def browser_pid() -> int | None:
    return _BROWSER_PID[0] if _BROWSER_PID else None


def _find_chromium(before: set[int]) -> None:
    """The browser's top process: the newest ``chromium`` process that is not a child of another."""
    pids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in before:
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            pids[int(entry)] = (name, int(stat[stat.rindex(")") + 2 :].split()[1]))
    tops = [p for p, (name, parent) in pids.items() if "chrom" in name and pids.get(parent, ("",))[0].find("chrom") < 0]
    if tops:
        _BROWSER_PID[:] = [min(tops)]


def make_hevc_clip(out: Path, seconds: float) -> Path:
    """A phone camera's own format: HEVC in a QuickTime ``.mov`` (``hvc1``, what an iPhone records by
    default), 1920x1080 at 30 fps and 10 Mbit/s, made from the 720p kind's real squat clip; made once. A
    browser cannot play it: the app makes the player an H.264 copy."""
    if out.exists():
        return out
    import imageio_ffmpeg

    src = ROOT.parent / "shared" / SOURCE
    vf = "scale=1920:1080:force_original_aspect_ratio=decrease,pad=1920:1080:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(src)]
    cmd += ["-t", str(seconds), "-vf", vf + ",noise=alls=5:allf=t", "-c:v", "libx265", "-preset", "ultrafast"]
    cmd += ["-tag:v", "hvc1", "-b:v", "10M", "-maxrate", "10M", "-bufsize", "10M", "-pix_fmt", "yuv420p"]
    cmd += ["-x265-params", "log-level=error"]
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*cmd, str(out.with_suffix(".part.mov"))], check=True)
    out.with_suffix(".part.mov").rename(out)
    return out


def phone_clip(folder: Path, kind: str) -> Path:
    if kind == "hevc1080p":
        return make_hevc_clip(folder / "squat_hevc1080p_15s.mov", 15)
    return make_clip(folder / f"squat_{kind}_15s.mp4", kind, 15)


def _open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    page.wait_for_selector("#clip input[type=file]", state="attached", timeout=60_000)
    page.locator("#details").get_by_text("Details").click()
    page.wait_for_timeout(300)
    return page


def _answered(page, clip: Path) -> float:
    t0 = time.perf_counter()
    page.locator("#clip input[type=file]").set_input_files(str(clip))
    page.wait_for_function(f"() => ({DETAILS})()", timeout=300_000, polling=20)
    return time.perf_counter() - t0


def two_people(browser, servers: dict[str, AppServer], first: Path, second: Path, rounds: int) -> None:
    """Person A uploads ``first`` (a clip the browser cannot play: its player gets a copy); the moment A's answer
    shows, which is when A's copy starts, person B uploads ``second``. B's wait, A's wait, and A's player."""
    print(f"two people: A uploads {first.name}; at A's answer B uploads {second.name}")
    for server in servers.values():
        page = _open_page(browser, server.url)
        _answered(page, second)
        page.context.close()
    for rnd in range(rounds):
        for tree in list(servers)[:: 1 if rnd % 2 == 0 else -1]:
            server = servers[tree]
            settle(list(servers.values()))
            a, b = _open_page(browser, server.url), _open_page(browser, server.url)
            a.evaluate(PLAYER_JS)
            t0 = time.perf_counter()
            waited_a = _answered(a, first)
            waited_b = _answered(b, second)
            a.wait_for_function("() => window.vidclfPlayer !== null", timeout=200_000, polling=50)
            player = time.perf_counter() - t0
            print(
                f"  round {rnd + 1} {tree:<7} A's answer {waited_a:6.2f} s; B's answer {waited_b:6.2f} s; A's player's "
                f"first picture {player:6.2f} s; load {os.getloadavg()[0]:.1f}"
            )
            a.context.close()
            b.context.close()


def _line(name: str, d: dict) -> str:
    text = f"    {name:<16} {d['wall']:6.2f} s  CPU {d['cpu']:6.2f} s  load {d['load']:4.1f}"
    if "upload" in d:
        text += (
            f"  (upload {d['upload']:.2f}, then the answer {d['answer']:.2f}; the player's first picture "
            f"{d['player']:.2f}; server CPU until quiet {d['cpu_quiet']:.2f} s; Chromium CPU {d['chromium_cpu']:.2f} s)"
        )
    if "gradio" in d:
        g = d["gradio"]
        text += (
            f"  [Gradio: queue {g['queue_wait'] / 1000:.2f}, preprocess {g['preprocess'] / 1000:.2f}, function "
            f"{g['fn_call'] / 1000:.2f}, postprocess {g['postprocess'] / 1000:.2f}]"
        )
    return text


def _prediction_trace(found: dict[str, dict]) -> dict:
    """The prediction's own trace: the function that ran longest."""
    return max(found.values(), key=lambda d: d["fn_call"]) if found else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=Path, default=Path("/tmp/vidclf-phone-clips"))
    ap.add_argument("--kinds", nargs="+", default=["720p", "1080x1920", "hevc1080p"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh servers' first requests")
    ap.add_argument("--no-client", action="store_true", help="skip gradio_client")
    ap.add_argument(
        "--before", type=Path, help="another tree (git archive of a commit, outside the repository): its app too"
    )
    ap.add_argument(
        "--two-people",
        action="store_true",
        help="instead: B's wait while A's player copy (HEVC) is made, per tree (with --before)",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker()
        return
    from playwright.sync_api import sync_playwright

    clips = {kind: phone_clip(args.clips, kind) for kind in args.kinds}
    trees = {"app": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    print(f"phone clips in {args.clips}; trees {trees}; load average {os.getloadavg()[0]:.1f}")
    results: dict[str, dict[str, list[dict]]] = {kind: {} for kind in clips}
    fresh: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw, ExitStack() as stack:
        before = {int(e) for e in os.listdir("/proc") if e.isdigit()}
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        stack.callback(browser.close)
        _find_chromium(before)
        if args.two_people:
            servers = {
                tree: stack.enter_context(AppServer(Path(tmp), Path(tmp) / f"{tree}.log", root=root))
                for tree, root in trees.items()
            }
            two_people(
                browser, servers, phone_clip(args.clips, "hevc1080p"), phone_clip(args.clips, "720p"), args.rounds
            )
            return
        if not args.no_fresh:
            print("a fresh server's first request, by the browser:")
            for kind, clip in clips.items():
                for tree, root in list(trees.items())[:1]:  # this tree's
                    t0 = time.perf_counter()
                    with AppServer(Path(tmp), Path(tmp) / f"fresh-{tree}-{kind}.log", root=root) as server:
                        started = time.perf_counter() - t0
                        c0 = tree_cpu(server.proc.pid)
                        r = by_browser(browser, server, clip) | {"load": os.getloadavg()[0]}
                        settle([server])
                        r["cpu_quiet"] = tree_cpu(server.proc.pid) - c0
                    fresh[f"{kind} {tree}"] = r
                    print(f"  {kind} {tree}: the server started in {started:.1f} s")
                    print(_line("first answer", r))
        work = Worker()
        stack.callback(work.close)
        servers = {
            tree: stack.enter_context(AppServer(Path(tmp), Path(tmp) / f"{tree}.log", root=root, GRADIO_PROFILING="1"))
            for tree, root in trees.items()
        }
        for clip in clips.values():  # each clip once in each process before the timed rounds
            work.run(clip)
            for server in servers.values():
                by_client(server, clip, work.label)
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}:")
            order = list(servers.items())[:: 1 if rnd % 2 == 0 else -1]  # which tree goes first alternates
            for kind, clip in clips.items():
                print(f"  {kind}")
                w = work.run(clip)
                load = os.getloadavg()[0]
                rows = {
                    "predictor": {"wall": w["predictor"], "cpu": w["predictor_cpu"], "load": load},
                    "app fn": {"wall": w["app_fn"], "cpu": w["app_fn_cpu"], "load": load},
                }
                settle(list(servers.values()))
                titles = {w["answer"]}
                for tree, server in order:
                    suffix = "" if len(servers) == 1 else f" {tree}"
                    if not args.no_client and tree == "app":  # the API's path has no player: this tree's only
                        settle(list(servers.values()))
                        traces(server)
                        r = by_client(server, clip, work.label) | {"load": os.getloadavg()[0]}
                        rows[f"client{suffix}"] = r | {"gradio": _prediction_trace(traces(server))}
                        titles.add(r["answer"])
                    settle(list(servers.values()))
                    traces(server)
                    c0 = tree_cpu(server.proc.pid)
                    r = by_browser(browser, server, clip) | {"load": os.getloadavg()[0]}
                    r["quiet_after"] = settle(list(servers.values()))
                    r["cpu_quiet"] = tree_cpu(server.proc.pid) - c0
                    rows[f"browser{suffix}"] = r | {"gradio": _prediction_trace(traces(server))}
                    titles.add(r["title"])
                for name, d in rows.items():
                    results[kind].setdefault(name, []).append(d)
                    print(_line(name, d))
                if len(titles) > 1:
                    print(f"    answers differ: {titles}")
    print("medians (wall s, CPU s of the process doing the work; x = wall / the predictor's wall):")
    for kind, rows in results.items():
        base = statistics.median(d["wall"] for d in rows["predictor"])
        print(f"  {kind}")
        for name, ds in rows.items():
            wall = statistics.median(d["wall"] for d in ds)
            cpu = statistics.median(d["cpu"] for d in ds)
            print(f"    {name:<16} {wall:6.2f} s (CPU {cpu:6.2f} s)  x{wall / base:.2f}")
        if "browser before" in rows:
            pairs = [b["wall"] / a["wall"] for a, b in zip(rows["browser app"], rows["browser before"])]
            print(f"    the browser's wait, before / this tree, pair by pair: {', '.join(f'{x:.2f}' for x in pairs)}")
        for name, r in fresh.items():
            if name.startswith(f"{kind} "):
                print(
                    f"    a fresh server's first answer ({name.split()[1]}) {r['wall']:.2f} s  x{r['wall'] / base:.2f}"
                )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
