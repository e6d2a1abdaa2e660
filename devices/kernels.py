r"""numba kernels for the device physics: one pulse, pulse trains, decay, diffusion.

Per-cell parameters live in one float32 array ``cell`` of shape ``(rows, cols, N_CELL)``
(layout :mod:`xbarsim.devices.layout`, filled by the model's d2d sampler), interleaved so
that one pulse touches one cache line; model-wide scalars are in a float64 vector ``g``
(the model's ``kernel_params``).

A pulse in direction ``up`` (True: potentiation) changes ``w`` by the model's compiled step
(``DeviceConfig.pulse_step``, its equation in the model's docstring) times the cycle-to-cycle factor
``(1 + dw_min_std * xi)`` (``mult_noise``) or plus ``alpha * dw_min_std * xi``, then
``w`` is clipped to the cell's ``[b_min, b_max]``.
"""
from __future__ import annotations

import functools
import hashlib
import threading
import types as _pytypes
from pathlib import Path

import numba
import numpy as np
from numba.core.dispatcher import Dispatcher

from .layout import (C_B_MAX, C_B_MIN, C_DECAY, C_DIFFUSION, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN,  # noqa: F401
                     C_SLOPE_UP, G_DW_MIN_STD, G_MULT_NOISE, G_WRITE_NOISE, N_CELL)
from .rng import STREAM_DIFFUSION, STREAM_PULSE, STREAM_WRITE, make_key, normal

#: The device model's compiled step (``DeviceConfig.pulse_step``).  :func:`specialise` binds it
#: in a kernel and in every helper the kernel calls that reads it, directly or further down.
STEP = None


@numba.njit(cache=True, inline="always")
def pulse_once_flat(w, up, cellf, base, g, noise, xi):
    """Weight after one pulse on the cell whose parameters start at ``cellf[base]``.

    ``noise = (dw_min_std, mult_noise)``; ``xi`` is the pulse's N(0,1) deviate.
    ``w + dw`` up, ``w - dw`` down, with ``dw = s (1 + dw_min_std xi)`` (multiplicative)
    or ``s + alpha dw_min_std xi`` (additive), ``s = STEP(w, up, cellf, base, g)`` the
    model's step, then clipped to ``[b_min, b_max]``.  Only scalars are read from the
    arrays: a per-cell view would create a reference-counted array object on every pulse.
    """
    dw = STEP(w, up, cellf, base, g)
    std, mult = noise
    if std > 0.0:
        if mult:
            dw = dw * (1.0 + std * xi)
        else:
            o = np.uint64(0) if up else np.uint64(1)
            dw = dw + np.float64(cellf[base + np.uint64(C_SCALE_UP) + o]) * std * xi
    w = w + dw if up else w - dw
    return min(max(w, np.float64(cellf[base + np.uint64(C_B_MIN)])), np.float64(cellf[base + np.uint64(C_B_MAX)]))


@numba.njit(cache=True, inline="always")
def noise_of(g):
    """``(dw_min_std, mult_noise)`` of a kernel parameter vector."""
    return g[G_DW_MIN_STD], g[G_MULT_NOISE] > 0.0


@numba.njit(cache=True, inline="always")
def pulse_train(w, up, n, cellf, base, g, noise, at):
    """Weight after ``n`` pulses of one direction; pulse ``k`` uses ``normal(key, idx, k)``, ``at = (key, idx)``."""
    key, idx = at
    x = np.float64(w)
    for k in range(n):
        x = pulse_once_flat(x, up, cellf, base, g, noise, normal(key, idx, k))
    return x


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
# A bound device step adds its own module to the fingerprint.
_PHYSICS_SOURCES = ("kernels.py", "layout.py", "rng.py")


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


def _constant_name(v) -> str:
    """How a bound constant appears in a build's name: a numba function by module and name."""
    if hasattr(v, "py_func"):
        return f"{v.py_func.__module__.rsplit('.', 1)[-1]}_{v.py_func.__name__}"
    return str(v)


def _reads(py_func, names: frozenset, seen: set) -> bool:
    """Whether ``py_func``, or a numba function it calls through a global (transitively), reads ``names``."""
    code = py_func.__code__
    if names.intersection(code.co_names):
        return True
    for n in code.co_names:
        v = py_func.__globals__.get(n)
        if isinstance(v, Dispatcher) and v.py_func not in seen:
            seen.add(v.py_func)
            if _reads(v.py_func, names, seen):
                return True
    return False


def _bound_globals(py_func, constants: dict, suffix: str) -> dict:
    """``py_func``'s globals with ``constants`` bound, and every numba helper that reads one replaced by its clone."""
    names = frozenset(constants)
    glb = dict(py_func.__globals__)
    for n in py_func.__code__.co_names:
        v = glb.get(n)
        if isinstance(v, Dispatcher) and _reads(v.py_func, names, set()):
            key = (v.py_func.__module__, v.py_func.__qualname__, "helper", tuple(sorted(constants.items())))
            helper = _SPECIALISED.get(key)
            if helper is None:
                options = {k: o for k, o in v.targetoptions.items() if k != "nopython"}
                helper = numba.njit(**options)(_clone(v.py_func, _bound_globals(v.py_func, constants, suffix),
                                                              suffix))
                _SPECIALISED[key] = helper
            glb[n] = helper
    glb.update(constants)
    return glb


def _clone(py_func, glb: dict, suffix: str):
    clone = _pytypes.FunctionType(py_func.__code__, glb, py_func.__name__ + suffix, py_func.__defaults__,
                                  py_func.__closure__)
    clone.__qualname__ = py_func.__qualname__ + suffix
    clone.__doc__ = py_func.__doc__
    clone.__module__ = py_func.__module__
    return clone


