r"""numba kernels for the device physics: one pulse, pulse trains, decay, diffusion.

Per-cell parameters live in one float32 array ``cell`` of shape ``(rows, cols, N_CELL)``
(layout ``C_*`` below, filled by :mod:`xbarsim.devices.population`), interleaved so that one
pulse touches one cache line; model-wide scalars are in a float64 vector ``g``
(layout ``xbarsim.devices.models.G_*``).

A pulse in direction ``up`` (True: potentiation) changes ``w`` by the model's step
(see the docstrings in :mod:`xbarsim.devices.models`) times the cycle-to-cycle factor
``(1 + dw_min_std * xi)`` (``mult_noise``) or plus ``alpha * dw_min_std * xi``, then
``w`` is clipped to the cell's ``[b_min, b_max]``.
"""
from __future__ import annotations

import functools
import hashlib
import math
import threading
import types as _pytypes
from pathlib import Path

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
def _piecewise(pw_up, pw_down, up, k):
    return pw_up[k] if up else pw_down[k]


@numba.njit(cache=True, inline="always")
def step_size(model, w, up, scale, slope, b_max, b_min, g, pw_up, pw_down):
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
        n = pw_up.shape[0]
        if n == 1:
            return scale * _piecewise(pw_up, pw_down, up, 0)
        rng = b_max - b_min
        if rng <= 0.0:
            return 0.0
        pos = (w - b_min) / rng * (n - 1)
        if pos <= 0.0:
            return scale * _piecewise(pw_up, pw_down, up, 0)
        if pos >= n - 1:
            return scale * _piecewise(pw_up, pw_down, up, n - 1)
        k = int(pos)
        q = pos - k
        return scale * ((1.0 - q) * _piecewise(pw_up, pw_down, up, k) + q * _piecewise(pw_up, pw_down, up, k + 1))
    return 0.0


@numba.njit(cache=True, inline="always")
def _pulse(w, up, scale, slope, b_max, b_min, model, std, mult, g, pw_up, pw_down, xi):
    """Weight after one pulse with the cell's parameters already loaded (``scale``, ``slope`` of direction ``up``)."""
    if model == MODEL_LINEAR:
        dw = scale + slope * w
    else:
        dw = step_size(model, w, up, scale, slope, b_max, b_min, g, pw_up, pw_down)
    if std > 0.0:
        if mult:
            dw = dw * (1.0 + std * xi)
        else:
            dw = dw + scale * std * xi
    w = w + dw if up else w - dw
    return min(max(w, b_min), b_max)


@numba.njit(cache=True, inline="always")
def pulse_once(w, up, cell, i, j, model, std, mult, g, pw_up, pw_down, xi):
    """Weight after one pulse on cell ``(i, j)`` with parameters ``cell[i, j, :]``.

    ``model``, ``std`` (dw_min_std) and ``mult`` (multiplicative noise) are hoisted
    out of the kernels' loops by the caller; ``xi`` is the pulse's N(0,1) deviate.
    Only scalars are read from the arrays: taking a per-cell view would create a
    reference-counted array object on every pulse.
    """
    o = 0 if up else 1  # C_SCALE_DOWN = C_SCALE_UP + 1, C_SLOPE_DOWN = C_SLOPE_UP + 1
    return _pulse(w, up, np.float64(cell[i, j, C_SCALE_UP + o]), np.float64(cell[i, j, C_SLOPE_UP + o]),
                  np.float64(cell[i, j, C_B_MAX]), np.float64(cell[i, j, C_B_MIN]), model, std, mult, g, pw_up,
                  pw_down, xi)


@numba.njit(cache=True, inline="always")
def pulse_once_flat(w, up, cellf, base, model, std, mult, g, pw_up, pw_down, xi):
    """:func:`pulse_once` on a flattened ``cell`` array; the cell's parameters start at ``cellf[base]``."""
    o = np.uint64(0) if up else np.uint64(1)
    return _pulse(w, up, np.float64(cellf[base + np.uint64(C_SCALE_UP) + o]),
                  np.float64(cellf[base + np.uint64(C_SLOPE_UP) + o]), np.float64(cellf[base + np.uint64(C_B_MAX)]),
                  np.float64(cellf[base + np.uint64(C_B_MIN)]), model, std, mult, g, pw_up, pw_down, xi)


@numba.njit(cache=True, inline="always")
def pulse_train(w, up, n, cell, i, j, model, std, mult, g, pw_up, pw_down, key, idx):
    """Weight after ``n`` pulses of one direction on cell (i, j); pulse ``k`` uses ``normal(key, idx, k)``."""
    x = np.float64(w)
    for k in range(n):
        x = pulse_once(x, up, cell, i, j, model, std, mult, g, pw_up, pw_down, normal(key, idx, k))
    return x


