"""A training process killed with SIGKILL leaves loadable checkpoints, and --resume finishes the run."""

import json
import signal
import subprocess
import time

from conftest import train_command
from vidclf.checkpoint import load_checkpoint

ARGS = "--num-frames 6 --img-size 48 --lr 1e-3 --no-progress --classes SynthWave SynthSquat --no-augment".split()


EPOCHS = 8  # the kill lands 0.1 s after epoch 2 is recorded; an epoch here takes 0.2-2 s


def _epochs_done(history_file) -> int:
    try:
        return len(json.loads(history_file.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or caught mid-write
        return 0


def test_sigkill_mid_training_then_resume(synth_root, tmp_path):
    out = tmp_path / "run"
    cmd = train_command(synth_root, out, tmp_path / "cache", "--epochs", EPOCHS, *ARGS)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while _epochs_done(out / "history.json") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.1)  # into the next epoch, maybe mid-write of its checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read()
    last = load_checkpoint(out / "last.pt")  # never half-written
    best = load_checkpoint(out / "best.pt")
    assert 2 <= last.epoch < EPOCHS and best.epoch <= last.epoch

    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"after epoch {last.epoch}" in r.stdout
    final = load_checkpoint(out / "last.pt")
    assert final.epoch == EPOCHS
    assert load_checkpoint(out / "best.pt").epoch == final.train_state["best_epoch"]
    assert [h["epoch"] for h in final.history] == list(range(1, EPOCHS + 1))
    assert final.history[: last.epoch] == last.history  # the killed run's epochs are kept as they were
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == list(range(1, EPOCHS + 1))
    assert list(out.glob(".*.tmp")) == []  # a write the kill cut short is swept away by the resumed run
