r"""numba kernels of the crossbar engine: periphery conversions and the pulsed update.

All kernels are plain functions over arrays; :class:`crossbar.CrossbarArray`
holds the state.  Random numbers come from :mod:`devices.rng` and are pure
functions of ``(seed, stream, step, index, k)``, so results do not depend on the
number of threads.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

from devices.kernels import noise_scalars, pulse_train, specialise
from devices.models import G_MODEL, G_WRITE_NOISE
from devices.rng import STREAM_D_BITS, STREAM_PULSE, STREAM_WRITE, STREAM_X_BITS, make_key, normal, rand64

def serial_and_parallel(py_func):
    """Compile ``py_func`` twice: serial (``prange`` runs as ``range``) and parallel.

    Launching numba's thread pool costs tens of microseconds, more than the whole
    work of a batch-10 read of a small layer, so callers pick the variant by work
    size.  The copies get distinct qualified names so their on-disk caches differ.
    """
    import types as _pytypes

    def clone(suffix):
        f = _pytypes.FunctionType(py_func.__code__, py_func.__globals__, py_func.__name__ + suffix,
                                  py_func.__defaults__, py_func.__closure__)
        f.__qualname__ = py_func.__qualname__ + suffix
        f.__doc__ = py_func.__doc__
        return f

    return (numba.njit(cache=True)(clone("_serial")),
            numba.njit(cache=True, parallel=True)(clone("_parallel")))


PARALLEL_MIN_WORK = 1 << 16
MODEL = -1  # device model id, a compile-time constant in specialise() builds  # elements (reads) or row*col*sample visits (updates)

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


@intrinsic
def popcount64(typingctx, x):
    """Number of set bits of a uint64 (LLVM ``ctpop``, one instruction on x86-64)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@numba.njit(cache=True, inline="always")