# Bound to a model id in the builds made by specialise().  A kernel must read it in its
# own body (``model = MODEL if MODEL >= 0 else int(g[G_MODEL])``): an inlined helper
# would read its own module's global instead.
MODEL = -1


@numba.njit(cache=True, inline="always")
def noise_scalars(g):
    """(dw_min_std, mult_noise) from the global parameter vector."""
    return g[G_DW_MIN_STD], g[G_MULT_NOISE] > 0.0


_SPECIALISED: dict = {}

#: Held around every launch of a parallel build made by :func:`specialise`.  numba's
#: ``workqueue`` threading layer is not thread-safe: two Python threads launching
#: parallel regions at once abort the process ("Concurrent access has been
#: detected").  With the lock, users of separate arrays in separate threads
#: serialise only those launches; serial builds (``nogil``) still run side by side.
PARALLEL_LOCK = threading.RLock()

# Files whose numba functions get compiled into other files' kernels (inlined or
# called).  numba's on-disk cache checks only the stamp of the file that defines
# a kernel, so their hash is part of every specialised build's name: a change to
# the device physics or the generator gets new cache entries instead of stale ones.
_PHYSICS_SOURCES = ("kernels.py", "models.py", "rng.py")


@functools.lru_cache(maxsize=None)
def _source_fingerprint(defining_file: str, extra: tuple = ()) -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    files = {here / name for name in _PHYSICS_SOURCES} | {Path(f).resolve() for f in (defining_file, *extra)}
    for path in sorted(files):
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


class _Locked:
    """A parallel build, launched under :data:`PARALLEL_LOCK`."""

    __slots__ = ("dispatcher",)

    def __init__(self, dispatcher) -> None:
        self.dispatcher = dispatcher

    def __call__(self, *args):
        with PARALLEL_LOCK:
            return self.dispatcher(*args)


def specialise(py_func, parallel: bool, sources: tuple = (), **constants):
    """numba build of ``py_func``: serial or parallel, some module globals bound to constants.

    The one specialisation helper of the project.  Binding ``MODEL`` makes the
    device model a compile-time constant, so the step code of the other models is
    eliminated: the generic build, which dispatches on a runtime model id, was
    measured 3-5x slower per pulse.  The serial build of a ``prange`` kernel runs
    it as ``range`` (launching numba's threads costs 0.1-0.2 ms on a 2-core VM, more
    than a small read).  Builds are made once per (function, flags, constants),
    release the GIL, are cached on disk under names that carry the physics
    sources' fingerprint, and parallel builds run under :data:`PARALLEL_LOCK`.
    ``sources`` names further files whose kernels ``py_func`` compiles in (inlined
    or called), so that changes to them also get new cache entries.
    """
    key = (py_func.__module__, py_func.__qualname__, parallel, tuple(sorted(constants.items())))
    fn = _SPECIALISED.get(key)
    if fn is None:
        suffix = "_" + ("par" if parallel else "ser") + "".join(f"_{k}{v}" for k, v in sorted(constants.items()))
        suffix += "_" + _source_fingerprint(py_func.__code__.co_filename, tuple(str(p) for p in sources))
        # without constants the clone shares the live module globals (names defined later resolve)
        glb = {**py_func.__globals__, **constants} if constants else py_func.__globals__
        clone = _pytypes.FunctionType(py_func.__code__, glb, py_func.__name__ + suffix, py_func.__defaults__,
                                      py_func.__closure__)
        clone.__qualname__ = py_func.__qualname__ + suffix
        clone.__doc__ = py_func.__doc__
        clone.__module__ = py_func.__module__
        fn = numba.njit(cache=True, nogil=True, parallel=parallel)(clone)
        if parallel:
            fn = _Locked(fn)
        _SPECIALISED[key] = fn
    return fn


def _apply_pulse_counts(w, w_read, n_pulses, cell, g, pw_up, pw_down, seed, step, counts, row0, col0, total_cols):
    """Apply ``|n_pulses[i, j]|`` pulses to each cell, up where positive, down where negative.

    The c2c deviate of pulse ``k`` of cell ``(i, j)`` is ``normal(key(seed, PULSE, step), cell_index, k)``
    with ``cell_index = (row0 + i) * total_cols + col0 + j``.  ``w_read`` receives the
    weight seen by reads (with write noise if the device has it).  ``counts`` accumulates
    the pulses per cell.
    """
    key = make_key(seed, STREAM_PULSE, step)
    wkey = make_key(seed, STREAM_WRITE, step)
    wn = g[G_WRITE_NOISE]
    model = MODEL if MODEL >= 0 else int(g[G_MODEL])
    std, mult = noise_scalars(g)
    rows, cols = w.shape
    for i in numba.prange(rows):
        for j in range(cols):
            n = n_pulses[i, j]
            if n == 0:
                continue
            idx = (row0 + i) * total_cols + col0 + j
            up = n > 0
            m = n if up else -n
            x = pulse_train(w[i, j], up, m, cell, i, j, model, std, mult, g, pw_up, pw_down, key, idx)
            w[i, j] = x
            if wn > 0.0:
                w_read[i, j] = x + wn * normal(wkey, idx, 0)
            else:
                w_read[i, j] = x
            counts[i, j] += m


