r"""``AnalogSGD``: SGD whose analog layers learn by pulsed outer-product updates.

For each analog layer (found through its ghost parameter ``analog_ctx``, see
:mod:`xbarsim.mapping.analog_function`) the backward pass stashed the layer inputs
:math:`x_b` and output gradients :math:`d_b = \partial L/\partial y_b` of every
sample :math:`b` of the batch (every output position for a convolution).
``step()`` then calls ``array.update(x, d, lr)`` with the group's *current*
``lr`` (so ``torch.optim.lr_scheduler`` works).  The array applies the samples
one after another, each as stochastic pulse trains, with

.. math::
    E[\Delta W] = -\,lr \sum_b d_b\, x_b^T .

With the usual mean-reduced loss, :math:`d_b` already carries the
:math:`1/B` factor, so this is the expected plain-SGD step
:math:`-lr\,\nabla_W L`.  For an :class:`xbarsim.devices.IdealDevice` the update is
exact.  The per-sample pulse process adds zero-mean noise (for a
constant-step device of step :math:`dw_{min}` the variance per cell and
sample is at most :math:`dw_{min}\,lr\,|x_j d_i|`) and the device's own
nonlinearity (bounds, asymmetry) biases it.

Digital parameters (the digital biases, any non-analog layer) get
``torch.optim.SGD`` exactly: ``momentum``, ``dampening``, ``nesterov`` and
``weight_decay`` apply to them only.  Analog weights get neither momentum
nor weight decay (as in aihwkit's ``AnalogSGD``): there is no place on the
array to keep a momentum buffer, and decay is a device property
(``lifetime``).  Gradient clipping utilities likewise only see digital
gradients.

Stashes accumulate over several ``backward()`` calls (like ``.grad``) until
``step()`` applies them or ``zero_grad()`` discards them.  A checkpoint
should be taken after ``step()``: stashes are not part of any state dict.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from xbarsim.mapping import apply_pending_updates, clear_pending_update, pop_pending_update

__all__ = ["AnalogSGD"]


class AnalogSGD(torch.optim.SGD):
    """``torch.optim.SGD`` plus pulsed updates of analog layers.

    Parameters
    ----------
    params:
        Usually ``model.parameters()``; analog layers are recognised through
        their ``analog_ctx`` parameter, so it must be included.
    lr, momentum, dampening, weight_decay, nesterov, foreach:
        As ``torch.optim.SGD`` (momentum/weight decay: digital parameters only).
    overlap:
        Leave the pulses in flight when ``step()`` returns (see :meth:`step`).
    """

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, foreach: Optional[bool] = None,
                 overlap: bool = True) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                         nesterov=nesterov, foreach=foreach)
        self.overlap = bool(overlap)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None):
        """Digital SGD step, then one pulsed update per analog layer with a stash.

        The layers' pulses run concurrently (:func:`xbarsim.crossbar.update_arrays`), with
        the same result as updating them one after another.  With ``overlap``
        (the default) ``step()`` returns while they are still being pulsed, and
        each array finishes its own update when it is next used (its next read,
        a state dict, its counters), so the next batch's first layers are read
        while the deeper layers are pulsed; the numbers are the same, bit for bit.
        """
        loss = super().step(closure)
        updates = []
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                pending = pop_pending_update(p)
                if pending is not None:
                    updates.append((pending, lr))
        apply_pending_updates(updates, overlap=self.overlap)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear digital gradients and discard stashed analog updates."""
        super().zero_grad(set_to_none=set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                clear_pending_update(p)
