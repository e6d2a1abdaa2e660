r"""A second thread for the pulses of a compiled training loop: :class:`PulseHelper`.

A tile's pulsed update is cut into ``HELPER_BLOCKS`` row blocks, which the
calling thread and a helper thread take one by one through an atomic counter
(:func:`xbarsim.crossbar.kernels._pulse_blocks`), at the same time.  Blocks touch
disjoint cells, and every random number of a pulse is a pure function of
``(seed, stream, step, cell, slot)`` (:mod:`xbarsim.devices.rng`), so the result
is bit-identical to pulsing all rows on one thread, whoever takes which block.
Claiming instead of a fixed split follows whichever vCPU is faster at the moment:
on 20,000 images of the aihwkit preset (10 interleaved runs, 2026-11-27) it gave
the same median as an even split of the coincidences (2.44 s) and a narrower range
(2.25-2.74 s against 2.23-3.51 s); giving the caller a fixed 35 % was no better.

Why a thread of its own and not numba's ``prange``: a batch-10 tile update is
0.2-1 ms of work, and waking numba's sleeping workers costs about as much
(measured: two-thread launches made the in-situ epoch slower).  The helper
instead waits for work by spinning on a shared counter (with the ``pause``
instruction) for about half a millisecond, then yields the core to the scheduler
between polls, so a handoff costs well under a microsecond while batches come
quickly and an idle helper does not hold a core that other work needs.

Protocol (one job at a time): the caller copies the job's inputs into the
mailbox, writes its parameters, then increments ``POST``; the helper sees
``POST`` move, runs the job, increments ``DONE``.  Increments are sequentially
consistent read-modify-writes and polls are acquire loads, so the plain writes
made before an increment are visible to the thread that sees it.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import NamedTuple

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from xbarsim.devices.kernels import specialise

from .kernels import _pulse_blocks, _pulse_rows, atomic_fetch_add, atomic_load, coincidence_lists_serial, row_blocks
from .state import K_PULSE_TOTAL, K_UPDATES, RNG_UPDATE, TILE_STREAMS, Coincidences, TileAt

__all__ = ["Mailbox", "PulseHelper", "empty_mailbox", "helper_sync", "pulse_tile_shared", "update_tiles"]

#: a tile with fewer pulses than this in one update is pulsed by the caller alone (the handoff
#: and the copies into the mailbox cost a few microseconds); stored in the mailbox, so tests can lower it
SPLIT_MIN_PULSES = 4096
SPIN_POLLS = 20000  # ~0.5 ms of pause-spinning (measured) before the waiting thread starts yielding its core

# ctl slots; POST and DONE on separate cache lines
POST, N, COLS, ROWS, STEP0, OFFSET, R0, C0, N_BLOCKS, LAYER, SEED, MIN_PULSES = range(12)
DONE, STOP, READY = 16, 24, 25  # each written by one thread, polled by the other: own cache lines
CLAIM = 32  # blocks taken so far, incremented by both threads: a cache line of its own
N_CTL = 40
HELPER_BLOCKS = 16  # row blocks per split tile

_libc = ctypes.CDLL(None)
llvm.add_symbol("xbarsim_sched_yield", ctypes.cast(_libc.sched_yield, ctypes.c_void_p).value)


@intrinsic
def cpu_pause(typingctx):
    """The x86 ``pause`` hint of a spin-wait loop (saves power, frees the core's resources)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.VoidType(), [])
        builder.call(builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=fnty), [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def sched_yield(typingctx):
    """libc ``sched_yield()``: give the core to another runnable thread, if there is one."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = builder.module.globals.get("xbarsim_sched_yield")
        if fn is None:
            fn = ir.Function(builder.module, fnty, "xbarsim_sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def _wait_until(ctl, slot, target):
    """Wait until ``ctl[slot] >= target``; False if ``ctl[STOP]`` is set first."""
    polls = 0
    while atomic_load(ctl, slot) < target:
        if atomic_load(ctl, STOP) != 0:
            return False
        polls += 1
        if polls < SPIN_POLLS:
            cpu_pause()
        else:
            sched_yield()
    return True


class Mailbox(NamedTuple):
    """What a split tile update hands to the helper: control words and copies of the job's inputs.

    Empty arrays (:func:`empty_mailbox`) mean "no helper": every tile is pulsed by the caller.
    """

    ctl: np.ndarray        # int64 (N_CTL,)
    x: np.ndarray          # float32, batch x cols of the tile, flat
    d: np.ndarray          # float32, batch x rows of the tile, flat
    dbits: np.ndarray      # uint64 (batch, rows)
    slot_ptr: np.ndarray   # int64 (batch, 65)
    slot_col: np.ndarray   # int32 (batch, cols * bl)
    bounds: np.ndarray     # int64 (HELPER_BLOCKS + 1,)


def empty_mailbox() -> Mailbox:
    return Mailbox(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32),
                   np.zeros((0, 0), np.uint64), np.zeros((0, 65), np.int64), np.zeros((0, 0), np.int32),
                   np.zeros(0, np.int64))


@numba.njit(cache=True, inline="always")
def pulse_tile_shared(layer, st, x, d, lr, up, at, box):
    """One tile's whole update from compiled code: bit streams, then every pulse; returns the pulse count.

    The same physics and random numbers as :func:`xbarsim.crossbar.kernels.plan_pulses`
    followed by :meth:`~xbarsim.crossbar.kernels.PulseJob.run`, for a caller that is
    compiled itself (a training loop that never returns to Python between batches) and
    built for the device's step (:func:`xbarsim.devices.kernels.specialise`).  ``st`` is
    the array's state, ``up`` its UpdateParams, ``at`` the tile's TileAt; ``layer`` says
    which of the helper's states ``st`` is.  With an empty mailbox ``box`` (or a tile of
    fewer than ``ctl[MIN_PULSES]`` pulses) the caller pulses every row itself;
    otherwise the caller and the helper take the tile's row blocks one by one.  It
    returns once every block is taken, possibly while the helper is still pulsing its
    last one: :func:`helper_sync` waits for it.  Bit-identical to the serial update
    whether or not the tile is split.  Returns -1, pulsing nothing, when ``x`` or ``d``
    holds a NaN or an infinity.
    """
    batch, cols = x.shape
    rows = d.shape[1]
    if batch == 0:
        return 0
    dbits, slot_ptr, slot_col, n = coincidence_lists_serial(x, d, lr, up, (st.seed, at.stream_offset, at.step0))
    if n <= 0:
        return n
    co = Coincidences(x, d, dbits, slot_ptr, slot_col)
    ctl = box.ctl
    split = (ctl.shape[0] > 0 and n >= ctl[MIN_PULSES] and rows > 1 and batch <= box.dbits.shape[0]
             and cols * batch <= box.x.shape[0] and rows * batch <= box.d.shape[0]
             and slot_col.shape[1] <= box.slot_col.shape[1])
    if not split:
        _pulse_rows(st, co, at, 0, rows)
        return n
    helper_sync(box)  # the mailbox is free once the previous job is done
    for s in range(batch):
        for j in range(cols):
            box.x[s * cols + j] = x[s, j]
        for i in range(rows):
            box.d[s * rows + i] = d[s, i]
            box.dbits[s, i] = dbits[s, i]
        for t in range(65):
            box.slot_ptr[s, t] = slot_ptr[s, t]
        for q in range(slot_ptr[s, 64]):
            box.slot_col[s, q] = slot_col[s, q]
    ctl[N], ctl[COLS], ctl[ROWS], ctl[STEP0], ctl[OFFSET] = batch, cols, rows, at.step0, at.stream_offset
    nb = min(rows, HELPER_BLOCKS)
    bounds = row_blocks(rows, nb, box.bounds)
    ctl[R0], ctl[C0], ctl[N_BLOCKS], ctl[LAYER], ctl[SEED] = at.r0, at.c0, nb, layer, st.seed
    ctl[CLAIM] = 0
    atomic_fetch_add(ctl, POST, 1)
    _pulse_blocks(st, co, at, bounds, ctl[CLAIM:CLAIM + 1])
    return n


@numba.njit(cache=True, inline="always")
def update_tiles(layer, st, x, d, lr, up, box):
    """A whole update of one array from compiled code: every tile through :func:`pulse_tile_shared`.

    The same streams and bookkeeping as ``CrossbarArray.update``: the update stream
    advances by the batch, ``updates`` and ``pulse_total`` count in ``st.counters``, and
    ``st.tile_pulses`` holds each tile's pulses.  Returns the pulses, or -1 (with the
    stream and counters advanced, no cell changed in that tile) for non-finite ``x`` or ``d``.
    """
    n = x.shape[0]
    step0 = st.rng[RNG_UPDATE]
    st.rng[RNG_UPDATE] += n
    st.counters[K_UPDATES] += n
    if lr <= 0.0:
        return 0
    tl = st.tiles
    single = tl.shape[0] == 1
    done = 0
    for t in range(tl.shape[0]):
        r0, r1, c0, c1 = tl[t, 0], tl[t, 1], tl[t, 2], tl[t, 3]
        xt = x if single else np.ascontiguousarray(x[:, c0:c1])
        dt = d if single else np.ascontiguousarray(d[:, r0:r1])
        p = pulse_tile_shared(layer, st, xt, dt, lr, up, TileAt(r0, c0, TILE_STREAMS * t, step0), box)
        if p < 0:
            return -1
        st.tile_pulses[t] = p
        done += p
    st.counters[K_PULSE_TOTAL] += done
    return done


@numba.njit(cache=True, inline="always")
def helper_sync(box):
    """Wait until the helper has finished every job posted to it (no-op without a helper).

    :func:`pulse_tile_shared` returns as soon as every row block is taken;
    call this before the arrays it updated are read or handed to Python.
    """
    ctl = box.ctl
    if ctl.shape[0] > 0:
        _wait_until(ctl, DONE, atomic_load(ctl, POST))


def _helper_loop(box, states):
    """The helper thread's body: take row blocks of each posted tile until ``ctl[STOP]``; returns the jobs.

    ``states``: the arrays' ArrayStates (built for their one device step).
    """
    ctl = box.ctl
    atomic_fetch_add(ctl, READY, 1)
    done = 0
    while _wait_until(ctl, POST, done + 1):
        n, cols, rows, layer = ctl[N], ctl[COLS], ctl[ROWS], ctl[LAYER]
        co = Coincidences(box.x[:n * cols].reshape((n, cols)), box.d[:n * rows].reshape((n, rows)), box.dbits[:n],
                          box.slot_ptr[:n], box.slot_col[:n])
        _pulse_blocks(states[layer], co, TileAt(ctl[R0], ctl[C0], ctl[OFFSET], ctl[STEP0]),
                      box.bounds[:ctl[N_BLOCKS] + 1], ctl[CLAIM:CLAIM + 1])
        done += 1
        atomic_fetch_add(ctl, DONE, 1)
    return done


def _usable_cores() -> int:
    """Cores this process may run on: a helper spinning on the main thread's only core would stall it."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class PulseHelper:
    """The helper thread of one compiled run, as a context manager.

    ``with PulseHelper(views, batch_size) as box:`` starts the thread (if
    numba may use at least two threads) and yields the :class:`Mailbox` to pass
    to the compiled loop; leaving the block stops and joins the thread, also
    when the loop raised.  ``views`` are the arrays'
    :class:`xbarsim.crossbar.state.LoopView` (one device step for all); with fewer than two numba threads
    or usable cores, or ``enabled=False``, it yields :func:`empty_mailbox` and no
    thread runs.
    """

    def __init__(self, states: list, batch_size: int, enabled: bool | None = None,
                 min_pulses: int | None = None) -> None:
        self.states = states
        self.batch_size = int(batch_size)
        self.enabled = numba.get_num_threads() >= 2 and _usable_cores() >= 2 if enabled is None else bool(enabled)
        self.min_pulses = SPLIT_MIN_PULSES if min_pulses is None else int(min_pulses)
        self.thread: threading.Thread | None = None
        self.box = empty_mailbox()
        self.jobs = 0

    def __enter__(self) -> Mailbox:
        if not self.enabled:
            return self.box
        states = self.states
        cols = max(int(t[3] - t[2]) for s in states for t in s.state.tiles)
        rows = max(int(t[1] - t[0]) for s in states for t in s.state.tiles)
        bl = max(int(s.update.desired_bl) for s in states)
        b = self.batch_size
        ctl = np.zeros(N_CTL, np.int64)
        ctl[MIN_PULSES] = self.min_pulses
        self.box = Mailbox(ctl, np.zeros(b * cols, np.float32), np.zeros(b * rows, np.float32),
                           np.zeros((b, rows), np.uint64), np.zeros((b, 65), np.int64),
                           np.zeros((b, max(1, cols * bl)), np.int32), np.zeros(HELPER_BLOCKS + 1, np.int64))
        steps = {s.step for s in states}
        if len(steps) != 1:
            raise ValueError("PulseHelper: the arrays must share one device model")
        fn = specialise(_helper_loop, False, STEP=steps.pop())
        args = (self.box, tuple(s.state for s in states))

        def body() -> None:
            self.jobs = int(fn(*args))

        self.thread = threading.Thread(target=body, name="xbarsim-pulse-helper", daemon=True)
        self.thread.start()
        while ctl[READY] == 0 and self.thread.is_alive():  # compiled or loaded from the cache, and spinning
            time.sleep(1e-4)
        if ctl[READY] == 0:
            raise RuntimeError("PulseHelper: the helper thread ended before it started")
        return self.box

    def __exit__(self, *exc) -> None:
        if self.thread is not None:
            self.box.ctl[STOP] = 1
            self.thread.join()
            self.thread = None
