r"""numba kernels of the crossbar engine: periphery conversions and the pulsed update.

All kernels are plain functions over arrays; :class:`xbarsim.crossbar.CrossbarArray`
holds the state.  Random numbers come from :mod:`xbarsim.devices.rng` and are pure
functions of ``(seed, stream, step, index, k)``, so results do not depend on the
number of threads.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from xbarsim.devices.kernels import noise_of, pulse_once_flat, specialise
from xbarsim.devices.layout import G_WRITE_NOISE
from xbarsim.devices.rng import (STREAM_BACKWARD, STREAM_D_BITS, STREAM_FORWARD, STREAM_PULSE, STREAM_WRITE,
                                 STREAM_X_BITS, make_key, normal, normals_into, rand64)

from .state import (K_ADC, K_BACKWARD_MVM, K_BM_REPEATS, K_DAC, K_FORWARD_MVM, RNG_BACKWARD, RNG_FORWARD,
                    TILE_STREAMS, ArrayState, Coincidences, TileAt, UpdateParams)

#: elements of a read's periphery (DAC, ADC) from which it runs on numba's threads.  Measured
#: on this project's 2-core host (medians of 12-30 interleaved reads, 2026-11-27): serial was
#: faster up to 262,144 elements (512x512 batch 256 forward: 2.02 against 2.64 ms; 256x784
#: batch 100: 0.77 against 1.11 ms; 512x512 batch 512: 2.77 against 3.19 ms), parallel from
#: 524,288 (1024x1024 batch 512: 10.1 against 10.9 ms; batch 2048: 44 against 51 ms).
PARALLEL_MIN_WORK = 1 << 19
#: samples x lines above which the bit streams are drawn on numba's threads.  Measured on this
#: project's 2-core host (medians of 15 interleaved calls, 2026-11-27): the parallel build was
#: slower below about a million (batch 100 x 1040 lines: 2.07 against 1.18 ms; 100 x 2048:
#: 5.5 against 4.4 ms) and only at 1000 x 1040 about even (13.1 against 12.2 ms).
LISTS_PARALLEL_MIN_WORK = 1 << 20
PREFETCH_AHEAD = 16  # pulses
_NO_W_NOISE = np.zeros((0, 0))  # w_noise_std of a read without weight noise

_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)


@intrinsic
def trailing_zeros64(typingctx, x):
    """Index of the lowest set bit of a non-zero uint64 (LLVM ``cttz``), as int64."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return sig, codegen


def _element_pointer(context, builder, signature, args):
    """LLVM pointer to ``arr[i]`` for an intrinsic whose first two arguments are a 1-D array and an index."""
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)


def _is_int64_vector(arr) -> bool:
    return isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.int64


