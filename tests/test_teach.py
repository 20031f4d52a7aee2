"""Teaching a trained model one more action from a few clips: the new class is recognised, the known classes'
scores stay the base model's own, and the taught model can be taught again."""

import dataclasses

import pytest
import torch

from conftest import ROOT
from vidclf.errors import DatasetError

BASE = ROOT / "weights" / "synthetic.pt"


@pytest.fixture(scope="module")
def side_steps(tmp_path_factory):
    """Four clips of a movement the shipped synthetic model never saw (arms overhead, stepping side to side)."""
    from vidclf.data.synthetic import render_clip
    from vidclf.video import write_video

    d = tmp_path_factory.mktemp("side")
    clip = lambda g: render_clip("SynthSideStep", g, 1, num_frames=40)  # noqa: E731
    return [write_video(d / f"side_{g}.mp4", clip(g), 25) for g in range(81, 85)]


@pytest.fixture(scope="module")
def taught(side_steps, tmp_path_factory):
    from vidclf.training.teach import teach

    out = tmp_path_factory.mktemp("taught") / "last.pt"
    return teach(BASE, "Side step", side_steps[:3], out, views=8), out


def test_a_model_learns_a_new_action_from_three_clips_and_keeps_the_others(taught, side_steps, synth_root):
    from vidclf.checkpoint import load_checkpoint
    from vidclf.predict import Predictor
    from vidclf.training.teach import anchors_path, read_anchors

    result, out = taught
    base, new = load_checkpoint(BASE), load_checkpoint(out)
    assert new.classes == (*base.classes, "Side step") and result["answered"] == 3
    # the known classes' rows are the base model's: their logits on any clip are unchanged
    clip = next((synth_root / "UCF-101" / "SynthWave").glob("*_g04_c01.avi"))
    x = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(new.build_model()(x)[:, :6], base.build_model()(x))
    assert Predictor(out).predict(side_steps[3]).label == "Side step"  # an actor it was not taught on
    assert Predictor(out).predict(clip).label == "SynthWave"
    assert new.info["taught"]["clips"] == 3 and new.reject_threshold == base.reject_threshold
    anchors = read_anchors(out, new)  # the taught model is teachable in turn
    assert anchors_path(out).is_file() and (anchors["labels"] == 6).sum() == 3 * 8


def test_teaching_refuses_what_it_cannot_do(side_steps, tmp_path, taught):
    from vidclf.checkpoint import load_checkpoint, save_checkpoint
    from vidclf.training.teach import teach

    with pytest.raises(DatasetError, match="give 3-12 clips"):
        teach(BASE, "Side step", side_steps[:2], tmp_path / "a.pt")
    with pytest.raises(DatasetError, match="already knows 'SynthWave'"):
        teach(BASE, "SynthWave", side_steps[:3], tmp_path / "a.pt")
    with pytest.raises(DatasetError, match="name the new action"):
        teach(BASE, "  ", side_steps[:3], tmp_path / "a.pt")
    lone = save_checkpoint(tmp_path / "lone.pt", load_checkpoint(BASE))
    with pytest.raises(DatasetError, match="no anchor file beside it.*train_cli.py anchors"):
        teach(lone, "Side step", side_steps[:3], tmp_path / "a.pt")
    _, out = taught
    other = load_checkpoint(out)
    changed = dataclasses.replace(other, state_dict={k: v + 1 for k, v in other.state_dict.items()})
    save_checkpoint(tmp_path / "changed.pt", changed)
    (tmp_path / "changed.anchors.npz").write_bytes(out.with_suffix(".anchors.npz").read_bytes())
    with pytest.raises(DatasetError, match="other weights"):
        teach(tmp_path / "changed.pt", "Hop", side_steps[:3], tmp_path / "a.pt")
    assert not (tmp_path / "a.pt").exists()


def test_the_teach_form_refuses_bad_requests_with_a_message(side_steps, tmp_path):
    from vidclf.catalog import read_entry
    from vidclf.errors import VidclfError
    from vidclf.serving import ServeSettings
    from vidclf.training.teach import teach_request, teachable

    base = read_entry(BASE, "synthetic", "shipped")
    assert teachable([base]) == [base]
    off = ServeSettings(training_enabled=False, runs_dir=tmp_path)
    with pytest.raises(VidclfError, match="turned off"):
        teach_request(base, "Side step", [str(c) for c in side_steps[:3]], off)
    on = ServeSettings(training_enabled=True, runs_dir=tmp_path)
    with pytest.raises(VidclfError, match="give 3-12 clips"):
        teach_request(base, "Side step", [str(side_steps[0]), "", None], on)  # type: ignore[list-item]
    junk = tmp_path / "notes.mp4"
    junk.write_text("not a video")
    with pytest.raises(VidclfError):
        teach_request(base, "Side step", [str(junk), *map(str, side_steps[:2])], on)
    assert not (tmp_path / "taught").exists()
