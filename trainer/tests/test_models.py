import pytest
import torch

from trainer.models import BUILDERS, build_model, count_parameters
from trainer.protocol import MODEL_NAMES


def test_registry_matches_the_protocol_list():
    assert tuple(BUILDERS) == MODEL_NAMES


@pytest.mark.parametrize("name, size, channels", [
    ("compact_cnn", 24, 128),
    ("compact_resnet", 64, 256),
    ("resnet18", 32, 512),
    ("efficientnet_b0", 32, 1280),
])
def test_models_take_one_channel_and_expose_features(name, size, channels):
    torch.manual_seed(0)
    model = build_model(name, dropout=0.2).eval()
    x = torch.rand(2, 1, size, size)
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert feats.shape[:2] == (2, channels) and feats.dim() == 4
    assert logits.shape == (2, 1)
    # The head is exactly GAP + linear over the feature map (what CAM relies on).
    expected = feats.mean(dim=(2, 3)) @ model.classifier.weight.t() + model.classifier.bias
    assert torch.allclose(logits, expected, atol=1e-5)


def test_normalisation_lives_inside_the_model():
    model = build_model("compact_cnn").eval()
    first_conv = model.backbone[0]
    seen = {}
    first_conv.register_forward_hook(lambda _m, inp, _out: seen.update(x=inp[0]))
    with torch.no_grad():
        model(torch.full((1, 1, 24, 24), 0.5))
    assert torch.allclose(seen["x"], torch.zeros(1, 1, 24, 24))  # (0.5 - 0.5) / 0.25


def test_compact_cnn_is_small():
    assert count_parameters(build_model("compact_cnn")) < 1_000_000


def test_compact_resnet_standardises_each_image():
    """Exposure and contrast (linear changes of the pixel values) reach the backbone as the same input."""
    torch.manual_seed(0)
    model = build_model("compact_resnet").eval()
    x = torch.rand(2, 1, 64, 64) * 0.5 + 0.2
    with torch.no_grad():
        a, b = model(x), model(x * 1.3 - 0.05)
    assert torch.allclose(a, b, atol=1e-3)
    assert model.features(x).shape[2:] == (2, 2)  # stride 32
    assert count_parameters(model) < 2_000_000
