r"""One in-situ training step of an analog MLP without the autograd machinery: :class:`MLPStep`.

For the network of ``xbarsim train``,

.. math::
    z_k = W_k h_{k-1} + b_k,\quad h_k = \sigma(z_k)\ (k < L),\quad
    \ell = -\frac{1}{B}\sum_b \log\mathrm{softmax}(z_L)_{b, y_b},

one batch is: analog forward reads, the loss, the backward pass
:math:`\delta_L = (\mathrm{softmax}(z_L) - e_y)/B`,
:math:`\delta_{k-1} = \sigma'(z_{k-1}) \odot W_k^T \delta_k` (the transposed
analog read), plain SGD on the digital biases, and the pulsed updates
:math:`E[\Delta W_k] = -lr\,\delta_k^T h_{k-1}` of all layers at once
(:class:`xbarsim.crossbar.UpdateRound`).  That is exactly what ``loss.backward()`` and
:meth:`AnalogSGD.step` do on the same model, and it calls the same kernels:
the arrays' reads and updates, and the ATen forward and backward functions
autograd itself dispatches to (``sigmoid_backward``,
``_log_softmax_backward_data``, ``nll_loss_backward``), so the two paths give
bit-identical weights (tested).  What it saves is the per-batch cost of
torch's module calls, autograd graph and optimizer hooks, about half a
millisecond per batch of 10, which was a third of the in-situ epoch.

:meth:`MLPStep.train_batches` goes further: it hands a whole run of batches to
one compiled call (:mod:`xbarsim.training.mlp_loop`), same numbers again.

:meth:`MLPStep.build` returns ``None`` for anything else (other layer types or
losses, analog biases, momentum or weight decay on the biases); callers then
use the ordinary autograd loop.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from xbarsim.crossbar import CrossbarArray, UpdateRound
from xbarsim.mapping import AnalogLinear

from .analog_sgd import AnalogSGD
from .mlp_loop import ACT_CODES, LoopLayer, run_mlp_batches

__all__ = ["MLPStep"]

_aten = torch.ops.aten
_MEAN = 1  # at::Reduction::Mean
_ACTIVATIONS = {nn.Sigmoid: (torch.sigmoid, _aten.sigmoid_backward),
                nn.Tanh: (torch.tanh, _aten.tanh_backward),
                nn.ReLU: (torch.relu, lambda g, h: _aten.threshold_backward(g, h, 0))}


class MLPStep:
    """A compiled training step for ``Sequential(AnalogLinear, act, ..., AnalogLinear, LogSoftmax(1))``.

    ``step(x, y)`` trains on one batch (``x`` (B, in) float32, ``y`` (B,) int64
    labels) with the optimizer's current learning rates and returns the loss
    as a 0-d tensor.  Activations: ``Sigmoid``, ``Tanh``, ``ReLU``.
    """

    def __init__(self, layers: list, acts: list, lrs: list, ignore_index: int, act_codes: list | None = None) -> None:
        self.layers = layers
        self.acts = acts
        self._act_codes = act_codes  # for the compiled loop (training.mlp_loop); None: not available
        self._lrs = lrs  # per layer: (group of analog_ctx, group of bias or None)
        self.ignore_index = ignore_index
        self._pending: Optional[UpdateRound] = None  # the last batch's updates, while pipelined

    @classmethod
    def build(cls, model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer) -> Optional["MLPStep"]:
        """The fused step for this model, loss and optimizer, or ``None`` if they are not supported."""
        if not isinstance(model, nn.Sequential) or type(loss_fn) is not nn.NLLLoss:
            return None
        if loss_fn.weight is not None or loss_fn.reduction != "mean" or type(optimizer) is not AnalogSGD:
            return None
        mods = list(model)
        if len(mods) < 2 or type(mods[-1]) is not nn.LogSoftmax or mods[-1].dim not in (1, -1):
            return None
        body = mods[:-1]
        layers, acts = body[0::2], body[1::2]
        if len(layers) != len(acts) + 1 or not all(type(m) is AnalogLinear for m in layers):
            return None
        if not all(type(m.array) is CrossbarArray for m in layers):  # e.g. a TransferCompound: autograd path
            return None
        if not all(type(a) in _ACTIVATIONS and not getattr(a, "inplace", False) for a in acts):
            return None
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        lrs = []
        for layer in layers:
            if layer.analog_bias or id(layer.analog_ctx) not in group_of:
                return None
            bias_group = None
            if layer.bias is not None:
                bias_group = group_of.get(id(layer.bias))
                if bias_group is None or not layer.bias.requires_grad:
                    return None
                if (bias_group["momentum"] or bias_group["weight_decay"] or bias_group["nesterov"]
                        or bias_group.get("maximize", False)):
                    return None
            lrs.append((group_of[id(layer.analog_ctx)], bias_group))
        for hooks in (model._forward_hooks, model._forward_pre_hooks, model._backward_hooks):
            if hooks:
                return None
        if any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in mods):
            return None
        return cls(layers, [_ACTIVATIONS[type(a)] for a in acts], lrs, loss_fn.ignore_index,
                   [ACT_CODES[type(a).__name__] for a in acts])

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Forward, loss, backward and update on one batch; returns the mean NLL loss.

        The arrays are fully updated when it returns.
        """
        try:
            return self._step(x, y)
        finally:
            self.finish()

    def train_batches(self, xs: torch.Tensor, ys: torch.Tensor, batch_size: int,
                      on_batch: Optional[Callable[[], Any]] = None) -> float:
        """Train on ``xs[k:k + batch_size]`` for ``k = 0, batch_size, ...``; returns sum of loss x batch length.

        Same result, bit for bit, as calling :meth:`step` on each batch.  Where
        every array supports it (:meth:`xbarsim.crossbar.CrossbarArray.loop_state`:
        batches of at most 32 samples, ADC outputs, no decay), the whole run is
        one compiled call (:func:`xbarsim.training.mlp_loop.run_mlp_batches`).
        Otherwise the updates of a batch are still being pulsed while the next
        batch is read: layer ``k``'s forward read waits only for layer ``k``'s
        update, so the other layers' pulses overlap with it.  ``on_batch()`` is
        called after each batch (a progress bar; it must not touch the model).
        The arrays are fully updated when it returns or raises.
        """
        self.finish()
        compiled = self.compiled_layers(batch_size)
        if compiled is not None:
            xs_np = np.ascontiguousarray(xs.detach().numpy() if isinstance(xs, torch.Tensor) else xs, dtype=np.float32)
            ys_np = np.ascontiguousarray(ys.numpy() if isinstance(ys, torch.Tensor) else ys, dtype=np.int64)
            lr_w = [float(g["lr"]) for g, _ in self._lrs]
            lr_b = [0.0 if b is None else float(b["lr"]) for _, b in self._lrs]
            return run_mlp_batches(compiled, xs_np, ys_np, batch_size, lr_w, lr_b, self.ignore_index, on_batch)
        total = 0.0
        n = len(ys)
        try:
            for k in range(0, n, batch_size):
                loss = self._step(xs[k:k + batch_size], ys[k:k + batch_size])
                total += float(loss) * min(batch_size, n - k)
                if on_batch is not None:
                    on_batch()
        finally:
            self.finish()
        return total

    def compiled_layers(self, batch_size: int) -> Optional[list]:
        """The layers as :class:`xbarsim.training.mlp_loop.LoopLayer` for the compiled loop, or ``None``."""
        if self._act_codes is None:
            return None
        out = []
        for k, layer in enumerate(self.layers):
            state = layer.array.loop_state(batch_size)
            if state is None:
                return None
            act = self._act_codes[k] if k < len(self._act_codes) else -1
            out.append(LoopLayer(layer.array, state, layer.bias, act))
        if len({layer.state.step for layer in out}) > 1:  # the loop is built for one device step
            return None
        return out

    def finish(self) -> None:
        """Wait for the pulses still in flight (from :meth:`train_batches`)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.wait_all()

    @torch.no_grad()
    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = x if x.dtype == torch.float32 and x.is_contiguous() else x.to(torch.float32).contiguous()
        inputs, outs = [], []
        for k, layer in enumerate(self.layers):
            if self._pending is not None:
                self._pending.wait(k)
            inputs.append(h.numpy())
            z = layer.array.forward(inputs[-1])
            if layer.bias is not None:
                z += layer.bias.detach().numpy()
            z = torch.from_numpy(z)
            if k < len(self.acts):
                h = self.acts[k][0](z)
                outs.append(h)
            else:
                logp = torch.log_softmax(z, 1)
        self.finish()
        loss, total_weight = _aten.nll_loss_forward(logp, y, None, _MEAN, self.ignore_index)
        g = _aten.nll_loss_backward(torch.ones((), dtype=loss.dtype), logp, y, None, _MEAN, self.ignore_index,
                                    total_weight)
        g = _aten._log_softmax_backward_data(g, logp, 1, logp.dtype)
        # Layer k's pulses start as soon as its transposed read is done, while the
        # lower layers' backward pass goes on.
        updates = self._pending = UpdateRound()
        for k in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[k]
            d = np.array(g.numpy(), dtype=np.float32)  # a copy: the update must not alias a tensor we reuse
            ctx_group, bias_group = self._lrs[k]
            g_k = g
            if k > 0:
                g = self.acts[k - 1][1](torch.from_numpy(layer.array.backward(d)), outs[k - 1])
            updates.add(k, layer.array, inputs[k], d, float(ctx_group["lr"]))
            if layer.bias is not None:  # after add(): the pulses need not wait for it
                layer.bias.add_(g_k.sum(0), alpha=-float(bias_group["lr"]))
        return loss