@intrinsic
def prefetch(typingctx, arr, i):
    """Hint the cache to load element ``arr[i]`` of a 1-D array for writing; no effect on results.

    The pulsed update touches cells in an order the hardware prefetcher cannot
    guess; issuing the loads of coming pulses' cells ahead lets the misses
    overlap instead of stalling one after another.
    """
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(i, types.Integer):
        return None
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.bitcast(_element_pointer(context, builder, signature, args), i8p)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        builder.call(fn, [ptr, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def atomic_fetch_add(typingctx, arr, i, v):
    """``arr[i] += v`` as one atomic operation; returns the old value (``arr``: 1-D int64)."""
    if not _is_int64_vector(arr):
        return None
    sig = types.int64(arr, i, v)

    def codegen(context, builder, signature, args):
        val = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", _element_pointer(context, builder, signature, args), val, "seq_cst")

    return sig, codegen


@intrinsic
def atomic_load(typingctx, arr, i):
    """``arr[i]`` read as one atomic (acquire) load (``arr``: 1-D int64).

    Unlike a locked read-modify-write it does not take the cache line from the
    thread that writes it, so polling costs the writer nothing.
    """
    if not _is_int64_vector(arr):
        return None
    sig = types.int64(arr, i)

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_element_pointer(context, builder, signature, args), "acquire", 8)

    return sig, codegen


@numba.njit(cache=True, inline="always")
def _bernoulli_bits(key, index, p, bl):
    """``bl`` independent Bernoulli(p) bits packed in a uint64 (32-bit uniforms)."""
    if p >= 1.0:
        return (_ONE << np.uint64(bl)) - _ONE if bl < 64 else ~np.uint64(0)
    thr = np.uint64(p * 4294967296.0)
    bits = np.uint64(0)
    for m in range((bl + 1) // 2):  # branch-free: with p near 1/2 a branch mispredicts half the time
        r = rand64(key, index, m)
        lo = np.uint64((r & _U32) < thr)
        hi = np.uint64((r >> _S32) < thr)
        bits |= (lo | (hi << _ONE)) << np.uint64(2 * m)
    if bl < 64:
        bits &= (_ONE << np.uint64(bl)) - _ONE
    return bits


@numba.njit(cache=True)
def update_coefficients(x_max, d_max, lr, up):
    """Bit length and probability scales (BL, A for d, B for x); see UpdateConfig (``up``: UpdateParams)."""
    dw_min, desired_bl, update_management, update_bl_management = up
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


def _coincidence_lists(x, d, lr, up, where):
    """Draw the bit streams of a batch and list, per sample and slot, the active columns.

    ``x``: (batch, cols), ``d``: (batch, rows), ``up``: UpdateParams, ``where = (seed,
    stream_offset, step0)``.  Sample ``s`` uses step ``step0 + s``.
    Per sample, the BL and the probability scales follow :func:`update_coefficients`;
    x element ``j`` fires in slot ``t`` with probability ``min(1, B |x_j|)`` and d
    element ``i`` with ``min(1, A |d_i|)``, independently per slot.  Returns
    ``(dbits, slot_ptr, slot_col, n_pulses)``: ``dbits[s, i]`` packs the slots of
    d element ``i``; the columns active in slot ``t`` of sample ``s`` are
    ``slot_col[s, slot_ptr[s, t]:slot_ptr[s, t + 1]]``; ``n_pulses`` is the number of
    coincidences, i.e. of pulses the batch will apply, or -1 (and nothing drawn) when an
    element of ``x`` or ``d`` is NaN or infinite.
    """
    seed, stream_offset, step0 = where
    batch, cols = x.shape
    rows = d.shape[1]
    bls = np.zeros(batch, dtype=np.int64)
    pa = np.zeros(batch)
    pb = np.zeros(batch)
    finite = True
    for s in range(batch):
        xm = 0.0
        for j in range(cols):
            v = abs(x[s, j])
            finite &= v < np.inf
            if v > xm:
                xm = v
        dm = 0.0
        for i in range(rows):
            v = abs(d[s, i])
            finite &= v < np.inf
            if v > dm:
                dm = v
        bl, a, b = update_coefficients(xm, dm, lr, up)
        bls[s] = bl
        pa[s] = a
        pb[s] = b

    if not finite:  # nothing drawn, nothing to pulse: the caller raises
        return (np.zeros((batch, rows), dtype=np.uint64), np.zeros((batch, 65), dtype=np.int64),
                np.zeros((batch, 0), dtype=np.int32), np.int64(-1))
    dbits = np.zeros((batch, rows), dtype=np.uint64)
    slot_ptr = np.zeros((batch, 65), dtype=np.int64)
    slot_col = np.empty((batch, cols * max(1, bls.max())), dtype=np.int32)
    pulses = np.zeros(batch, dtype=np.int64)
    for s in numba.prange(batch):
        bl = bls[s]
        if bl == 0:
            continue
        kx = make_key(seed, STREAM_X_BITS + stream_offset, step0 + s)
        kd = make_key(seed, STREAM_D_BITS + stream_offset, step0 + s)
        xbits = np.zeros(cols, dtype=np.uint64)
        n_slot = np.zeros(65, dtype=np.int64)
        for j in range(cols):
            v = x[s, j]
            if v != 0.0:
                bits = _bernoulli_bits(kx, j, abs(v) * pb[s], bl)
                xbits[j] = bits
                while bits != 0:
                    n_slot[trailing_zeros64(bits) + 1] += 1
                    bits &= bits - _ONE
        for t in range(64):
            slot_ptr[s, t + 1] = slot_ptr[s, t] + n_slot[t + 1]
            n_slot[t + 1] = slot_ptr[s, t]
        for j in range(cols):
            bits = xbits[j]
            while bits != 0:
                t = trailing_zeros64(bits)
                slot_col[s, n_slot[t + 1]] = j
                n_slot[t + 1] += 1
                bits &= bits - _ONE
        n = 0
        for i in range(rows):
            v = d[s, i]
            if v != 0.0:
                bits = _bernoulli_bits(kd, i, abs(v) * pa[s], bl)
                dbits[s, i] = bits
                while bits != 0:
                    t = trailing_zeros64(bits)
                    n += slot_ptr[s, t + 1] - slot_ptr[s, t]
                    bits &= bits - _ONE
        pulses[s] = n
    return dbits, slot_ptr, slot_col, pulses.sum()


@numba.njit(cache=True, inline="always")
def _pulse_rows(st, co, at, row_lo, row_hi):
    """Apply one pulse of sign ``-sign(d_i x_j)`` per coincidence listed by :func:`_coincidence_lists`.

    ``st``: the array's :class:`~xbarsim.crossbar.state.ArrayState`; ``co``: the tile's
    :class:`~xbarsim.crossbar.state.Coincidences`; ``at``: its :class:`~xbarsim.crossbar.state.TileAt`.
    The tile is ``w[r0:r0 + rows, c0:c0 + cols]`` of the whole C-contiguous
    arrays ``w``, ``w_read``, ``cell`` and ``pulses``; only its rows
    ``row_lo <= i < row_hi`` are pulsed, so disjoint row ranges of one tile can
    run concurrently.  Cell ``(i, j)`` of sample ``s`` is pulsed in every slot
    ``t`` where both ``dbits[s, i]`` and x element ``j`` fire:
    ``popcount(bits_d & bits_x)`` pulses (Gokmen & Vlasov, *Front. Neurosci.*
    10:333, 2016).  Row ``i`` visits only the column lists of its own set slots,
    so the work is proportional to the number of pulses, not to rows x columns
    (with update management most pairs receive none).  The c2c deviate of the
    pulse in slot ``t`` is ``normal(key(seed, PULSE, step), i * cols + j, t)``
    (tile-local ``i, j``).  Rows run in parallel in the parallel build; within a
    row the samples are applied in order, the same physics as a
    sample-sequential array.
    """
    w, w_read, cell, g, counts, seed = st.w, st.w_read, st.cell, st.g, st.pulses, st.seed
    x, d, dbits, slot_ptr, slot_col = co
    r0, c0, stream_offset, step0 = at
    batch, cols = x.shape
    full_cols = w.shape[1]
    wf = w.reshape(w.size)  # views (the arrays are C-contiguous): flat indices need no strides
    wrf = w_read.reshape(w_read.size)
    cf = counts.reshape(counts.size)
    cellf = cell.reshape(cell.size)
    nc = np.uint64(cell.shape[2])
    wn = g[G_WRITE_NOISE]
    noise = noise_of(g)
    keys = np.empty(batch, dtype=np.uint64)
    wkeys = np.empty(batch, dtype=np.uint64)
    for s in range(batch):
        keys[s] = make_key(seed, STREAM_PULSE + stream_offset, step0 + s)
        wkeys[s] = make_key(seed, STREAM_WRITE + stream_offset, step0 + s)
    # The pulses in application order (row, then sample, then slot), so that the cells of
    # pulses PREFETCH_AHEAD further on can be requested while the current one is applied:
    # for arrays larger than the cache, a pulse otherwise waits for its cell from memory.
    # Every index of the two list-building loops is unsigned, like those of the pulse loop
    # below: numba then emits no negative-index wraparound code (measured: 3x fewer cycles
    # per listed pulse in this enumeration).
    nrows = row_hi - row_lo
    row_ptr = np.zeros(nrows + 1, dtype=np.uint64)
    ubatch = np.uint64(batch)
    for r in range(nrows):
        i = np.uint64(row_lo + r)
        n = np.uint64(0)
        for s in range(ubatch):
            db = dbits[s, i]
            while db != 0:
                t = np.uint64(trailing_zeros64(db))
                db &= db - _ONE
                n += np.uint64(slot_ptr[s, t + _ONE] - slot_ptr[s, t])
        row_ptr[r + 1] = row_ptr[r] + n
    total = row_ptr[nrows]
    p_e = np.empty(total, dtype=np.uint64)   # flat index of the cell in the whole array
    p_st = np.empty(total, dtype=np.uint32)  # 128 * sample + 64 * up + slot
    ufull = np.uint64(full_cols)
    for r in numba.prange(nrows):
        i = np.uint64(row_lo + r)
        k = row_ptr[r]
        rbase = np.uint64(r0 + row_lo + r) * ufull + np.uint64(c0)
        for s in range(ubatch):
            db = dbits[s, i]
            dneg = d[s, i] < 0.0
            while db != 0:
                t = np.uint64(trailing_zeros64(db))
                db &= db - _ONE
                for q in range(np.uint64(slot_ptr[s, t]), np.uint64(slot_ptr[s, t + _ONE])):
                    j = np.uint64(slot_col[s, q])
                    up = dneg != (x[s, j] < 0.0)  # sign(d x) < 0 -> potentiate
                    p_e[k] = rbase + j
                    p_st[k] = np.uint32(s * np.uint64(128) + np.uint64(64) * np.uint64(up) + t)
                    k += _ONE
    ahead = np.uint64(PREFETCH_AHEAD)
    ucols = np.uint64(cols)
    for r in numba.prange(nrows):
        i = np.uint64(row_lo + r)
        rbase = np.uint64(r0 + row_lo + r) * ufull + np.uint64(c0)
        ibase = i * ucols
        for k in range(np.uint64(row_ptr[r]), np.uint64(row_ptr[r + 1])):
            ka = k + ahead
            if ka < total:
                ea = p_e[ka]
                prefetch(cellf, ea * nc)
                prefetch(wf, ea)
                prefetch(cf, ea)
            e = p_e[k]
            sl = p_st[k]
            s = np.uint64(sl >> np.uint32(7))
            t = np.uint64(sl & np.uint32(63))
            idx = ibase + (e - rbase)
            val = pulse_once_flat(np.float64(wf[e]), (sl & np.uint32(64)) != 0, cellf, e * nc, g, noise,
                                  normal(keys[s], idx, t))
            wf[e] = val
            if wn > 0.0:
                wrf[e] = val + wn * normal(wkeys[s], idx, 0)
            else:
                wrf[e] = val
            cf[e] += 1


def _apply_coincidences(st, co, at, row_lo, row_hi):
    """:func:`_pulse_rows` of rows ``row_lo:row_hi`` (built for the device by :func:`xbarsim.devices.kernels.specialise`)."""
    _pulse_rows(st, co, at, row_lo, row_hi)


@numba.njit(cache=True)
def row_blocks(rows, n_blocks, out):
    """Bounds of ``n_blocks`` near-equal row blocks: ``out[b] = b rows // n_blocks`` for ``b <= n_blocks``.

    ``out`` needs ``n_blocks + 1`` elements (int64); returns them.
    """
    for b in range(n_blocks + 1):
        out[b] = b * rows // n_blocks
    return out[:n_blocks + 1]


@numba.njit(cache=True, inline="always")
def _pulse_blocks(st, co, at, bounds, claimed):
    """:func:`_pulse_rows` of row blocks ``bounds[b]:bounds[b + 1]`` claimed one by one; returns how many.

    Threads running it on the same tile with the same ``claimed`` (an int64
    array; element 0 counts the blocks taken) share the blocks between them
    through an atomic counter: a thread that runs faster (a less loaded core)
    takes more blocks, so none waits for the other at the end.
    """
    nb = bounds.shape[0] - 1
    done = 0
    while True:
        b = atomic_fetch_add(claimed, 0, 1)
        if b >= nb:
            return done
        _pulse_rows(st, co, at, bounds[b], bounds[b + 1])
        done += 1


def _apply_blocks(st, co, at, bounds, claimed):
    """:func:`_pulse_blocks` from one thread (serial build); several threads may call it on one tile at once."""
    return _pulse_blocks(st, co, at, bounds, claimed)


@numba.njit(cache=True, nogil=True)
def _claim_rest(claimed, nb):
    """Take every block of ``nb`` not yet taken through ``claimed``; returns how many that was."""
    old = atomic_fetch_add(claimed, 0, nb)
    return nb - old if old < nb else 0


@numba.njit(cache=True, inline="always")
def _nm_scale(x, b, i0, i1, nm_mode, nm_thres):
    """Noise-management scale of sample ``b`` over inputs ``i0:i1``.

    ``nm_mode`` 0 (abs_max): ``max_j |x_j|`` over the finite inputs (an infinite one then
    saturates at the DAC bound), capped at ``nm_thres`` if that is > 0; 1 (none): 1;
    2 (constant): ``nm_thres``.
    """
    if nm_mode == 0:
        m = 0.0
        for j in range(i0, i1):
            v = abs(x[b, j])
            if v > m and v < np.inf:
                m = v
        if nm_thres > 0.0 and m > nm_thres:
            m = nm_thres
        return m
    if nm_mode == 2:
        return nm_thres
    return 1.0


@numba.njit(cache=True, inline="always")
def _has_nan(x, b, i0, i1):
    """Whether sample ``b`` of ``x`` holds a NaN among inputs ``i0:i1``."""
    for j in range(i0, i1):
        if x[b, j] != x[b, j]:
            return True
    return False


@numba.njit(cache=True, inline="always")
def _dac(v, inv_scale, step, inv_step, bound, noise, key, idx):
    """One DAC conversion: ``clip(round(v inv_scale / step) step, ±bound) + noise normal(key, idx, 1)``."""
    a = v * inv_scale
    if step > 0.0:
        a = np.rint(a * inv_step) * step
    if a > bound:
        a = bound
    elif a < -bound:
        a = -bound
    if noise > 0.0:
        a += noise * normal(key, idx, 1)
    return a


@numba.njit(cache=True, inline="always")
def _dac_row(src, b, i0, n, dst, inv_scale, dac, key):
    """``dst[b, j] = _dac(src[b, i0 + j], ..., key, b n + j)`` for ``j < n``; ``dac = (step, inv_step, bound, noise)``.

    Without noise the loop body holds no (untaken) ``normal()`` call, so it
    vectorises: 0.9 against 2.6 ns per element, measured serially on 256 x 512.
    """
    step, inv_step, bound, noise = dac
    if noise > 0.0:
        for j in range(n):
            dst[b, j] = _dac(src[b, i0 + j], inv_scale, step, inv_step, bound, noise, key, b * n + j)
    else:
        for j in range(n):
            dst[b, j] = _dac(src[b, i0 + j], inv_scale, step, inv_step, bound, 0.0, key, 0)


@numba.njit(cache=True, inline="always")
def _adc(v, noise, xi, step, inv_step, bound):
    """One ADC conversion of ``v + noise xi`` (``xi = normal(key, idx, 0)``); returns ``(value, clipped)``.

    ``clipped`` is 1 at the upper bound, -1 at the lower bound, 0 otherwise.
    """
    if noise > 0.0:
        v += noise * xi
    if step > 0.0:
        v = np.rint(v * inv_step) * step
    if v > bound:
        return bound, 1
    if v < -bound:
        return -bound, -1
    return v, 0


@numba.njit(cache=True, inline="always")
def _adc_row(y, b, n, noise, key, xi, adc, test_negative):
    """ADC of row ``b`` of ``y`` in place (first ``n`` outputs); returns how many saturated.

    ``noise = (out_noise, w_noise_std)``, ``adc = (step, inv_step, bound)``.

    Output ``i`` gets noise of std ``sqrt(out_noise^2 + w_noise_std[b, i]^2)`` (``w_noise_std``
    empty: ``out_noise``) times ``xi[i] = normal(key, b n + i, 0)``; ``xi`` is a buffer of
    at least ``n`` elements, left untouched (and read as is) when there is no noise.
    Saturation at the lower bound counts only with ``test_negative``.
    """
    out_noise, w_noise_std = noise
    step, inv_step, bound = adc
    has_w_noise = w_noise_std.shape[0] > 0
    if out_noise > 0.0 or has_w_noise:
        normals_into(key, b * n, 0, xi[:n])
    n_sat = 0  # counted, not branched on: 3.2 against 4.4 ns per element, noise included
    for i in range(n):
        tot = out_noise
        if has_w_noise:
            std = w_noise_std[b, i]
            tot = math.sqrt(out_noise * out_noise + std * std)
        v, clipped = _adc(np.float64(y[b, i]), tot, xi[i], step, inv_step, bound)
        n_sat += (clipped > 0) | ((clipped < 0) & test_negative)
        y[b, i] = v
    return n_sat


def _prepare_input(x, out, scale, bm_factor, rp, key_at):
    """Noise management + DAC: ``out = clip(round(x / (s f) / step) step, ±bound) + noise xi``.

    ``rp``: :class:`~xbarsim.crossbar.state.ReadParams`; ``key_at = (seed, stream, step_ctr)``.
    The DAC noise of element ``(b, j)`` is ``normal(key, b n + j, 1)``; the output
    noise (:func:`_finalize_output`) uses sub-counter 0 of the same key.
    ``scale[b]`` receives ``s`` (before the bound-management factor ``f = bm_factor[b]``).
    Rows with ``bm_factor[b] == 0`` are skipped (already final).  A sample with a NaN
    input and no finite non-zero one converts to NaN (a matmul would give NaN).
    """
    batch, n = x.shape
    seed, stream, step_ctr = key_at
    key = make_key(seed, stream, step_ctr)
    step = rp.inp_step
    dac = (step, 1.0 / step if step > 0.0 else 0.0, rp.inp_bound, rp.inp_noise)
    for b in numba.prange(batch):
        f = bm_factor[b]
        if f == 0.0:
            continue
        sc = _nm_scale(x, b, 0, n, rp.nm_mode, rp.nm_thres)
        scale[b] = sc
        if sc == 0.0:
            fill = np.nan if _has_nan(x, b, 0, n) else 0.0
            for j in range(n):
                out[b, j] = fill
            continue
        _dac_row(x, b, 0, n, out, 1.0 / (sc * f), dac, key)


def _finalize_output(y, active, w_noise_std, adc, key_at, test_negative):
    """Weight noise, output noise and ADC on ``y`` in place; returns per-sample saturation flags.

    ``w_noise_std[b, i]`` is the std of the weight noise of output ``i`` (empty for none);
    ``adc = (out_noise, step, bound)`` (``step = 0``, ``bound = inf``: no ADC);
    ``key_at = (seed, stream, step_ctr)``.  Only rows with ``active[b]`` are processed.
    """
    batch, n = y.shape
    seed, stream, step_ctr = key_at
    key = make_key(seed, stream, step_ctr)
    out_noise, step, bound = adc
    conv = (step, 1.0 / step if step > 0.0 else 0.0, bound)
    saturated = np.zeros(batch, dtype=np.bool_)
    for b in numba.prange(batch):
        if not active[b]:
            continue
        xi = np.zeros(n)
        saturated[b] = _adc_row(y, b, n, (out_noise, w_noise_std), key, xi, conv, test_negative) > 0
    return saturated


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _mvm_rows(xq, w, r0, r1, c0, c1, active, y):
    """``y[b, i - r0] = sum_j w[i, c0 + j] xq[b, j]`` for active samples (float32, any summation order).

    Column indices are unsigned so that numba emits no negative-index wraparound
    test, which would keep LLVM from vectorising the inner loop (7x slower).
    """
    batch = xq.shape[0]
    n = c1 - c0
    cu = np.uint64(c0)
    i = r0
    while i + 4 <= r1:
        for b in range(batch):
            if not active[b]:
                continue
            a0 = np.float32(0.0)
            a1 = np.float32(0.0)
            a2 = np.float32(0.0)
            a3 = np.float32(0.0)
            for j in range(n):
                v = xq[b, j]
                jj = cu + np.uint64(j)
                a0 += v * w[i, jj]
                a1 += v * w[i + 1, jj]
                a2 += v * w[i + 2, jj]
                a3 += v * w[i + 3, jj]
            y[b, i - r0] = a0
            y[b, i + 1 - r0] = a1
            y[b, i + 2 - r0] = a2
            y[b, i + 3 - r0] = a3
        i += 4
    while i < r1:
        for b in range(batch):
            if active[b]:
                a = np.float32(0.0)
                for j in range(n):
                    a += xq[b, j] * w[i, cu + np.uint64(j)]
                y[b, i - r0] = a
        i += 1


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _mvm_cols(dq, w, r0, r1, c0, c1, active, z):
    """``z[b, j - c0] = sum_i dq[b, i] w[r0 + i, j]`` for active samples (the transposed read).

    Rows are taken four at a time for all samples, so they stay in L1 while the
    batch's partial sums (a few kB) are updated.
    """
    batch = dq.shape[0]
    n = c1 - c0
    cu = np.uint64(c0)
    for b in range(batch):
        if active[b]:
            for j in range(n):
                z[b, j] = 0.0
    i = r0
    while i + 4 <= r1:
        for b in range(batch):
            if not active[b]:
                continue
            v0 = dq[b, i - r0]
            v1 = dq[b, i + 1 - r0]
            v2 = dq[b, i + 2 - r0]
            v3 = dq[b, i + 3 - r0]
            for j in range(n):
                jj = cu + np.uint64(j)
                z[b, j] += v0 * w[i, jj] + v1 * w[i + 1, jj] + v2 * w[i + 2, jj] + v3 * w[i + 3, jj]
        i += 4
    while i < r1:
        for b in range(batch):
            if active[b]:
                v = dq[b, i - r0]
                for j in range(n):
                    z[b, j] += v * w[i, cu + np.uint64(j)]
        i += 1


def _read_tiles(v, w, st, rp, transposed, out):
    r"""A whole read of a tiled array in one call: every tile through its own periphery.

    Per tile and sample ``b`` (see :class:`xbarsim.crossbar.IOConfig`):

    .. math::
        x_q = \mathrm{clip}(\mathrm{round}(x / (s f\,\Delta_{in}))\,\Delta_{in}, \pm b_{in}) + \sigma_{in}\xi,
        \quad y = \mathrm{clip}(\mathrm{round}((W_t x_q + \sigma_{out}\xi) / \Delta_{out})\,\Delta_{out}, \pm b_{out}),
        \quad out \mathrel{+}= s f\, y

    with ``s`` from noise management and ``f = 2^k`` from iterative bound management
    (forward reads only: saturated samples are read again with the input halved,
    while ``2 f <= bm_limit``).  Tile ``t`` uses stream ``stream + TILE_STREAMS t`` and
    counter ``16 ctr + k``, ``ctr`` the direction's read count in ``st.rng``; the noise of
    sample ``b`` is indexed by ``b`` whatever subset is re-read, so the result does not
    depend on the batch composition.  ``w`` holds the weights reads see (outputs x
    inputs), ``st.tiles`` the tiles' ``(r0, r1, c0, c1)``, ``rp`` the direction's
    :class:`~xbarsim.crossbar.state.ReadParams`; ``transposed`` reads ``W^T``.  ``out``
    (batch, n_out) is overwritten.  The read's stream counter, MVM, DAC, ADC and
    bound-management counts advance in ``st``.  NaN inputs give NaN outputs for their
    sample (as a matmul would); infinite ones saturate at the DAC bound.

    This is the small-batch path: it replaces five numpy/torch calls per tile by
    one compiled call (the periphery of a batch-10 read is cheaper than the
    Python around it); large batches use torch's GEMM (``CrossbarArray._read``).
    """
    tiles, seed = st.tiles, st.seed
    if transposed:
        stream, which, k_mvm = STREAM_BACKWARD, RNG_BACKWARD, K_BACKWARD_MVM
    else:
        stream, which, k_mvm = STREAM_FORWARD, RNG_FORWARD, K_FORWARD_MVM
    ctr = st.rng[which]
    st.rng[which] += 1
    nm_mode, nm_thres = rp.nm_mode, rp.nm_thres
    out_noise, bound_management, bm_limit = rp.out_noise, rp.bound_management, rp.bm_limit
    batch = v.shape[0]
    adc = 0
    repeats = 0
    dacs = 0
    for b in range(batch):
        for o in range(out.shape[1]):
            out[b, o] = 0.0
    dac = (rp.inp_step, 1.0 / rp.inp_step if rp.inp_step > 0.0 else 0.0, rp.inp_bound, rp.inp_noise)
    conv = (rp.out_step, 1.0 / rp.out_step if rp.out_step > 0.0 else 0.0, rp.out_bound)
    for t in range(tiles.shape[0]):
        r0, r1, c0, c1 = tiles[t, 0], tiles[t, 1], tiles[t, 2], tiles[t, 3]
        if transposed:
            i0, i1, o0, o1 = r0, r1, c0, c1
        else:
            i0, i1, o0, o1 = c0, c1, r0, r1
        n_in = i1 - i0
        n_out = o1 - o0
        dacs += batch * n_in
        xq = np.empty((batch, n_in), dtype=np.float32)
        y = np.empty((batch, n_out), dtype=np.float32)
        scale = np.zeros(batch)
        factor = np.ones(batch)
        active = np.ones(batch, dtype=np.bool_)
        xi = np.zeros(n_out)  # output-noise deviates of one sample
        nan_in = np.zeros(batch, dtype=np.bool_)
        tile_stream = stream + TILE_STREAMS * t
        k = 0
        while True:
            key = make_key(seed, tile_stream, ctr * 16 + k)
            for b in range(batch):
                if not active[b]:
                    continue
                sc = _nm_scale(v, b, i0, i1, nm_mode, nm_thres)
                scale[b] = sc
                if sc == 0.0:
                    nan_in[b] = _has_nan(v, b, i0, i1)
                    for j in range(n_in):
                        xq[b, j] = 0.0
                    continue
                _dac_row(v, b, i0, n_in, xq, 1.0 / (sc * factor[b]), dac, key)
            if transposed:
                _mvm_cols(xq, w, r0, r1, c0, c1, active, y)
            else:
                _mvm_rows(xq, w, r0, r1, c0, c1, active, y)
            grow = False
            for b in range(batch):
                if not active[b]:
                    continue
                adc += n_out
                if scale[b] == 0.0:
                    fill = np.nan if nan_in[b] else 0.0
                    for o in range(n_out):
                        y[b, o] = fill
                    active[b] = False
                    continue
                sat = _adc_row(y, b, n_out, (out_noise, _NO_W_NOISE), key, xi, conv, True) > 0
                if bound_management and sat and factor[b] * 2.0 <= bm_limit:
                    factor[b] *= 2.0
                    grow = True
                    repeats += 1
                else:
                    active[b] = False
            if not grow:
                break
            k += 1
        for b in range(batch):
            f = np.float32(scale[b] * factor[b])
            for o in range(n_out):
                out[b, o0 + o] += y[b, o] * f
    st.counters[k_mvm] += batch * tiles.shape[0]
    st.counters[K_DAC] += dacs
    st.counters[K_ADC] += adc
    st.counters[K_BM_REPEATS] += repeats

read_tiles = specialise(_read_tiles, False)
prepare_input_serial, prepare_input_parallel = specialise(_prepare_input, False), specialise(_prepare_input, True)
finalize_output_serial, finalize_output_parallel = (specialise(_finalize_output, False),
                                                    specialise(_finalize_output, True))
coincidence_lists_serial, coincidence_lists_parallel = (specialise(_coincidence_lists, False),
                                                        specialise(_coincidence_lists, True))
#: pulses from which a tile's pulse phase runs on numba's threads.  Launching them costs 0.1-0.2 ms
#: on this project's 2-core VM (an empty two-iteration prange: median 100 us back to back, 200 us
#: after 10 ms idle; 2026-11-27), and serial was faster up to about 250,000 pulses (256x784,
#: medians of 30 interleaved calls, 2026-11-27: 31k pulses 0.51 against 0.86 ms, 122k 2.48
#: against 3.24 ms, 242k 3.92 against 3.98 ms; 1.6 M pulses: 1.6x faster in parallel).
PARALLEL_MIN_PULSES = 1 << 18
BLOCKS_PER_THREAD = 8  # row blocks per thread of a parallel tile update (claimed dynamically)


def _pulse_parts(st, co, at, bounds, claimed, n_parts):
    """:func:`_pulse_blocks` on ``n_parts`` of numba's threads at once (parallel build).

    Each thread applies whole row blocks, each block's pulses in order with their
    own prefetching; a prange build of :func:`_pulse_rows` itself was measured
    10-50 % slower per pulse than the serial loop.  Blocks are claimed, not
    assigned: with one fixed half of the rows per thread the slower of the two
    vCPUs of this project's host set the pace (256x784, batch 100, 1.6 M pulses:
    15.9 ms with two fixed halves, 11.8-12.4 ms with 8-32 claimed blocks, 19.2 ms
    on one thread; medians of 25 interleaved calls, 2026-11-27).
    ``claimed[0]`` must be 0 on entry.
    """
    for part in numba.prange(n_parts):
        _pulse_blocks(st, co, at, bounds, claimed)


class TileUpdate(NamedTuple):
    """One tile's share of an update, ready for :func:`plan_pulses` (made by ``CrossbarArray``).

    ``state`` is the whole array's :class:`~xbarsim.crossbar.state.ArrayState`; ``x`` and ``d``
    the tile's columns and rows; ``at`` the tile's origin and streams; ``step`` the
    device's compiled step (:attr:`xbarsim.devices.DeviceConfig.pulse_step`).
    """

    state: ArrayState
    x: np.ndarray
    d: np.ndarray
    lr: float
    update: UpdateParams
    at: TileAt
    step: Any


class PulseJob:
    """The pulse phase of one tile's update, ready to run: its coincidence lists and exact pulse count.

    Made by :func:`plan_pulses`; jobs of different tiles, and disjoint row
    ranges of one job, touch disjoint cells, so they may run in any order or
    concurrently (the kernels release the GIL) and give bit-identical results.
    """

    __slots__ = ("args", "step", "pulses", "rows")

    def __init__(self, args: tuple | None, step: Any, pulses: int, rows: int) -> None:
        self.args = args  # (ArrayState, Coincidences, TileAt)
        self.step = step
        self.pulses = pulses
        self.rows = rows

    def run(self, parallel: bool | None = None, row_lo: int = 0, row_hi: int | None = None) -> None:
        """Apply the pulses of the tile's rows ``row_lo:row_hi`` (default all).

        ``parallel=None`` uses numba's threads only above ``PARALLEL_MIN_PULSES``;
        the whole tile then goes to :func:`_pulse_parts` (row blocks claimed by the threads).
        """
        if self.pulses:
            row_hi = self.rows if row_hi is None else row_hi
            if parallel is None:
                parallel = self.pulses * (row_hi - row_lo) >= PARALLEL_MIN_PULSES * self.rows
            n_parts = min(numba.get_num_threads(), row_hi - row_lo)
            if parallel and n_parts > 1 and (row_lo, row_hi) == (0, self.rows):
                n_blocks = min(self.rows, BLOCKS_PER_THREAD * n_parts)
                bounds = row_blocks(self.rows, n_blocks, np.empty(n_blocks + 1, np.int64))
                specialise(_pulse_parts, True, STEP=self.step)(*self.args, bounds, np.zeros(1, np.int64), n_parts)
            else:
                specialise(_apply_coincidences, parallel, STEP=self.step)(*self.args, row_lo, row_hi)

    def run_blocks(self, bounds: np.ndarray, claimed: np.ndarray) -> int:
        """Apply row blocks ``bounds[b]:bounds[b + 1]`` taken through ``claimed`` (:func:`_apply_blocks`).

        Several threads may call it at once with the same arrays; returns the
        number of blocks this call applied.
        """
        if not self.pulses:
            return int(_claim_rest(claimed, len(bounds) - 1))
        return int(specialise(_apply_blocks, False, STEP=self.step)(*self.args, bounds, claimed))


def plan_pulses(tile: TileUpdate, *, parallel=None) -> PulseJob:
    """Draw the bit streams of one tile (:func:`_coincidence_lists`); return its :class:`PulseJob`.

    With ``parallel=None`` bit drawing runs serially unless samples x lines reaches
    ``LISTS_PARALLEL_MIN_WORK`` (below it, launching numba's threads cost more than
    they saved).  Threads other than the one that launches numba's parallel regions
    must pass ``parallel=False``: the ``workqueue`` layer aborts the process when two
    threads launch at once.
    """
    st, x, d, lr, up, at, step = tile
    if x.shape[0] == 0:
        return PulseJob(None, step, 0, d.shape[1])
    if parallel is None:
        parallel = x.shape[0] * (x.shape[1] + d.shape[1]) >= LISTS_PARALLEL_MIN_WORK
    lists = coincidence_lists_parallel if parallel else coincidence_lists_serial
    dbits, slot_ptr, slot_col, n = lists(x, d, lr, up, (st.seed, at.stream_offset, at.step0))
    return PulseJob((st, Coincidences(x, d, dbits, slot_ptr, slot_col), at), step, int(n), d.shape[1])


def prepare_input(x, *args):
    """Dispatch :func:`_prepare_input` by work size."""
    fn = prepare_input_parallel if x.size >= PARALLEL_MIN_WORK else prepare_input_serial
    return fn(x, *args)


def finalize_output(y, *args):
    """Dispatch :func:`_finalize_output` by work size."""
    fn = finalize_output_parallel if y.size >= PARALLEL_MIN_WORK else finalize_output_serial
    return fn(y, *args)
