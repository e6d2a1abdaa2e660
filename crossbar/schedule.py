r"""Concurrent pulsed updates of several arrays (the layers of a network after one batch).

An optimizer step updates every analog layer, and on a batch-10 MLP each tile's
update is a few hundred microseconds: too little for numba's thread pool
(launching it costs 0.1-0.2 ms per parallel region on a 2-core VM, and the rows of
one small update load the threads unevenly) but enough to keep a second core
busy.  An :class:`UpdateRound` therefore validates every update, then cuts each
tile into blocks of rows expected to hold about ``BLOCK_PULSES`` pulses
(from the tile's previous update).  ``numba.get_num_threads()`` threads take
up tiles in key order; the first thread on a tile draws its bit streams, and
every thread on it then claims blocks through an atomic counter inside one
compiled call (:func:`kernels._apply_blocks`, serial build, GIL released), so
no thread returns to Python between blocks.

The round can stay in flight while the caller goes on: :meth:`UpdateRound.wait`
``(k)`` returns once array ``k`` is updated, the caller helping with the queue
meanwhile.  A training loop thus reads layer 0 of the next batch while the
other layers of this batch are still being pulsed (:class:`xbarsim.training.MLPStep`).

Rows touch disjoint cells and every random number is a function of its
counter, so the result is bit-identical to updating the arrays one by one.
"""
from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

import numba
import numpy as np

from . import kernels

BLOCK_PULSES = 4000  # pulses per row block (blocks of 2000 and 12000 measured 2-4% slower)

_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool of ``workers`` threads, kept for the process (one per size: none is ever shut down
    while another caller may still be submitting to it)."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS.setdefault(workers, ThreadPoolExecutor(max_workers=workers,
                                                             thread_name_prefix="xbarsim-update"))
    return pool


def _validated(items: list) -> tuple[list, list]:
    """The arrays of ``(array, x, d, lr)`` items and their tiles' :func:`kernels.plan_pulses` arguments.

    Validates every item before advancing any array's random stream.
    """
    arrays = [it[0] for it in items]
    if len({id(a) for a in arrays}) != len(arrays):
        raise ValueError("update_arrays: an array may appear only once (its samples must be applied in order)")
    checked = [a.check_update_args(x, d, lr) for a, x, d, lr in items]
    return arrays, [a.tile_update_args(*args) for a, args in zip(arrays, checked)]


class _Tile:
    """One tile's update: its row blocks, planned (bits drawn) by the first thread to take it up."""

    __slots__ = ("args", "job", "lock", "bounds", "claimed")

    def __init__(self, args: kernels.TileUpdate, expected_pulses: int) -> None:
        self.args = args
        self.job = None
        self.lock = threading.Lock()
        rows = args.d.shape[1]
        blocks = max(1, min(rows, round(expected_pulses / BLOCK_PULSES)))
        self.bounds = kernels.row_blocks(rows, blocks, np.empty(blocks + 1, dtype=np.int64))
        self.claimed = np.zeros(1, dtype=np.int64)  # blocks taken, advanced atomically by the kernel

    def open(self) -> bool:
        return int(self.claimed[0]) < len(self.bounds) - 1

    def work(self) -> int:
        """Apply blocks until none is left to take; returns how many this thread applied."""
        with self.lock:
            if self.job is None:  # serial builds only: the caller's thread may be in a parallel region
                self.job = kernels.plan_pulses(self.args, parallel=False)
        return self.job.run_blocks(self.bounds, self.claimed)