def _alternating_pulses(w, cell, g, pw_up, pw_down, n_pairs, n_average, seed, step):
    """Apply ``n_pairs`` (up, down) pulse pairs to every cell; return the mean weight.

    The mean is taken over the states after each of the last ``n_average`` pairs'
    up and down pulses (``2 n_average`` samples), which cancels the O(alpha)
    zig-zag around the symmetry point.  ``w`` is left at the final state.
    """
    key = make_key(seed, STREAM_PULSE, step)
    model = MODEL if MODEL >= 0 else int(g[G_MODEL])
    std, mult = noise_scalars(g)
    rows, cols = w.shape
    mean = np.zeros((rows, cols), dtype=np.float64)
    start = n_pairs - n_average
    for i in numba.prange(rows):
        for j in range(cols):
            idx = i * cols + j
            x = np.float64(w[i, j])
            acc = 0.0
            for p in range(n_pairs):
                x = pulse_once(x, True, cell, i, j, model, std, mult, g, pw_up, pw_down, normal(key, idx, 2 * p))
                if p >= start:
                    acc += x
                x = pulse_once(x, False, cell, i, j, model, std, mult, g, pw_up, pw_down,
                               normal(key, idx, 2 * p + 1))
                if p >= start:
                    acc += x
            w[i, j] = x
            mean[i, j] = acc / (2.0 * n_average)
    return mean


def _decay_and_diffuse(w, cell, seed, step):
    r"""One decay/diffusion call: ``w <- w * decay + diffusion * xi``, clipped to the bounds.

    ``decay = 1 - 1/lifetime`` per call (aihwkit applies it after each mini-batch).
    """
    key = make_key(seed, STREAM_DIFFUSION, step)
    rows, cols = w.shape
    for i in numba.prange(rows):
        for j in range(cols):
            x = w[i, j] * cell[i, j, C_DECAY]
            s = cell[i, j, C_DIFFUSION]
            if s > 0.0:
                x += s * normal(key, i * cols + j, 0)
            x = min(max(x, cell[i, j, C_B_MIN]), cell[i, j, C_B_MAX])
            w[i, j] = x


def _normal_matrix(seed, stream, step, rows, cols):
    """A (rows, cols) matrix of N(0,1) deviates from the counter-based generator."""
    key = make_key(seed, stream, step)
    out = np.empty((rows, cols), dtype=np.float64)
    for i in numba.prange(rows):
        for j in range(cols):
            out[i, j] = normal(key, i * cols + j, 0)
    return out


#: cells from which :func:`decay_and_diffuse` and :func:`normal_matrix` run on numba's threads.
#: Launching them costs 0.1-0.2 ms on this project's 2-core VM; one decay/diffusion call was
#: faster serially up to 256x784 cells (medians of 30 interleaved calls, 2026-11-27: 128x10
#: 0.01 against 0.10 ms, 256x784 0.97 against 1.15 ms) and about even at 1024x1024 (5.4 / 5.7 ms).
PARALLEL_MIN_CELLS = 1 << 19


def decay_and_diffuse(w, cell, seed, step):
    """:func:`_decay_and_diffuse`, on numba's threads from ``PARALLEL_MIN_CELLS`` cells."""
    return specialise(_decay_and_diffuse, w.size >= PARALLEL_MIN_CELLS)(w, cell, seed, step)


def normal_matrix(seed, stream, step, rows, cols):
    """:func:`_normal_matrix`, on numba's threads from ``PARALLEL_MIN_CELLS`` cells."""
    return specialise(_normal_matrix, rows * cols >= PARALLEL_MIN_CELLS)(seed, stream, step, rows, cols)


def apply_pulse_counts(w, w_read, n_pulses, cell, g, *args):
    """Model-specialised parallel :func:`_apply_pulse_counts`."""
    return specialise(_apply_pulse_counts, True, MODEL=int(g[G_MODEL]))(w, w_read, n_pulses, cell, g, *args)


def alternating_pulses(w, cell, g, *args):
    """Model-specialised parallel :func:`_alternating_pulses`."""
    return specialise(_alternating_pulses, True, MODEL=int(g[G_MODEL]))(w, cell, g, *args)
