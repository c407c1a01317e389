"""Model zoo. Every model takes float32 [N,1,H,W] with pixel/255 in [0,1], normalises inside
(so serving needs no constants), and is `features` (last conv map) -> global average pool ->
dropout -> one linear logit. That head shape is what makes class activation maps possible:
CAM = sum_c w_c * features_c + b, with the weights exported in the ONNX metadata."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from .protocol import MODEL_NAMES

# Fixed, dataset-independent normalisation of [0,1] inputs (CXR means sit near 0.5).
INPUT_MEAN = 0.5
INPUT_STD = 0.25


class XrayClassifier(nn.Module):
    def __init__(self, name: str, backbone: nn.Module, channels: int, dropout: float, per_image_norm: bool = False):
        super().__init__()
        self.name = name
        self.per_image_norm = per_image_norm
        self.backbone = backbone
        self.feature_channels = channels
        self.dropout = nn.Dropout(p=dropout)
        self.classifier = nn.Linear(channels, 1)
        self.input_size: Optional[int] = None
        self.input_crop: Optional[Dict[str, float]] = None
        self.crop_pixels: Optional[Tuple[int, int, int, int]] = None  # (top, bottom, left, right), end exclusive

    def set_input_crop(self, crop: Optional[Dict[str, float]], input_size: int) -> "XrayClassifier":
        """Crop every input to `crop` ({top, bottom, left, right} fractions of the square input) and
        resize the crop back to input_size x input_size before the backbone (None: no crop). The
        pixel bounds are fixed here, once, from the input size."""
        self.input_size = int(input_size)
        self.input_crop = None if crop is None else {k: float(crop[k]) for k in ("top", "bottom", "left", "right")}
        self.crop_pixels = None if crop is None else crop_pixels(self.input_crop, self.input_size)
        return self

    def crop_input(self, x: torch.Tensor) -> torch.Tensor:
        """x cropped to the input crop and resized back to the full input size (x itself without one)."""
        if self.crop_pixels is None:
            return x
        s = self.input_size
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != (s, s):
            raise ValueError(f"this model crops {s}x{s} inputs, got {tuple(x.shape[-2:])}")
        t, b, l, r = self.crop_pixels
        return F.interpolate(x[:, :, t:b, l:r], size=(s, s), mode="bilinear", align_corners=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last conv feature map [N,C,h,w] for input x in [0,1] (of the input crop, when one is set)."""
        x = self.crop_input(x)
        if self.per_image_norm:
            # Each image to zero mean / unit variance: exposure and contrast changes (linear in
            # pixel value) then reach the backbone as the same input.
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True)
            return self.backbone((x - mean) / (std + 1e-3))
        return self.backbone((x - INPUT_MEAN) / INPUT_STD)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = feats.mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image, shape [N,1]."""
        return self.head(self.features(x))


def crop_pixels(crop: Dict[str, float], size: int) -> Tuple[int, int, int, int]:
    """Integer pixel bounds (top, bottom, left, right; end exclusive) of a fractional box on a
    size x size input, at least one pixel each way."""
    t = min(size - 1, int(round(crop["top"] * size)))
    l = min(size - 1, int(round(crop["left"] * size)))
    b = max(t + 1, min(size, int(round(crop["bottom"] * size))))
    r = max(l + 1, min(size, int(round(crop["right"] * size))))
    return t, b, l, r


def _conv_bn_relu(cin: int, cout: int) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def compact_cnn(dropout: float) -> XrayClassifier:
    """Five conv-BN-ReLU x2 blocks, 16..128 wide. Max-pool after the first four only, so the CAM
    map keeps stride 16 (14x14 at 224 px); ceil_mode keeps tiny inputs (24 px) valid."""
    widths = [16, 32, 64, 96, 128]
    layers: List[nn.Module] = []
    cin = 1
    for i, w in enumerate(widths):
        layers += _conv_bn_relu(cin, w) + _conv_bn_relu(w, w)
        if i < len(widths) - 1:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        cin = w
    backbone = nn.Sequential(*layers)
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return XrayClassifier("compact_cnn", backbone, widths[-1], dropout)


class _ResidualBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut: nn.Module = nn.Identity() if cin == cout and stride == 1 else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def compact_resnet(dropout: float) -> XrayClassifier:
    """Small residual net for CPU training at 224 px (1.2 M parameters, ~4x compact_cnn's speed per
    pixel): two stride-2 conv stems to 1/4 resolution, then four residual blocks 32..256 wide
    (stride 32 in all: a 7x7 CAM map at 224 px). Each image is standardised on its own."""
    widths = [32, 64, 128, 256]
    layers: List[nn.Module] = [
        nn.Conv2d(1, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True),
        nn.Conv2d(24, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
    ]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers.append(_ResidualBlock(cin, w, 1 if i == 0 else 2))
        cin = w
    backbone = nn.Sequential(*layers)
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return XrayClassifier("compact_resnet", backbone, widths[-1], dropout, per_image_norm=True)


def _one_channel(conv: nn.Conv2d) -> nn.Conv2d:
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _efficientnet(variant: str) -> Callable[[float], XrayClassifier]:
    def build(dropout: float) -> XrayClassifier:
        net = getattr(torchvision.models, variant)(weights=None)
        net.features[0][0] = _one_channel(net.features[0][0])
        channels = net.classifier[1].in_features
        return XrayClassifier(variant, net.features, channels, dropout)
    return build


def _resnet(variant: str) -> Callable[[float], XrayClassifier]:
    def build(dropout: float) -> XrayClassifier:
        net = getattr(torchvision.models, variant)(weights=None)
        backbone = nn.Sequential(_one_channel(net.conv1), net.bn1, net.relu, net.maxpool,
                                 net.layer1, net.layer2, net.layer3, net.layer4)
        return XrayClassifier(variant, backbone, net.fc.in_features, dropout)
    return build


def densenet121(dropout: float) -> XrayClassifier:
    net = torchvision.models.densenet121(weights=None)
    net.features.conv0 = _one_channel(net.features.conv0)
    # torchvision applies the final ReLU in forward(); make it part of the feature map.
    backbone = nn.Sequential(net.features, nn.ReLU(inplace=False))
    return XrayClassifier("densenet121", backbone, net.classifier.in_features, dropout)


BUILDERS: Dict[str, Callable[[float], XrayClassifier]] = {
    "compact_cnn": compact_cnn,
    "compact_resnet": compact_resnet,
    **{f"efficientnet_b{i}": _efficientnet(f"efficientnet_b{i}") for i in range(5)},
    "resnet18": _resnet("resnet18"),
    "resnet50": _resnet("resnet50"),
    "densenet121": densenet121,
}
assert tuple(BUILDERS) == MODEL_NAMES, "protocol.MODEL_NAMES and models.BUILDERS must list the same models"


def build_model(name: str, dropout: float = 0.2, input_crop: Optional[Dict[str, float]] = None,
                input_size: Optional[int] = None) -> XrayClassifier:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(BUILDERS)}")
    model = BUILDERS[name](dropout)
    if input_crop is not None:
        if input_size is None:
            raise ValueError("an input crop needs the input size")
        model.set_input_crop(input_crop, input_size)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
