from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VIDCLF_SHARED", ROOT.parent / "shared"))
UCF_ROOT = SHARED / "ucf101"
CLIPS = SHARED / "clips"

needs_shared = pytest.mark.skipif(not UCF_ROOT.is_dir(), reason=f"real data not found at {SHARED} (set VIDCLF_SHARED)")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small SYNTHETIC dataset in UCF-101 layout: 6 classes x 6 groups x 3 clips, 96x96, 32 frames."""
    from vidclf.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synth"), groups=6, clips_per_group=3, seed=0)


@pytest.fixture(scope="session")
def jumping_jack_clip() -> Path:
    if not UCF_ROOT.is_dir():
        pytest.skip("real data not available")
    return sorted((UCF_ROOT / "UCF-101" / "JumpingJack").glob("*.avi"))[0]


ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def app_data_root(tmp_path_factory) -> Path:
    """The one server data folder the app of :func:`app_url` lets the Train tab read (tests write sets into it)."""
    return tmp_path_factory.mktemp("app_data")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, app_data_root):
    """The app, served from a subprocess with training on, its runs in a temporary folder."""
    from bench.app_server import AppServer

    ARTIFACTS.mkdir(exist_ok=True)
    runs = tmp_path_factory.mktemp("runs")
    env = {"VIDCLF_ENABLE_TRAINING": "1", "VIDCLF_DATA_ROOTS": str(app_data_root)}
    log = ARTIFACTS / f"app{os.environ.get('PYTEST_XDIST_WORKER', '')}.log"  # a server per worker under xdist
    with AppServer(runs, log, **env) as server:
        yield server.url


@pytest.fixture(scope="session")
def synthetic_pose_run(synth_root, tmp_path_factory):
    """A pose-stream model trained on the SYNTHETIC set's known landmarks (no pose estimator): its run folder."""
    from vidclf.config import apply_overrides, load_config
    from vidclf.data.dataset import training_data
    from vidclf.training.loop import fit

    out = tmp_path_factory.mktemp("pose_run")
    cfg = apply_overrides(
        load_config(),
        {
            "data_root": str(synth_root),
            "num_classes": 0,
            "backbone": "pose",
            "num_frames": 16,
            "lr": 3e-3,
            "batch_size": 8,
            "epochs": 25,
            "lr_schedule": "cosine",
            "out_dir": str(out),
            "cache_dir": str(out / "cache"),
            "device": "cpu",
        },
    )
    data = training_data(cfg)
    fit(cfg, data.train, data.val, data.classes, show_progress=False)
    return out


def train_command(synth_root, out, cache, *extra, launcher=(sys.executable,)) -> list[str]:
    """The command line that trains on the synthetic set into ``out`` (a subprocess: kills and torchrun need one)."""
    paths = ["--data-root", str(synth_root), "--out-dir", str(out), "--cache-dir", str(cache)]
    return [*launcher, str(ROOT / "train_cli.py"), "train", *paths, *map(str, extra)]


@pytest.fixture
def training_log():
    """The lines the training loop logs (logger "vidclf.training.loop") while the test runs."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("vidclf.training.loop")
    handler, level = Collect(level=logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)
