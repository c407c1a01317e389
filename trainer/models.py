"""Model zoo. Every model takes float32 [N,1,H,W] with pixel/255 in [0,1], normalises inside
(so serving needs no constants), and is `features` (last conv map) -> global average pool ->
dropout -> one linear logit. That head shape is what makes class activation maps possible:
CAM = sum_c w_c * features_c + b, with the weights exported in the ONNX metadata."""
from __future__ import annotations

from typing import Callable, Dict, List

import torch
import torch.nn as nn
import torchvision

from .protocol import MODEL_NAMES

# Fixed, dataset-independent normalisation of [0,1] inputs (CXR means sit near 0.5).
INPUT_MEAN = 0.5
INPUT_STD = 0.25


class XrayClassifier(nn.Module):
    def __init__(self, name: str, backbone: nn.Module, channels: int, dropout: float):
        super().__init__()
        self.name = name
        self.backbone = backbone
        self.feature_channels = channels
        self.dropout = nn.Dropout(p=dropout)
        self.classifier = nn.Linear(channels, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last conv feature map [N,C,h,w] for input x in [0,1]."""
        return self.backbone((x - INPUT_MEAN) / INPUT_STD)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        pooled = feats.mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One logit per image, shape [N,1]."""
        return self.head(self.features(x))


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
    **{f"efficientnet_b{i}": _efficientnet(f"efficientnet_b{i}") for i in range(5)},
    "resnet18": _resnet("resnet18"),
    "resnet50": _resnet("resnet50"),
    "densenet121": densenet121,
}
assert tuple(BUILDERS) == MODEL_NAMES, "protocol.MODEL_NAMES and models.BUILDERS must list the same models"


def build_model(name: str, dropout: float = 0.2) -> XrayClassifier:
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(BUILDERS)}")
    return BUILDERS[name](dropout)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