class UpdateRound:
    """Pulsed updates ``array.update(x, d, lr)`` of several arrays, in flight on helper threads.

    ``UpdateRound(items)`` validates every ``(array, x, d, lr)`` of ``items``
    (and advances the arrays' random streams) before any array changes, then
    queues them under keys ``0, 1, ...``; :meth:`add` queues one more update
    under a key of the caller's choosing.  An array may appear only once.  With
    ``threads >= 2`` the pulses start on helper threads at once, smallest key
    first.  Call :meth:`wait` ``(key)`` before touching that array again, or
    :meth:`wait_all`; both apply the array's remaining blocks on the calling
    thread too, and re-raise an error raised by the work.
    """

    def __init__(self, items: Iterable[tuple[Any, Any, Any, float]] = (), threads: int | None = None) -> None:
        self._threads = numba.get_num_threads() if threads is None else int(threads)
        self._cond = threading.Condition()
        self._arrays: dict[int, Any] = {}
        self._tiles: dict[int, list[_Tile]] = {}
        self._left: dict[int, int] = {}  # key -> blocks not yet applied
        self._pulses: dict[int, int] = {}
        self._helpers = 0
        self._error: BaseException | None = None
        arrays, tile_args = _validated(list(items))
        for k, (a, targs) in enumerate(zip(arrays, tile_args)):
            self._queue(k, a, targs)

    def add(self, key: int, array: Any, x: Any, d: Any, lr: float) -> None:
        """Validate and queue ``array.update(x, d, lr)`` under ``key`` (smaller keys are pulsed first)."""
        if key in self._arrays or any(a is array for a in self._arrays.values()):
            raise ValueError("update_arrays: an array may appear only once (its samples must be applied in order)")
        _, (targs,) = _validated([(array, x, d, lr)])
        self._queue(key, array, targs)

    def _queue(self, key: int, array: Any, targs: list) -> None:
        tiles = [_Tile(args, array.last_tile_pulses[t]) for t, args in enumerate(targs)]
        with self._cond:
            self._arrays[key] = array
            self._tiles[key] = tiles
            self._left[key] = sum(len(t.bounds) - 1 for t in tiles)
            start = max(0, min(self._threads - 1, self._left[key]) - self._helpers)
            self._helpers += start
        for _ in range(start):
            _pool(self._threads - 1).submit(self._work)

    def _run(self, key: int, tile: _Tile) -> None:
        done = 0
        try:
            if self._error is None:
                done = tile.work()
        except BaseException as e:  # noqa: BLE001  (re-raised in the waiting thread)
            with self._cond:
                if self._error is None:
                    self._error = e
        finally:
            if self._error is not None:  # the round is dead: close the tile, every wait() raises
                tile.claimed[0] = len(tile.bounds) - 1
            with self._cond:
                self._left[key] = max(0, self._left[key] - done)
                if self._left[key] == 0 or self._error is not None:
                    self._cond.notify_all()

    def _next_tile(self, keys=None) -> tuple | None:
        """The first open tile of ``keys`` (default all, smallest first), preferring one no thread is planning."""
        first = None
        for k in (sorted(self._tiles) if keys is None else keys):
            for tile in self._tiles[k]:
                if tile.open():
                    if not tile.lock.locked():
                        return k, tile
                    first = first or (k, tile)
        return first

    def _work(self) -> None:
        while True:
            with self._cond:
                nxt = self._next_tile()
                if nxt is None:
                    self._helpers -= 1
                    return
            self._run(*nxt)

    def wait(self, key: int) -> int:
        """Finish the update queued under ``key`` (applying its blocks here too); returns its pulse count."""
        if key not in self._pulses:
            while True:
                nxt = self._next_tile((key,))
                if nxt is None:
                    break
                self._run(*nxt)
            with self._cond:
                while self._left[key] > 0 and self._error is None:
                    self._cond.wait()
            if self._error is not None:
                raise self._error
            self._pulses[key] = self._arrays[key].finish_update([tile.job for tile in self._tiles[key]])
        return self._pulses[key]

    def wait_all(self) -> list[int]:
        """Finish every update; returns each one's pulse count, in key order."""
        return [self.wait(k) for k in sorted(self._arrays)]


def update_arrays(items: Iterable[tuple[Any, Any, Any, float]], threads: int | None = None,
                  defer: bool = False) -> list[int] | None:
    """Pulsed updates ``array.update(x, d, lr)`` for several ``(array, x, d, lr)``, run concurrently.

    Equivalent to calling :meth:`CrossbarArray.update` on each in turn (bit for
    bit); returns each update's pulse count.  An array may appear only once.
    Every update is validated before any array changes.  Batches whose tiles
    each expect more than ``kernels.PARALLEL_MIN_PULSES`` pulses, or a single
    thread, run tile by tile on numba's parallel build instead.

    With ``defer`` (and two or more threads) it returns ``None`` while the pulses
    are still in flight on an :class:`UpdateRound`: each array finishes its own
    update when it is next used (:meth:`CrossbarArray.defer_settle`).
    """
    items = list(items)
    threads = numba.get_num_threads() if threads is None else int(threads)
    if defer and items and threads >= 2:
        round_ = UpdateRound(items, threads)
        for k, item in enumerate(items):
            item[0].defer_settle(functools.partial(round_.wait, k))
        return None
    expected = [e for it in items for e in it[0].last_tile_pulses]
    if threads >= 2 and expected and min(expected) < kernels.PARALLEL_MIN_PULSES:
        return UpdateRound(items, threads).wait_all()
    arrays, tile_args = _validated(items)
    out = []
    for a, targs in zip(arrays, tile_args):
        jobs = [kernels.plan_pulses(args) for args in targs]
        for job in jobs:
            job.run()
        out.append(a.finish_update(jobs))
    return out
