"""Shapes a mapping needs, read off a model by running it once.

A layer's number of output positions (how many MVMs a conv layer costs per
image) depends on the input size and on everything before the layer, so the
mappings' cost counters measure it with one forward pass instead of re-deriving it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def trace_modules(model: nn.Module, input_shape: tuple, select: Callable[[nn.Module], bool],
                  record: Callable[[str, nn.Module, tuple, torch.Tensor], Any]) -> list:
    """``record(name, module, inputs, output)`` of every selected module, in call order.

    Runs ``model`` once in eval mode, without gradients, on a zero batch of one
    input of ``input_shape`` (no batch dimension); the model's mode is restored.
    """
    found: list = []
    handles = []
    for name, m in model.named_modules():
        if select(m):
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: found.append(record(name, mod, inp, out))))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return found
