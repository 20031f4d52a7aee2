"""torchrun with 2 CPU processes (gloo) gives the same model as one process with the same global batch."""

import os
import subprocess
import sys

import torch

from conftest import ROOT, train_command
from vidclf.checkpoint import load_checkpoint
from vidclf.predict import Predictor

# A frozen backbone keeps BatchNorm out of training: per-rank BatchNorm statistics over half a batch would
# differ from one process's by design, everything else must match.
ARGS = (
    "--num-frames 6 --img-size 48 --lr 1e-3 --no-progress --no-augment --freeze-backbone --batch-size 4 --epochs 1 "
    "--classes SynthWave SynthSquat SynthWalk SynthRaiseArms"
).split()


def train(synth_root, out, cache, launcher):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = train_command(synth_root, out, cache, *ARGS, launcher=launcher)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_two_process_torchrun_matches_one_process(synth_root, tmp_path):
    train(synth_root, tmp_path / "one", tmp_path / "cache1", [sys.executable])
    two = train(
        synth_root,
        tmp_path / "two",
        tmp_path / "cache2",
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
    )
    assert "2 processes" in two and two.count("epoch 1/1:") == 1  # rank 0 alone logs
    a, b = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    for key in a.state_dict:
        assert torch.allclose(a.state_dict[key].float(), b.state_dict[key].float(), atol=1e-5), key
    ha, hb = a.history[0], b.history[0]
    for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert abs(ha[k] - hb[k]) < 1e-4, (k, ha[k], hb[k])
    # the multi-process checkpoint is an ordinary one: the app's predictor loads it
    clip = next((synth_root / "UCF-101" / "SynthWave").glob("*.avi"))
    assert set(Predictor(tmp_path / "two" / "best.pt").predict(clip).probs) == {
        "SynthWave",
        "SynthSquat",
        "SynthWalk",
        "SynthRaiseArms",
    }
