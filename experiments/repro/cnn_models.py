"""Small VGG-style and ResNet-style CNNs for 1x28x28 inputs (Fashion-MNIST), sized for 2 CPU cores.

``vgg_style(width, hidden)``: five 3x3 conv-BN-ReLU layers (``w, 2w, 4w, 4w, 8w``
channels) with three 2x2 max-pools (28 -> 14 -> 7 -> 3) and a VGG-like two-layer
classifier ``8w*9 -> hidden -> 10`` (most weights in the classifier, as in VGG).

``resnet_style(width)``: a conv-BN-ReLU stem and max-pool (28 -> 14), then three
stages of one basic block each (``w, 2w, 4w`` channels, the last two with stride 2
and a 1x1 projection shortcut), global average pooling and ``4w -> 10``
(He et al., CVPR 2016, at CIFAR-ResNet proportions).

``stages_of(model)`` gives each conv/linear layer's stage (for per-stage bases).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

__all__ = ["vgg_style", "resnet_style", "build_model", "stages_of", "BasicBlock", "ResNetStyle"]


def _conv_bn_relu(c_in: int, c_out: int) -> list:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def vgg_style(width: int = 16, hidden: int = 128) -> nn.Sequential:
    w = width
    return nn.Sequential(*_conv_bn_relu(1, w), nn.MaxPool2d(2),
                         *_conv_bn_relu(w, 2 * w), *_conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2),
                         *_conv_bn_relu(4 * w, 4 * w), *_conv_bn_relu(4 * w, 8 * w), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * w * 9, hidden), nn.ReLU(), nn.Linear(hidden, 10))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetStyle(nn.Module):
    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.layer1 = BasicBlock(w, w, 1)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.fc = nn.Linear(4 * w, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet_style(width: int = 24) -> ResNetStyle:
    return ResNetStyle(width)


def build_model(name: str, width: int, hidden: int) -> nn.Module:
    if name == "vgg":
        return vgg_style(width, hidden)
    if name == "resnet":
        return resnet_style(width)
    raise ValueError(f"model must be 'vgg' or 'resnet', got {name!r}")


def stages_of(model: nn.Module) -> dict:
    """``{layer name: stage}``: VGG stages end at each max-pool (the classifier is the last);
    ResNet stages are the stem, each block and the classifier."""
    stages = {}
    if isinstance(model, nn.Sequential):
        stage = 0
        for name, m in model.named_children():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                stages[name] = stage
            elif isinstance(m, (nn.MaxPool2d, nn.Flatten)):
                stage += isinstance(m, nn.MaxPool2d)
        return stages
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            stages[name] = name.split(".")[0]
    return stages
