"""Start app.py in a subprocess on a free localhost port: for the load benchmark, and the browser and client tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``root``'s app.py (this tree's by default: another tree's to compare two versions side by side)."""

    def __init__(self, runs_dir: Path, log_path: Path, root: Path = ROOT, **env: str):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PORT": str(self.port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "VIDCLF_RUNS_DIR": str(runs_dir),
            **env,
        }
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> AppServer:
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.root / "app.py")],
            cwd=self.root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("app.py did not start in 120 s")

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
