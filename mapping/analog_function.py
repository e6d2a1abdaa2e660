r"""The autograd bridge between torch and a :class:`xbarsim.crossbar.CrossbarArray`.

Forward and input gradient
--------------------------
:class:`AnalogMVM` is a ``torch.autograd.Function`` on a 2-D input
``x`` of shape ``(N, cols)`` (already unfolded / bias-augmented by the layer):

.. math::
    y = \mathrm{array.forward}(x) \approx x W^T, \qquad
    \frac{\partial L}{\partial x} = \mathrm{array.backward}(d) \approx d\,W,
    \quad d = \frac{\partial L}{\partial y},

i.e. the input gradient is the *transposed analog read* through the backward
periphery, not an exact float product.

Weight gradient: the pending update
-----------------------------------
For an in-situ layer the weight gradient :math:`d^T x` is never formed.
Instead the backward pass *stashes* the pair ``(x, d)`` and the optimizer
(:class:`xbarsim.training.AnalogSGD`) later applies it as a pulsed outer-product update
``array.update(x, d, lr)``.

How the optimizer finds the stash: every analog layer owns a *ghost*
parameter ``analog_ctx`` (an empty ``nn.Parameter``, ``requires_grad=True``).
It is an input of :class:`AnalogMVM`, which guarantees two things:

* the autograd graph always reaches the layer, even for the first layer of a
  network whose input does not require grad and whose bias is analog or
  absent;
* ``model.parameters()`` -- and hence every optimizer's ``param_groups`` --
  contains it.

The backward pass attaches a :class:`PendingUpdate` (the layer plus the list of
stashed ``(x, d)`` pairs) to that parameter as the attribute
``analog_pending``.  Its ``.grad`` stays ``None``, so a plain torch optimizer
skips it (and, be warned, leaves the analog weights untouched).
:func:`pop_pending_update` removes and returns it.  Several backward passes
before a ``step()`` accumulate (like ``.grad`` does); ``AnalogSGD.zero_grad``
discards them.

The stash keeps references, not copies, of ``x`` (torch's saved-tensor version
check guards it until the backward pass); do not modify a layer input in place
between ``backward()`` and ``optimizer.step()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch.autograd.function import once_differentiable

__all__ = ["AnalogMVM", "PendingUpdate", "pop_pending_update", "clear_pending_update", "as_float32_numpy"]

PENDING_ATTR = "analog_pending"


def as_float32_numpy(t: torch.Tensor, copy: bool = False) -> np.ndarray:
    """A float32, C-contiguous numpy view of a CPU tensor (a copy if ``copy`` or if needed)."""
    t = t.detach()
    if not copy and t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous():
        return t.numpy()
    if t.device.type != "cpu":
        raise ValueError(f"analog layers run on the CPU; got a tensor on {t.device} "
                         f"(move the model and data to the CPU with .cpu())")
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    t = t.contiguous()
    a = t.numpy()
    return a.copy() if copy else a


@dataclass
class PendingUpdate:
    """The ``(x, d)`` pairs stashed by backward passes of one analog layer since its last update."""

    layer: Any
    xs: list = field(default_factory=list)
    ds: list = field(default_factory=list)

    @property
    def x(self) -> np.ndarray:
        """All stashed inputs, ``(N, cols)`` float32."""
        return self.xs[0] if len(self.xs) == 1 else np.ascontiguousarray(np.concatenate(self.xs, axis=0))

    @property
    def d(self) -> np.ndarray:
        """All stashed output gradients, ``(N, rows)`` float32."""
        return self.ds[0] if len(self.ds) == 1 else np.ascontiguousarray(np.concatenate(self.ds, axis=0))

    @property
    def n_samples(self) -> int:
        return sum(len(x) for x in self.xs)

    def apply(self, lr: float) -> None:
        """Pulsed update of the layer's array: ``E[dW] = -lr * d^T x``."""
        self.layer.apply_update(self.x, self.d, float(lr))


def _stash(layer, x: np.ndarray, d: np.ndarray) -> None:
    ctx_param = layer.analog_ctx
    pending: Optional[PendingUpdate] = getattr(ctx_param, PENDING_ATTR, None)
    if pending is None or pending.layer is not layer:
        pending = PendingUpdate(layer)
        setattr(ctx_param, PENDING_ATTR, pending)
    pending.xs.append(x)
    pending.ds.append(d)


def pop_pending_update(param: torch.Tensor) -> Optional[PendingUpdate]:
    """Remove and return the pending update attached to ``param`` (``None`` if there is none)."""
    return param.__dict__.pop(PENDING_ATTR, None)


def clear_pending_update(param: torch.Tensor) -> None:
    """Discard any pending update attached to ``param``."""
    param.__dict__.pop(PENDING_ATTR, None)


class AnalogMVM(torch.autograd.Function):
    """``y = layer.array.forward(x) (+ bias)``; backward: transposed read + stash of ``(x, d)``.

    ``apply(x, analog_ctx, layer[, bias])`` with ``x`` of shape ``(N, layer.array.cols)``.
    The optional digital ``bias`` (out,) is added here rather than by a separate
    torch op, which saves an autograd node per layer; its gradient is ``d.sum(0)``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, analog_ctx: torch.Tensor, layer, bias=None) -> torch.Tensor:  # noqa: D401
        y = layer.array.forward(as_float32_numpy(x))
        if bias is not None:
            y += as_float32_numpy(bias)
        ctx.layer = layer
        ctx.save_for_backward(x)
        return torch.from_numpy(y)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        layer = ctx.layer
        d = as_float32_numpy(grad_out, copy=True)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.from_numpy(layer.array.backward(d))
            if x.dtype != torch.float32:
                grad_x = grad_x.to(x.dtype)
        grad_bias = grad_out.sum(0) if len(ctx.needs_input_grad) > 3 and ctx.needs_input_grad[3] else None
        _stash(layer, as_float32_numpy(x), d)
        return grad_x, None, None, grad_bias
