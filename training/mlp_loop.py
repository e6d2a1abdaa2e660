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
from xbarsim.crossbar.pulse_helper import PulseHelper, helper_sync, pulse_tile_shared
from xbarsim.devices.kernels import specialise
from xbarsim.devices.models import G_MODEL
from xbarsim.devices.rng import STREAM_BACKWARD, STREAM_FORWARD

__all__ = ["ACT_CODES", "LoopLayer", "run_mlp_batches"]

_aten = torch.ops.aten
_MEAN = 1  # at::Reduction::Mean
#: activation module name -> code used inside the compiled loop
ACT_CODES = {"Sigmoid": 0, "Tanh": 1, "ReLU": 2}
MODEL = -1  # device model id, bound to a constant by specialise()

# counter columns of the per-layer bookkeeping array
_FWD_SAMPLES, _BWD_SAMPLES, _ADC, _BM, _PULSES = range(5)
_N_COUNTERS = 5

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
def _run(xs, ys, k_lo, k_hi, batch_size, ignore_index, acts, lr_w, lr_b, has_bias, biases, ws, w_reads, cells, gs,
         pw_ups, pw_downs, pulses, tiles, refs, reads, fwd_f, fwd_i, bwd_f, bwd_i, upd_f, upd_i, tile_streams, ctr,
         counters, last_tile, callback, box):
    """Train on ``xs[k:k + batch_size]`` for ``k = k_lo, k_lo + batch_size, ... < k_hi``; returns sum of loss x n.

    Per layer ``l``: ``ctr[l] = (forward, backward, update)`` stream counters,
    advanced as ``CrossbarArray`` advances them (read calls, read calls, update
    samples); ``counters[l]`` accumulates the other operation counts for
    ``CrossbarArray.loop_advance``; both are written after every batch, so they
    are exact if a callback raises.
    """
    model = MODEL if MODEL >= 0 else int(gs[0][G_MODEL])
    n_layers = len(ws)
    total = 0.0
    k = k_lo
    while k < k_hi:
        n = min(batch_size, k_hi - k)
        hs = [np.ascontiguousarray(xs[k:k + n])]  # inputs of each layer
        z_last = np.empty((n, ws[n_layers - 1].shape[0]), dtype=np.float32)
        for layer in range(n_layers):
            rows = ws[layer].shape[0]
            z = np.empty((n, rows), dtype=np.float32)
            adc, repeats = read_tiles(hs[layer], reads[layer], tiles[layer], False, fwd_i[layer, 0],
                                      fwd_f[layer, 0], fwd_f[layer, 1], fwd_f[layer, 2], fwd_f[layer, 3],
                                      fwd_f[layer, 4], fwd_f[layer, 5], fwd_f[layer, 6], fwd_i[layer, 1] != 0,
                                      fwd_f[layer, 7], upd_i[layer, 3], STREAM_FORWARD, tile_streams, ctr[layer, 0], z)
            ctr[layer, 0] += 1
            counters[layer, _FWD_SAMPLES] += n
            counters[layer, _ADC] += adc
            counters[layer, _BM] += repeats
            if has_bias[layer]:
                b = biases[layer]
                for s in range(n):
                    for o in range(rows):
                        z[s, o] += b[o]
            if layer < n_layers - 1:
                h = np.empty((n, rows), dtype=np.float32)
                code = acts[layer]
                _nb_act_forward(code, z, h)
                hs.append(h)
            else:
                z_last = z
        g = np.empty_like(z_last)
        yb = ys[k:k + n]
        loss = _nb_loss_grad(z_last, yb, ignore_index, g)
        total += loss * n
        for layer in range(n_layers - 1, -1, -1):
            d = g.copy()
            if layer > 0:
                cols = ws[layer].shape[1]
                zt = np.empty((n, cols), dtype=np.float32)
                adc, repeats = read_tiles(d, reads[layer], tiles[layer], True, bwd_i[layer, 0], bwd_f[layer, 0],
                                          bwd_f[layer, 1], bwd_f[layer, 2], bwd_f[layer, 3], bwd_f[layer, 4],
                                          bwd_f[layer, 5], bwd_f[layer, 6], bwd_i[layer, 1] != 0, bwd_f[layer, 7],
                                          upd_i[layer, 3], STREAM_BACKWARD, tile_streams, ctr[layer, 1], zt)
                ctr[layer, 1] += 1
                counters[layer, _BWD_SAMPLES] += n
                counters[layer, _ADC] += adc
                counters[layer, _BM] += repeats
                g_next = np.empty((n, cols), dtype=np.float32)
                code = acts[layer - 1]
                h_prev = hs[layer]
                _nb_act_backward(code, zt, h_prev, g_next)
            else:
                g_next = g
            step0 = ctr[layer, 2]
            ctr[layer, 2] += n
            lr = lr_w[layer]
            if lr > 0:
                tl = tiles[layer]
                single = tl.shape[0] == 1
                x = hs[layer]
                done = 0
                for t in range(tl.shape[0]):
                    r0, r1, c0, c1 = tl[t, 0], tl[t, 1], tl[t, 2], tl[t, 3]
                    xt = x if single else np.ascontiguousarray(x[:, c0:c1])
                    dt = d if single else np.ascontiguousarray(d[:, r0:r1])
                    p = pulse_tile_shared(layer, ws[layer], w_reads[layer], cells[layer], gs[layer], pw_ups[layer],
                                          pw_downs[layer], xt, dt, lr, upd_f[layer, 0], upd_i[layer, 0],
                                          upd_i[layer, 1] != 0, upd_i[layer, 2] != 0, upd_i[layer, 3],
                                          tile_streams * t, step0, pulses[layer], r0, c0, model, box)
                    last_tile[layer, t] = p
                    done += p
                counters[layer, _PULSES] += done
                ref = refs[layer]
                if ref.size > 0:
                    helper_sync(box)
                    rd = reads[layer]
                    wr = w_reads[layer]
                    for i in range(rd.shape[0]):
                        for j in range(rd.shape[1]):
                            rd[i, j] = wr[i, j] - ref[i, j]
            if has_bias[layer]:
                bl = biases[layer]
                lrb = lr_b[layer]
                _nb_bias_step(bl, g, lrb)
            g = g_next
        helper_sync(box)  # the next batch reads every layer
        k += n
        if callback > 0:
            _nb_on_batch(callback)
    return total


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
    states = [layer.state for layer in layers]
    n_layers = len(layers)
    models = {s.model for s in states}
    model = models.pop() if len(models) == 1 else -1
    fn = specialise(_run, False, sources=(crossbar_kernels.__file__, pulse_helper.__file__), MODEL=model)
    max_tiles = max(len(s.tiles) for s in states)
    ctr = np.array([[s.rng_forward, s.rng_backward, s.rng_update] for s in states], dtype=np.int64)
    ctr0 = ctr.copy()
    counters = np.zeros((n_layers, _N_COUNTERS), dtype=np.int64)
    last_tile = np.zeros((n_layers, max_tiles), dtype=np.int64)
    fwd_f = np.array([[*s.fwd[1:8], s.fwd[9]] for s in states], dtype=np.float64)
    fwd_i = np.array([[s.fwd[0], int(s.fwd[8])] for s in states], dtype=np.int64)
    bwd_f = np.array([[*s.bwd[1:8], s.bwd[9]] for s in states], dtype=np.float64)
    bwd_i = np.array([[s.bwd[0], int(s.bwd[8])] for s in states], dtype=np.int64)
    upd_f = np.array([[s.dw_min] for s in states], dtype=np.float64)
    upd_i = np.array([[s.desired_bl, int(s.update_management), int(s.update_bl_management), s.seed] for s in states],
                     dtype=np.int64)
    has_bias = np.array([layer.bias is not None for layer in layers])
    biases = tuple(_EMPTY_F32 if layer.bias is None else layer.bias.detach().numpy() for layer in layers)
    acts = np.array([layer.act for layer in layers], dtype=np.int64)
    handle = 0
    if on_batch is not None:
        with _CALLBACK_LOCK:
            handle = next(_CALLBACK_IDS)
            _CALLBACKS[handle] = on_batch
    try:
        with PulseHelper(states, batch_size, enabled=helper) as box:
            return float(fn(xs, ys, 0, len(ys), int(batch_size), int(ignore_index), acts,
                            np.array(lr_w, dtype=np.float64), np.array(lr_b, dtype=np.float64), has_bias, biases,
                            tuple(s.w for s in states), tuple(s.w_read for s in states),
                            tuple(s.cell for s in states), tuple(s.g for s in states),
                            tuple(s.pw_up for s in states), tuple(s.pw_down for s in states),
                            tuple(s.pulses for s in states), tuple(s.tiles for s in states),
                            tuple(s.reference for s in states), tuple(s.read for s in states), fwd_f, fwd_i, bwd_f,
                            bwd_i, upd_f, upd_i, int(states[0].tile_streams), ctr, counters, last_tile, handle, box))
    finally:
        _CALLBACKS.pop(handle, None)
        for i, layer in enumerate(layers):
            c = counters[i]
            done = ctr[i] - ctr0[i]  # forward reads, backward reads, update samples
            layer.array.loop_advance(forward_reads=int(done[0]), forward_samples=int(c[_FWD_SAMPLES]),
                                     backward_reads=int(done[1]), backward_samples=int(c[_BWD_SAMPLES]),
                                     adc=int(c[_ADC]), bm_repeats=int(c[_BM]), update_samples=int(done[2]),
                                     pulses=int(c[_PULSES]), last_tile_pulses=last_tile[i, :len(layer.state.tiles)])
