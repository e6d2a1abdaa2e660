"""The BNNs of the input-splitting experiment: the paper's MLP and a BinaryNet-style CNN for 28x28 images."""
from __future__ import annotations

from torch import nn

from .bnn_layers import BinaryBlock, PixelQuant

__all__ = ["bnn_mlp", "bnn_cnn"]


def bnn_mlp(widths: list[int] | tuple[int, ...] = (784, 2048, 2048, 2048, 10)) -> nn.Sequential:
    """``784-2048-2048-2048-10`` (Kim et al. 2018, after BinaryNet): 8-bit input, binary hidden layers, BN logits."""
    layers: list[nn.Module] = [PixelQuant()]
    n = len(widths) - 1
    for i in range(n):
        layers.append(BinaryBlock("linear", widths[i], widths[i + 1], real_input=i == 0, classifier=i == n - 1))
    return nn.Sequential(*layers)


def bnn_cnn(channels: tuple[int, int, int, int] = (16, 16, 32, 32), fc: int = 256, image: int = 28,
            classes: int = 10) -> nn.Sequential:
    """BinaryNet-style ``c1C3-c2C3-MP2-c3C3-c4C3-MP2-FC-FC10`` for ``image x image`` single-channel input.

    A CIFAR BinaryNet VGG scaled down to Fashion-MNIST on 2 CPU cores; pooling
    comes before each block's BatchNorm (BinaryNet and Kim et al.'s order).
    """
    c1, c2, c3, c4 = channels
    side = image // 4
    return nn.Sequential(
        PixelQuant(),
        BinaryBlock("conv", 1, c1, real_input=True),
        BinaryBlock("conv", c1, c2, pool=2),
        BinaryBlock("conv", c2, c3),
        BinaryBlock("conv", c3, c4, pool=2),
        nn.Flatten(),
        BinaryBlock("linear", c4 * side * side, fc),
        BinaryBlock("linear", fc, classes, classifier=True),
    )
