import pytest
import torch

from vidclf.checkpoint import Checkpoint, InputSpec, load_checkpoint, save_checkpoint
from vidclf.config import ModelConfig
from vidclf.errors import CheckpointError
from vidclf.models.cnn_lstm import build_model

SPEC = InputSpec(8, 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _ckpt(backbone="custom", classes=("a", "b", "c")):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone, use_pretrained=False)
    model = build_model(cfg, len(classes))
    return model.eval(), Checkpoint(cfg, tuple(classes), SPEC, model.state_dict(), epoch=3, metrics={"val_acc": 0.5})


@pytest.mark.parametrize("backbone", ["custom", "resnet18"])
def test_round_trip_gives_identical_outputs(tmp_path, backbone):
    model, ck = _ckpt(backbone)
    path = save_checkpoint(tmp_path / "m.pt", ck)
    loaded = load_checkpoint(path)
    assert loaded.classes == ck.classes and loaded.input == SPEC and loaded.model == ck.model and loaded.epoch == 3
    x = torch.randn(2, 8, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded.build_model()(x))


def test_half_precision_export_is_close(tmp_path):
    model, ck = _ckpt()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "h.pt", ck, half=True))
    assert all(v.dtype != torch.float32 for v in loaded.state_dict.values())
    x = torch.randn(2, 8, 3, 64, 64)
    with torch.inference_mode():
        assert (model(x).softmax(-1) - loaded.build_model()(x).softmax(-1)).abs().max() < 1e-2


class Evil:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "vidclf-checkpoint", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_other_files_are_refused_clearly(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(build_model(ModelConfig(use_pretrained=False), 3).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a vidclf checkpoint"):
        load_checkpoint(bare)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    _, ck = _ckpt()
    path = save_checkpoint(tmp_path / "v.pt", ck)
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)


def test_weights_of_another_model_are_named(tmp_path):
    _, ck = _ckpt("custom")
    wrong = Checkpoint(ModelConfig(backbone="resnet18", use_pretrained=False), ck.classes, SPEC, ck.state_dict)
    with pytest.raises(CheckpointError, match="do not fit a resnet18"):
        load_checkpoint(save_checkpoint(tmp_path / "w.pt", wrong)).build_model()


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    _, ck = _ckpt()
    path = save_checkpoint(tmp_path / "last.pt", ck)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, ck)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary files left behind
