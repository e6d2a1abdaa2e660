r"""Concurrent pulsed updates of several arrays (the layers of a network after one batch).

An optimizer step updates every analog layer, and on a batch-10 MLP each tile's
update is a few hundred microseconds: too little for numba's thread pool
(launching it costs tens of microseconds per parallel region, and the rows of
one small update load the threads unevenly) but enough to keep a second core
busy with another tile.  :func:`update_arrays` therefore validates every
update, then lets ``numba.get_num_threads()`` Python threads take whole tiles
from a shared queue, largest expected first (the tile's pulse count in its
previous update), each drawing the tile's bits and applying its pulses with the
serial builds, which release the GIL.

A single tile, one thread, or a batch of tiles that each expect more than
``kernels.PARALLEL_MIN_PULSES`` pulses run one tile at a time instead, on
numba's parallel build where the exact count calls for it.

Tiles touch disjoint cells and every random number is a function of its
counter, so the result is bit-identical to updating the arrays one by one.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

import numba

from . import kernels

_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool of ``workers`` threads, kept for the process (one per size: none is ever shut down
    while another caller may still be submitting to it)."""
    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS.setdefault(workers, ThreadPoolExecutor(max_workers=workers,
                                                             thread_name_prefix="xbarsim-update"))
    return pool


def _drain(queue: list, jobs: dict) -> None:
    """Take tasks from the end of ``queue`` until it is empty (``list.pop`` is atomic)."""
    while True:
        try:
            key, args = queue.pop()
        except IndexError:
            return
        job = kernels.plan_pulses(*args)
        job.run(parallel=False)
        jobs[key] = job


def update_arrays(items: Iterable[tuple[Any, Any, Any, float]], threads: int | None = None) -> list[int]:
    """Pulsed updates ``array.update(x, d, lr)`` for several ``(array, x, d, lr)``, run concurrently.

    Equivalent to calling :meth:`CrossbarArray.update` on each in turn (bit for
    bit); returns each update's pulse count.  An array may appear only once.
    Every update is validated before any array changes.
    """
    items = list(items)
    arrays = [it[0] for it in items]
    if len({id(a) for a in arrays}) != len(arrays):
        raise ValueError("update_arrays: an array may appear only once (its samples must be applied in order)")
    checked = [a.check_update_args(x, d, lr) for a, x, d, lr in items]
    tile_args = [a.tile_update_args(*args) for a, args in zip(arrays, checked)]
    threads = numba.get_num_threads() if threads is None else int(threads)
    tasks = [((k, t), args, a._last_tile_pulses[t])
             for k, (a, targs) in enumerate(zip(arrays, tile_args)) for t, args in enumerate(targs)]
    jobs: dict = {}
    if threads < 2 or len(tasks) < 2 or min(e for _, _, e in tasks) >= kernels.PARALLEL_MIN_PULSES:
        for key, args, _ in tasks:
            job = kernels.plan_pulses(*args)
            job.run()
            jobs[key] = job
    else:
        queue = [(key, args) for key, args, _ in sorted(tasks, key=lambda task: task[2])]  # largest last
        futures = [_pool(threads - 1).submit(_drain, queue, jobs) for _ in range(min(threads, len(tasks)) - 1)]
        _drain(queue, jobs)
        for f in futures:
            f.result()
    return [a.finish_update([jobs[(k, t)] for t in range(len(targs))])
            for k, (a, targs) in enumerate(zip(arrays, tile_args))]
