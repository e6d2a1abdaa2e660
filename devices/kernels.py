r"""numba kernels for the device physics: one pulse, pulse trains, decay, diffusion.

Per-cell parameters live in one float32 array ``cell`` of shape ``(rows, cols, N_CELL)``
(layout ``C_*`` below, filled by :mod:`devices.population`), interleaved so that one
pulse touches one cache line; model-wide scalars are in a float64 vector ``g``
(layout ``devices.models.G_*``).

A pulse in direction ``up`` (True: potentiation) changes ``w`` by the model's step
(see the docstrings in :mod:`devices.models`) times the cycle-to-cycle factor
``(1 + dw_min_std * xi)`` (``mult_noise``) or plus ``alpha * dw_min_std * xi``, then
``w`` is clipped to the cell's ``[b_min, b_max]``.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .models import (G_DW_MIN_STD, G_ES_A, G_ES_A_DOWN, G_ES_A_UP, G_ES_B, G_ES_GAMMA_DOWN,
                     G_ES_GAMMA_UP, G_MODEL, G_MULT_NOISE, G_WRITE_NOISE, MODEL_CONSTANT, MODEL_EXP,
                     MODEL_LINEAR, MODEL_PIECEWISE, MODEL_POW)
from .rng import STREAM_DIFFUSION, STREAM_PULSE, STREAM_WRITE, make_key, normal

# per-cell parameter planes
C_SCALE_UP, C_SCALE_DOWN, C_B_MAX, C_B_MIN = 0, 1, 2, 3
C_SLOPE_UP, C_SLOPE_DOWN = 4, 5      # LinearStep/SoftBounds slopes; PowStep exponents gamma_+/-
C_DECAY, C_DIFFUSION = 6, 7          # per-call decay factor (1 = none), diffusion std
N_CELL = 8


@numba.njit(cache=True, inline="always")
def step_size(model, w, up, scale, slope, b_max, b_min, g, pw):
    """Deterministic step magnitude (>= 0) of one pulse at weight ``w``."""
    if model == MODEL_CONSTANT:
        return scale
    if model == MODEL_LINEAR:
        return scale + slope * w
    if model == MODEL_EXP:
        b_diff = b_max - b_min
        if b_diff <= 0.0:
            return 0.0
        z = 2.0 * w / b_diff * g[G_ES_A] + g[G_ES_B]
        if up:
            y = 1.0 - g[G_ES_A_UP] * math.exp(g[G_ES_GAMMA_UP] * z)
        else:
            y = 1.0 - g[G_ES_A_DOWN] * math.exp(-g[G_ES_GAMMA_DOWN] * z)
        return scale * y if y > 0.0 else 0.0
    if model == MODEL_POW:
        rng = b_max - b_min
        if rng <= 0.0:
            return 0.0
        omega = (b_max - w) / rng if up else (w - b_min) / rng
        if omega <= 0.0:
            return 0.0
        return scale * omega ** slope
    if model == MODEL_PIECEWISE:
        n = pw.shape[0]
        if n == 1:
            return scale * pw[0]
        rng = b_max - b_min
        if rng <= 0.0:
            return 0.0
        pos = (w - b_min) / rng * (n - 1)
        if pos <= 0.0:
            return scale * pw[0]
        if pos >= n - 1:
            return scale * pw[n - 1]
        i = int(pos)
        q = pos - i
        return scale * ((1.0 - q) * pw[i] + q * pw[i + 1])
    return 0.0


@numba.njit(cache=True, inline="always")
def pulse_once(w, up, c, model, std, mult, g, pw_up, pw_down, xi):
    """Weight after one pulse on a cell with parameters ``c = cell[i, j]``.

    ``model``, ``std`` (dw_min_std) and ``mult`` (multiplicative noise) are hoisted
    out of the kernels' loops by the caller; ``xi`` is the pulse's N(0,1) deviate.
    """
    b_max = c[C_B_MAX]
    b_min = c[C_B_MIN]
    o = 0 if up else 1  # C_SCALE_DOWN = C_SCALE_UP + 1, C_SLOPE_DOWN = C_SLOPE_UP + 1
    scale = c[C_SCALE_UP + o]
    slope = c[C_SLOPE_UP + o]
    if model == MODEL_LINEAR:
        dw = scale + slope * w
    else:
        dw = step_size(model, w, up, scale, slope, b_max, b_min, g, pw_up if up else pw_down)
    if std > 0.0:
        if mult:
            dw = dw * (1.0 + std * xi)
        else:
            dw = dw + scale * std * xi
    w = w + (1.0 - 2.0 * o) * dw
    return min(max(w, b_min), b_max)


@numba.njit(cache=True, inline="always")
def model_scalars(g):
    """(model, dw_min_std, mult_noise) from the global parameter vector."""
    return int(g[G_MODEL]), g[G_DW_MIN_STD], g[G_MULT_NOISE] > 0.0


@numba.njit(cache=True, parallel=True)
def apply_pulse_counts(w, w_read, n_pulses, cell, g, pw_up, pw_down, seed, step, counts, row0, col0, total_cols):
    """Apply ``|n_pulses[i, j]|`` pulses to each cell, up where positive, down where negative.

    The c2c deviate of pulse ``k`` of cell ``(i, j)`` is ``normal(key(seed, PULSE, step), cell_index, k)``
    with ``cell_index = (row0 + i) * total_cols + col0 + j``.  ``w_read`` receives the
    weight seen by reads (with write noise if the device has it).  ``counts`` accumulates
    the pulses per cell.
    """
    key = make_key(seed, STREAM_PULSE, step)
    wkey = make_key(seed, STREAM_WRITE, step)
    wn = g[G_WRITE_NOISE]
    model, std, mult = model_scalars(g)
    rows, cols = w.shape
    for i in numba.prange(rows):
        for j in range(cols):
            n = n_pulses[i, j]
            if n == 0:
                continue
            idx = (row0 + i) * total_cols + col0 + j
            up = n > 0
            m = n if up else -n
            x = np.float64(w[i, j])
            c = cell[i, j]
            for k in range(m):
                x = pulse_once(x, up, c, model, std, mult, g, pw_up, pw_down, normal(key, idx, k))
            w[i, j] = x
            if wn > 0.0:
                w_read[i, j] = x + wn * normal(wkey, idx, 0)
            else:
                w_read[i, j] = x
            counts[i, j] += m


@numba.njit(cache=True, parallel=True)
def alternating_pulses(w, cell, g, pw_up, pw_down, n_pairs, n_average, seed, step):
    """Apply ``n_pairs`` (up, down) pulse pairs to every cell; return the mean weight.

    The mean is taken over the states after each of the last ``n_average`` pairs'
    up and down pulses (``2 n_average`` samples), which cancels the O(alpha)
    zig-zag around the symmetry point.  ``w`` is left at the final state.
    """
    key = make_key(seed, STREAM_PULSE, step)
    model, std, mult = model_scalars(g)
    rows, cols = w.shape
    mean = np.zeros((rows, cols), dtype=np.float64)
    start = n_pairs - n_average
    for i in numba.prange(rows):
        for j in range(cols):
            idx = i * cols + j
            x = np.float64(w[i, j])
            c = cell[i, j]
            acc = 0.0
            for p in range(n_pairs):
                x = pulse_once(x, True, c, model, std, mult, g, pw_up, pw_down, normal(key, idx, 2 * p))
                if p >= start:
                    acc += x
                x = pulse_once(x, False, c, model, std, mult, g, pw_up, pw_down, normal(key, idx, 2 * p + 1))
                if p >= start:
                    acc += x
            w[i, j] = x
            mean[i, j] = acc / (2.0 * n_average)
    return mean


@numba.njit(cache=True, parallel=True)
def decay_and_diffuse(w, cell, seed, step):
    r"""One decay/diffusion call: ``w <- w * decay + diffusion * xi``, clipped to the bounds.

    ``decay = 1 - 1/lifetime`` per call (aihwkit applies it after each mini-batch).
    """
    key = make_key(seed, STREAM_DIFFUSION, step)
    rows, cols = w.shape
    for i in numba.prange(rows):
        for j in range(cols):
            c = cell[i, j]
            x = w[i, j] * c[C_DECAY]
            s = c[C_DIFFUSION]
            if s > 0.0:
                x += s * normal(key, i * cols + j, 0)
            if x > c[C_B_MAX]:
                x = c[C_B_MAX]
            if x < c[C_B_MIN]:
                x = c[C_B_MIN]
            w[i, j] = x


@numba.njit(cache=True, parallel=True)
def normal_matrix(seed, stream, step, rows, cols):
    """A (rows, cols) matrix of N(0,1) deviates from the counter-based generator."""
    key = make_key(seed, stream, step)
    out = np.empty((rows, cols), dtype=np.float64)
    for i in numba.prange(rows):
        for j in range(cols):
            out[i, j] = normal(key, i * cols + j, 0)
    return out
