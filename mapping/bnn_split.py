r"""Input splitting of a BNN (Kim, Kim & Kim, arXiv 1811.02187, 2018): every hidden layer fits its arrays.

:func:`split_layer` turns a :class:`BinaryBlock` with fan-in ``N`` into one with
``G`` contiguous input groups of at most ``array_rows`` inputs (or the authors'
equal-size rule), each with its own BatchNorm and sign, merged by majority
(see :mod:`xbarsim.mapping.bnn_layers`).  :func:`split_network` splits every
hidden block of a network; the first layer (real-valued input) and the
classifier stay unsplit, as in the paper.

The latent weights are copied.  The new per-group BatchNorms either start
fresh (for retraining) or inherit the unsplit layer's: group ``g`` with
``n_g`` of the ``N`` inputs gets ``gamma``, ``beta``, ``mu_g = f mu`` and
``sqrt(var_g + eps) = f sqrt(var + eps)`` with ``f = n_g/N``, so its folded
threshold is ``f theta``: each group votes on its proportional share of the
original threshold.  That is "split without retraining" (*reconstructed*: the
paper does not say how the baseline's BN is shared among groups).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .bnn_layers import BinaryBlock, group_bounds

__all__ = ["split_layer", "split_network", "hidden_blocks"]


def split_layer(block: BinaryBlock, array_rows: int | None, equal_groups: bool = False,
                inherit_bn: bool = True) -> BinaryBlock:
    """A copy of ``block`` whose fan-in is cut into groups of at most ``array_rows`` inputs.

    ``array_rows=None`` or ``>= N``: an unsplit copy.  See the module docstring for ``inherit_bn``.
    """
    if block.n_groups != 1:
        raise ValueError("split_layer: the block is already split")
    groups = group_bounds(block.fan_in, array_rows, equal_groups)
    new = BinaryBlock(block.kind, block.in_features, block.out_features, block.kernel_size, block.padding,
                      groups=groups, pool=block.pool, real_input=block.real_input, classifier=block.classifier)
    with torch.no_grad():
        new.weight.copy_(block.weight)
        if inherit_bn:
            old = block.bn
            new.bn.eps = old.eps
            std = torch.sqrt(old.running_var.double() + old.eps)
            for g, (a, b) in enumerate(groups):
                f = (b - a) / block.fan_in
                sl = slice(g * block.out_features, (g + 1) * block.out_features)
                new.bn.weight[sl] = old.weight
                new.bn.bias[sl] = old.bias
                new.bn.running_mean[sl] = (f * old.running_mean.double()).float()
                new.bn.running_var[sl] = ((f * std) ** 2 - old.eps).clamp_min(0.0).float()
            new.bn.num_batches_tracked.copy_(old.num_batches_tracked)
    return new


def hidden_blocks(model: nn.Module) -> list[str]:
    """Names of the blocks :func:`split_network` splits: every BinaryBlock but the first and the classifier."""
    return [name for name, m in model.named_modules()
            if isinstance(m, BinaryBlock) and not m.real_input and not m.classifier]


def split_network(model: nn.Module, array_rows: int | None, equal_groups: bool = False,
                  inherit_bn: bool = True) -> nn.Module:
    """A deep copy of ``model`` with every hidden block split for arrays of ``array_rows`` rows."""
    new = copy.deepcopy(model)
    for name in hidden_blocks(new):
        parent, _, leaf = name.rpartition(".")
        owner = new.get_submodule(parent) if parent else new
        setattr(owner, leaf, split_layer(getattr(owner, leaf), array_rows, equal_groups, inherit_bn))
    return new