def specialise(py_func, parallel: bool, sources: tuple = (), **constants):
    """numba build of ``py_func``: serial or parallel, some module globals bound to constants.

    The one specialisation helper of the project.  Binding ``STEP`` to a device's compiled
    step makes the model a compile-time constant (a generic build that dispatched on a
    runtime model id was measured 3-5x slower per pulse).  A constant is bound in
    ``py_func`` and in every numba function it calls through a global that reads it,
    however deep (each gets a clone of its own, with its own options: an inlined helper
    otherwise reads its own module's global).  A constant that is a numba function is
    named in the build by its module and name, and its source file joins the
    fingerprint.  The serial build of a ``prange`` kernel runs it as ``range`` (launching
    numba's threads costs 0.1-0.2 ms on a 2-core VM, more than a small read).  Builds are
    made once per (function, flags, constants), release the GIL, are cached on disk
    under names that carry the physics sources' fingerprint, and parallel builds run
    under :data:`PARALLEL_LOCK`.  ``sources`` names further files whose kernels
    ``py_func`` compiles in (inlined or called), so that changes to them also get new
    cache entries.
    """
    key = (py_func.__module__, py_func.__qualname__, parallel, tuple(sorted(constants.items())))
    fn = _SPECIALISED.get(key)
    if fn is None:
        named = {k: _constant_name(v) for k, v in constants.items()}
        suffix = "_" + ("par" if parallel else "ser") + "".join(f"_{k}{v}" for k, v in sorted(named.items()))
        sources = (*sources, *(v.py_func.__code__.co_filename for v in constants.values() if hasattr(v, "py_func")))
        suffix += "_" + _source_fingerprint(py_func.__code__.co_filename, tuple(str(p) for p in sources))
        # without constants the clone shares the live module globals (names defined later resolve)
        glb = _bound_globals(py_func, constants, suffix) if constants else py_func.__globals__
        fn = numba.njit(cache=True, nogil=True, parallel=parallel)(_clone(py_func, glb, suffix))
        if parallel:
            fn = _Locked(fn)
        _SPECIALISED[key] = fn
    return fn


def _apply_pulse_counts(w, w_read, n_pulses, cell, g, counts, where):
    """Apply ``|n_pulses[i, j]|`` pulses to each cell, up where positive, down where negative.

    ``where = (seed, step, row0, col0, total_cols)``: the c2c deviate of pulse ``k`` of cell
    ``(i, j)`` is ``normal(key(seed, PULSE, step), cell_index, k)`` with
    ``cell_index = (row0 + i) * total_cols + col0 + j``.  ``w_read`` receives the
    weight seen by reads (with write noise if the device has it).  ``counts`` accumulates
    the pulses per cell.
    """
    seed, step, row0, col0, total_cols = where
    key = make_key(seed, STREAM_PULSE, step)
    wkey = make_key(seed, STREAM_WRITE, step)
    wn = g[G_WRITE_NOISE]
    noise = noise_of(g)
    rows, cols = w.shape
    cellf = cell.reshape(cell.size)
    nc = np.uint64(cell.shape[2])
    for i in numba.prange(rows):
        for j in range(cols):
            n = n_pulses[i, j]
            if n == 0:
                continue
            idx = (row0 + i) * total_cols + col0 + j
            up = n > 0
            m = n if up else -n
            x = pulse_train(w[i, j], up, m, cellf, np.uint64(i * cols + j) * nc, g, noise, (key, idx))
            w[i, j] = x
            if wn > 0.0:
                w_read[i, j] = x + wn * normal(wkey, idx, 0)
            else:
                w_read[i, j] = x
            counts[i, j] += m


def _alternating_pulses(w, cell, g, n_pairs, n_average, seed):
    """Apply ``n_pairs`` (up, down) pulse pairs to every cell; return the mean weight.

    The mean is taken over the states after each of the last ``n_average`` pairs'
    up and down pulses (``2 n_average`` samples), which cancels the O(alpha)
    zig-zag around the symmetry point.  ``w`` is left at the final state.
    """
    key = make_key(seed, STREAM_PULSE, 0)
    noise = noise_of(g)
    rows, cols = w.shape
    cellf = cell.reshape(cell.size)
    nc = np.uint64(cell.shape[2])
    mean = np.zeros((rows, cols), dtype=np.float64)
    start = n_pairs - n_average
    for i in numba.prange(rows):
        for j in range(cols):
            idx = i * cols + j
            base = np.uint64(idx) * nc
            x = np.float64(w[i, j])
            acc = 0.0
            for p in range(n_pairs):
                x = pulse_once_flat(x, True, cellf, base, g, noise, normal(key, idx, 2 * p))
                if p >= start:
                    acc += x
                x = pulse_once_flat(x, False, cellf, base, g, noise, normal(key, idx, 2 * p + 1))
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


def device_build(py_func, device, parallel: bool = True, sources: tuple = ()):
    """:func:`specialise` of ``py_func`` for ``device``'s compiled step."""
    return specialise(py_func, parallel, sources=sources, STEP=type(device).pulse_step)


def apply_pulse_counts(device, w, w_read, n_pulses, cell, counts, where):
    """:func:`_apply_pulse_counts` for ``device`` (parallel build); ``where = (seed, step, row0, col0, total_cols)``."""
    return device_build(_apply_pulse_counts, device)(w, w_read, n_pulses, cell, device.kernel_params(), counts,
                                                     where)


def alternating_pulses(device, w, cell, n_pairs, n_average, seed):
    """:func:`_alternating_pulses` for ``device`` (parallel build)."""
    return device_build(_alternating_pulses, device)(w, cell, device.kernel_params(), n_pairs, n_average, seed)