def _bernoulli_bits(key, index, p, bl):
    """``bl`` independent Bernoulli(p) bits packed in a uint64 (32-bit uniforms)."""
    if p >= 1.0:
        return (_ONE << np.uint64(bl)) - _ONE if bl < 64 else ~np.uint64(0)
    thr = np.uint64(p * 4294967296.0)
    bits = np.uint64(0)
    for m in range((bl + 1) // 2):
        r = rand64(key, index, m)
        if (r & _U32) < thr:
            bits |= _ONE << np.uint64(2 * m)
        if 2 * m + 1 < bl and (r >> _S32) < thr:
            bits |= _ONE << np.uint64(2 * m + 1)
    return bits


@numba.njit(cache=True)
def update_coefficients(x_max, d_max, lr, dw_min, desired_bl, update_management, update_bl_management):
    """Bit length and probability scales (BL, A for d, B for x); see UpdateConfig."""
    if x_max == 0.0 or d_max == 0.0 or lr == 0.0:
        return 0, 0.0, 0.0
    k = lr * x_max * d_max / dw_min
    if update_bl_management:
        bl = int(math.ceil(k))
        if bl > desired_bl:
            bl = desired_bl
        if bl < 1:
            bl = 1
    else:
        bl = desired_bl
    a = math.sqrt(lr / (dw_min * bl))
    b = a
    if update_management:
        d_val = d_max
        if k > desired_bl:
            d_val *= desired_bl / k
        a *= math.sqrt(x_max / d_val)
        b *= math.sqrt(d_val / x_max)
    return bl, a, b


def _pulsed_update(w, w_read, cell, g, pw_up, pw_down, x, d, lr, dw_min, desired_bl, update_management,
                  update_bl_management, seed, stream_offset, step0, counts):
    """Apply a batch of stochastic pulse-train updates, one sample after another.

    ``x``: (batch, cols), ``d``: (batch, rows).  Sample ``b`` uses step ``step0 + b``.
    Per sample, bit streams are drawn for the non-zero x and d entries, and
    cell ``(i, j)`` receives ``popcount(bits_d[i] & bits_x[j])`` pulses of sign
    ``-sign(d_i x_j)``.  Rows are processed in parallel; within a row the samples
    are applied in order, which is the same physics as a sample-sequential array.
    Returns the total number of pulses.
    """
    batch, cols = x.shape
    rows = d.shape[1]
    bls = np.zeros(batch, dtype=np.int64)
    pa = np.zeros(batch)
    pb = np.zeros(batch)
    for s in range(batch):
        xm = 0.0
        for j in range(cols):
            v = abs(x[s, j])
            if v > xm:
                xm = v
        dm = 0.0
        for i in range(rows):
            v = abs(d[s, i])
            if v > dm:
                dm = v
        bl, a, b = update_coefficients(xm, dm, lr, dw_min, desired_bl, update_management, update_bl_management)
        bls[s] = bl
        pa[s] = a
        pb[s] = b

    xbits = np.zeros((batch, cols), dtype=np.uint64)
    dbits = np.zeros((batch, rows), dtype=np.uint64)
    xnz = np.zeros((batch, cols), dtype=np.int32)
    nnz = np.zeros(batch, dtype=np.int64)
    for s in numba.prange(batch):
        bl = bls[s]
        if bl == 0:
            continue
        kx = make_key(seed, STREAM_X_BITS + stream_offset, step0 + s)
        kd = make_key(seed, STREAM_D_BITS + stream_offset, step0 + s)
        n = 0
        for j in range(cols):
            v = x[s, j]
            if v != 0.0:
                bits = _bernoulli_bits(kx, j, abs(v) * pb[s], bl)
                if bits != 0:
                    xbits[s, j] = bits
                    xnz[s, n] = j
                    n += 1
        nnz[s] = n
        for i in range(rows):
            v = d[s, i]
            if v != 0.0:
                dbits[s, i] = _bernoulli_bits(kd, i, abs(v) * pa[s], bl)

    wn = g[G_WRITE_NOISE]
    model = MODEL if MODEL >= 0 else int(g[G_MODEL])
    std, mult = noise_scalars(g)
    total = np.zeros(rows, dtype=np.int64)
    max_nnz = 0
    for s in range(batch):
        if nnz[s] > max_nnz:
            max_nnz = nnz[s]
    for i in numba.prange(rows):
        hit_col = np.empty(max_nnz, dtype=np.int64)
        hit_n = np.empty(max_nnz, dtype=np.int64)
        row_total = 0
        for s in range(batch):
            db = dbits[s, i]
            if db == 0:
                continue
            # branch-free compaction of the coincidences of this row and sample
            m = 0
            for t in range(nnz[s]):
                j = xnz[s, t]
                c = np.int64(popcount64(db & xbits[s, j]))
                hit_col[m] = j
                hit_n[m] = c
                m += c != 0
            if m == 0:
                continue
            d_neg = d[s, i] < 0.0
            key = make_key(seed, STREAM_PULSE + stream_offset, step0 + s)
            wkey = make_key(seed, STREAM_WRITE + stream_offset, step0 + s)
            for t in range(m):
                j = hit_col[t]
                c = hit_n[t]
                up = d_neg != (x[s, j] < 0.0)  # sign(d x) < 0 -> potentiate
                idx = i * cols + j
                val = pulse_train(w[i, j], up, c, cell, i, j, model, std, mult, g, pw_up, pw_down, key, idx)
                w[i, j] = val
                if wn > 0.0:
                    w_read[i, j] = val + wn * normal(wkey, idx, 0)
                else:
                    w_read[i, j] = val
                counts[i, j] += c
                row_total += c
        total[i] = row_total
    return total.sum()


def _prepare_input(x, out, scale, nm_mode, nm_thres, bm_factor, step, bound, noise, seed, stream, step_ctr):
    """Noise management + DAC: ``out = clip(round(x / (s f) / step) step, ±bound) + noise xi``.

    ``nm_mode``: 0 abs_max, 1 none, 2 constant.  ``scale[b]`` receives ``s`` (before
    the bound-management factor ``f = bm_factor[b]``).  Rows with ``bm_factor[b] == 0``
    are skipped (already final).
    """
    batch, n = x.shape
    key = make_key(seed, stream, step_ctr)
    for b in numba.prange(batch):
        f = bm_factor[b]
        if f == 0.0:
            continue
        if nm_mode == 0:
            m = 0.0
            for j in range(n):
                v = abs(x[b, j])
                if v > m:
                    m = v
            if nm_thres > 0.0 and m > nm_thres:
                m = nm_thres
            s = m
        elif nm_mode == 2:
            s = nm_thres
        else:
            s = 1.0
        scale[b] = s
        if s == 0.0:
            for j in range(n):
                out[b, j] = 0.0
            continue
        inv = 1.0 / (s * f)
        inv_step = 1.0 / step if step > 0.0 else 0.0
        for j in range(n):
            v = x[b, j] * inv
            if step > 0.0:
                v = np.rint(v * inv_step) * step
            if v > bound:
                v = bound
            elif v < -bound:
                v = -bound
            if noise > 0.0:
                v += noise * normal(key, b * n + j, 0)
            out[b, j] = v


def _finalize_output(y, active, w_noise_std, out_noise, step, bound, seed, stream, step_ctr, test_negative):
    """Weight noise, output noise and ADC on ``y`` in place; returns per-sample saturation flags.

    ``w_noise_std[b, i]`` is the std of the weight noise of output ``i`` (zeros for none).
    Only rows with ``active[b]`` are processed.
    """
    batch, n = y.shape
    key = make_key(seed, stream, step_ctr)
    saturated = np.zeros(batch, dtype=np.bool_)
    has_w_noise = w_noise_std.shape[0] > 0
    inv_step = 1.0 / step if step > 0.0 else 0.0
    for b in numba.prange(batch):
        if not active[b]:
            continue
        sat = False
        for i in range(n):
            v = np.float64(y[b, i])
            tot = out_noise
            if has_w_noise:
                std = w_noise_std[b, i]
                tot = math.sqrt(out_noise * out_noise + std * std)
            if tot > 0.0:
                v += tot * normal(key, b * n + i, 0)
            if step > 0.0:
                v = np.rint(v * inv_step) * step
            if v > bound:
                v = bound
                sat = True
            elif v < -bound:
                v = -bound
                if test_negative:
                    sat = True
            y[b, i] = v
        saturated[b] = sat
    return saturated


prepare_input_serial, prepare_input_parallel = serial_and_parallel(_prepare_input)
finalize_output_serial, finalize_output_parallel = serial_and_parallel(_finalize_output)


def pulsed_update(w, w_read, cell, g, pw_up, pw_down, x, d, *args):
    """Dispatch :func:`_pulsed_update` to the serial or parallel build by work size."""
    work = x.shape[0] * w.shape[0] * w.shape[1]
    fn = specialise(_pulsed_update, work >= 4 * PARALLEL_MIN_WORK, MODEL=int(g[G_MODEL]))
    return fn(w, w_read, cell, g, pw_up, pw_down, x, d, *args)


def prepare_input(x, *args):
    """Dispatch :func:`_prepare_input` by work size."""
    fn = prepare_input_parallel if x.size >= PARALLEL_MIN_WORK else prepare_input_serial
    return fn(x, *args)


def finalize_output(y, *args):
    """Dispatch :func:`_finalize_output` by work size."""
    fn = finalize_output_parallel if y.size >= PARALLEL_MIN_WORK else finalize_output_serial
    return fn(y, *args)
