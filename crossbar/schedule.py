r"""Concurrent pulsed updates of several arrays (the layers of a network after one batch).

An optimizer step updates every analog layer, and on a batch-10 MLP each update
is a few hundred microseconds of pulses: too little for numba's thread pool
(launching it costs tens of microseconds per parallel region and the rows of one
small update are unevenly loaded), but enough to keep a second core busy with
another layer.  :func:`update_arrays` therefore

1. draws every tile's bit streams (:meth:`CrossbarArray.plan_update`), which
   gives each tile's exact pulse count;
2. runs tiles above ``kernels.PARALLEL_MIN_PULSES`` one at a time with numba's
   parallel build;
3. spreads the others over ``numba.get_num_threads()`` Python threads, longest
   first onto the least-loaded thread (LPT), each running the serial build with
   the GIL released.

Tiles touch disjoint cells and every random number is a function of its
counter, so the result is bit-identical to updating the arrays one by one.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

import numba

from . import kernels

MIN_CONCURRENT_PULSES = 2000  # below this, a thread hand-off costs more than it saves

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE != workers:
        if _POOL is not None:
            _POOL.shutdown(wait=True)
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xbarsim-update")
        _POOL_SIZE = workers
    return _POOL


def _run_serial(jobs: list) -> None:
    for job in jobs:
        job.run(parallel=False)


def run_jobs(jobs: list, threads: int | None = None) -> None:
    """Run :class:`crossbar.kernels.PulseJob` s: large ones alone in parallel, small ones concurrently (LPT)."""
    threads = numba.get_num_threads() if threads is None else int(threads)
    big = [j for j in jobs if j.pulses >= kernels.PARALLEL_MIN_PULSES]
    small = sorted((j for j in jobs if 0 < j.pulses < kernels.PARALLEL_MIN_PULSES), key=lambda j: -j.pulses)
    for job in big:
        job.run(parallel=True)
    if threads < 2 or len(small) < 2 or sum(j.pulses for j in small) < MIN_CONCURRENT_PULSES:
        _run_serial(small)
        return
    bins: list[list] = [[] for _ in range(min(threads, len(small)))]
    load = [0] * len(bins)
    for job in small:
        k = load.index(min(load))
        bins[k].append(job)
        load[k] += job.pulses
    futures = [_pool(len(bins) - 1).submit(_run_serial, b) for b in bins[1:]]
    _run_serial(bins[0])
    for f in futures:
        f.result()


def update_arrays(items: Iterable[tuple[Any, Any, Any, float]], threads: int | None = None) -> list[int]:
    """Pulsed updates ``array.update(x, d, lr)`` for several ``(array, x, d, lr)``, run concurrently.

    Equivalent to calling :meth:`CrossbarArray.update` on each in turn (bit for
    bit); returns each update's pulse count.  An array may appear only once.
    """
    items = list(items)
    arrays = [it[0] for it in items]
    if len({id(a) for a in arrays}) != len(arrays):
        raise ValueError("update_arrays: an array may appear only once (its samples must be applied in order)")
    checked = [a.check_update_args(x, d, lr) for a, x, d, lr in items]  # all valid before any state changes
    plans = [a.plan_update(*args) for a, args in zip(arrays, checked)]
    run_jobs([job for jobs in plans for job in jobs], threads)
    return [a.finish_update(jobs) for a, jobs in zip(arrays, plans)]
