r"""A run of in-situ training batches of an analog MLP in one compiled call: :func:`run_mlp_batches`.

Per batch of ``n`` samples (the network and the arithmetic of :class:`xbarsim.training.MLPStep`):

.. math::
    z_k = \mathrm{read}(W_k, h_{k-1}) + b_k,\quad h_k = \sigma(z_k),\quad
    \delta_L = \nabla_{z_L}\,\mathrm{NLL}(\log\mathrm{softmax}(z_L), y),\quad
    \delta_{k-1} = \sigma'(z_{k-1}) \odot \mathrm{read}^T(W_k, \delta_k),

then the pulsed update :math:`E[\Delta W_k] = -\eta\,\delta_k^T h_{k-1}` of each
layer right after its transposed read, and SGD on the digital biases.  The
reads go through each array's DAC/ADC periphery (:func:`xbarsim.crossbar.kernels.read_tiles`),
the updates through its pulse kernels (:func:`xbarsim.crossbar.pulse_helper.pulse_tile_shared`),
all inside one numba function that loops over the batches, so no Python runs
for the analog work.  With two numba threads, a tile update of many pulses is
split by rows with a spinning helper thread
(:class:`xbarsim.crossbar.pulse_helper.PulseHelper`), bit-identically.  The
digital operations (activations, log-softmax, NLL loss and gradients, bias
steps) are torch's own CPU kernels, called from the
compiled loop (``numba.objmode``, a few microseconds each): the results are
therefore bit-identical to :class:`MLPStep` and to ``loss.backward()`` with
:class:`xbarsim.training.AnalogSGD`, which call the same kernels (tested).

References: Gokmen & Vlasov, *Front. Neurosci.* 10:333 (2016) for the
stochastic pulsed update; Rasch et al., aihwkit (2021) for the periphery.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Optional

import numba
import numpy as np
import torch

from xbarsim.crossbar import kernels as crossbar_kernels
from xbarsim.crossbar import pulse_helper
from xbarsim.crossbar.kernels import read_tiles
from xbarsim.crossbar.pulse_helper import PulseHelper, helper_sync, update_tiles
from xbarsim.devices.kernels import specialise

__all__ = ["ACT_CODES", "LoopLayer", "run_mlp_batches"]

_aten = torch.ops.aten
_MEAN = 1  # at::Reduction::Mean
#: activation module name -> code used inside the compiled loop
ACT_CODES = {"Sigmoid": 0, "Tanh": 1, "ReLU": 2}

_CALLBACKS: dict[int, Callable[[], Any]] = {}
_CALLBACK_IDS = itertools.count(1)
_CALLBACK_LOCK = threading.Lock()


# ---------------------------------------------------------------- torch kernels, called from the loop
def _act_forward(code: int, z: np.ndarray, h: np.ndarray) -> None:
    zt = torch.from_numpy(z)
    out = torch.sigmoid(zt) if code == 0 else torch.tanh(zt) if code == 1 else torch.relu(zt)
    h[...] = out.numpy()


def _act_backward(code: int, grad: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    g, y = torch.from_numpy(grad), torch.from_numpy(h)
    if code == 0:
        r = _aten.sigmoid_backward(g, y)
    elif code == 1:
        r = _aten.tanh_backward(g, y)
    else:
        r = _aten.threshold_backward(g, y, 0)
    out[...] = r.numpy()


def _loss_grad(z: np.ndarray, y: np.ndarray, ignore_index: int, grad: np.ndarray) -> float:
    logp = torch.log_softmax(torch.from_numpy(z), 1)
    yt = torch.from_numpy(y)
    loss, total_weight = _aten.nll_loss_forward(logp, yt, None, _MEAN, ignore_index)
    g = _aten.nll_loss_backward(torch.ones((), dtype=loss.dtype), logp, yt, None, _MEAN, ignore_index, total_weight)
    grad[...] = _aten._log_softmax_backward_data(g, logp, 1, logp.dtype).numpy()
    return float(loss)


def _bias_step(bias: np.ndarray, grad: np.ndarray, lr: float) -> None:
    torch.from_numpy(bias).add_(torch.from_numpy(grad).sum(0), alpha=-lr)


def _on_batch(handle: int) -> None:
    _CALLBACKS[handle]()


# one objmode block per helper: kept out of the loop's own control flow, where numba's
# lifting of with-blocks produced invalid LLVM IR
@numba.njit(cache=True)
def _nb_act_forward(code, z, h):
    with numba.objmode():
        _act_forward(code, z, h)


@numba.njit(cache=True)
def _nb_act_backward(code, grad, h, out):
    with numba.objmode():
        _act_backward(code, grad, h, out)


@numba.njit(cache=True)
def _nb_loss_grad(z, y, ignore_index, grad):
    with numba.objmode(loss="float64"):
        loss = _loss_grad(z, y, ignore_index, grad)
    return loss


@numba.njit(cache=True)
def _nb_bias_step(bias, grad, lr):
    with numba.objmode():
        _bias_step(bias, grad, lr)


@numba.njit(cache=True)
def _nb_on_batch(handle):
    with numba.objmode():
        _on_batch(handle)


# ---------------------------------------------------------------- the compiled loop
def _run(batches, states, bufs, fwd, bwd, ups, net, box):
    """Train on ``xs[k:k + batch_size]`` for ``k = k_lo, k_lo + batch_size, ... < k_hi``.

    ``batches = (xs, ys, k_lo, k_hi, batch_size, ignore_index, callback)``; per layer
    ``l``: ``states[l]`` its array's ArrayState, ``bufs[l] = (read, reference)``,
    ``fwd[l]`` / ``bwd[l]`` its ReadParams, ``ups[l]`` its UpdateParams;
    ``net = (acts, lr_w, lr_b, has_bias, biases)``.  The kernels advance each array's
    streams and counters in place, after every batch, so they are exact if a callback
    raises.  Returns ``(sum of loss x n, k)``: ``k`` is -1, or the first sample of the
    batch whose gradient held a NaN or an infinity (the loop stops there).
    """
    xs, ys, k_lo, k_hi, batch_size, ignore_index, callback = batches
    acts, lr_w, lr_b, has_bias, biases = net
    n_layers = len(states)
    total = 0.0
    k = k_lo
    while k < k_hi:
        n = min(batch_size, k_hi - k)
        hs = [np.ascontiguousarray(xs[k:k + n])]  # inputs of each layer
        z_last = np.empty((n, states[n_layers - 1].w.shape[0]), dtype=np.float32)
        for layer in range(n_layers):
            rows = states[layer].w.shape[0]
            z = np.empty((n, rows), dtype=np.float32)
            read_tiles(hs[layer], bufs[layer][0], states[layer], fwd[layer], False, z)
            if has_bias[layer]:
                b = biases[layer]
                for s in range(n):
                    for o in range(rows):
                        z[s, o] += b[o]
            if layer < n_layers - 1:
                h = np.empty((n, rows), dtype=np.float32)
                _nb_act_forward(acts[layer], z, h)
                hs.append(h)
            else:
                z_last = z
        g = np.empty_like(z_last)
        loss = _nb_loss_grad(z_last, ys[k:k + n], ignore_index, g)
        total += loss * n
        for layer in range(n_layers - 1, -1, -1):
            st = states[layer]
            d = g.copy()
            if layer > 0:
                zt = np.empty((n, st.w.shape[1]), dtype=np.float32)
                read_tiles(d, bufs[layer][0], st, bwd[layer], True, zt)
                g_next = np.empty_like(zt)
                _nb_act_backward(acts[layer - 1], zt, hs[layer], g_next)
            else:
                g_next = g
            lr = lr_w[layer]
            if update_tiles(layer, st, hs[layer], d, lr, ups[layer], box) < 0:
                helper_sync(box)
                return total, k
            ref = bufs[layer][1]
            if lr > 0 and ref.size > 0:
                helper_sync(box)
                rd = bufs[layer][0]
                wr = st.w_read
                for i in range(rd.shape[0]):
                    for j in range(rd.shape[1]):
                        rd[i, j] = wr[i, j] - ref[i, j]
            if has_bias[layer]:
                _nb_bias_step(biases[layer], g, lr_b[layer])
            g = g_next
        helper_sync(box)  # the next batch reads every layer
        k += n
        if callback > 0:
            _nb_on_batch(callback)
    return total, -1


_EMPTY_F32 = np.zeros(0, dtype=np.float32)


class LoopLayer:
    """One ``AnalogLinear`` layer as the compiled loop sees it: its array's
    :meth:`xbarsim.crossbar.CrossbarArray.loop_state`, its digital bias (a numpy view
    of the parameter, updated in place) and the activation that follows it."""

    __slots__ = ("array", "state", "bias", "act")

    def __init__(self, array: Any, state: Any, bias: Optional[torch.Tensor], act: int) -> None:
        self.array, self.state, self.bias, self.act = array, state, bias, act


def run_mlp_batches(layers: list[LoopLayer], xs: np.ndarray, ys: np.ndarray, batch_size: int, lr_w: list[float],
                    lr_b: list[float], ignore_index: int,
                    on_batch: Optional[Callable[[], Any]] = None, helper: Optional[bool] = None) -> float:
    """Train on ``xs[k:k + batch_size]`` for ``k = 0, batch_size, ...``; returns sum of loss x batch length.

    ``layers`` come from :class:`LoopLayer` (every array's ``loop_state(batch_size)``
    not ``None``); ``xs`` (N, in) float32 C-contiguous, ``ys`` (N,) int64.
    ``on_batch()`` is called after each batch; if it raises, the batches before
    it are fully applied and booked, as with :meth:`MLPStep.train_batches`.
    ``helper``: share large tile updates with a second thread
    (:class:`xbarsim.crossbar.pulse_helper.PulseHelper`; default: when numba may
    use two threads); bit-identical either way.
    """
    views = [layer.state for layer in layers]
    steps = {v.step for v in views}
    if len(steps) != 1:
        raise ValueError("run_mlp_batches: every layer's array must use the same device model")
    if not np.isfinite(xs).all():
        raise ValueError("run_mlp_batches: the inputs xs contain NaN or inf")
    fn = specialise(_run, False, sources=(crossbar_kernels.__file__, pulse_helper.__file__), STEP=steps.pop())
    biases = tuple(_EMPTY_F32 if layer.bias is None else layer.bias.detach().numpy() for layer in layers)
    net = (np.array([layer.act for layer in layers], dtype=np.int64), np.array(lr_w, dtype=np.float64),
           np.array(lr_b, dtype=np.float64), np.array([layer.bias is not None for layer in layers]), biases)
    handle = 0
    if on_batch is not None:
        with _CALLBACK_LOCK:
            handle = next(_CALLBACK_IDS)
            _CALLBACKS[handle] = on_batch
    try:
        with PulseHelper(views, batch_size, enabled=helper) as box:
            total, bad = fn((xs, ys, 0, len(ys), int(batch_size), int(ignore_index), handle),
                            tuple(v.state for v in views), tuple((v.read, v.reference) for v in views),
                            tuple(v.fwd for v in views), tuple(v.bwd for v in views), tuple(v.update for v in views),
                            net, box)
    finally:
        _CALLBACKS.pop(handle, None)
    if bad >= 0:
        raise FloatingPointError(f"run_mlp_batches: the gradient of the batch starting at sample {bad} holds NaN or "
                                 f"inf; training stopped there (the layers before it in that batch were updated)")
    return float(total)
