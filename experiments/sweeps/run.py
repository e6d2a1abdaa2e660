"""Run a sweep: executors (local process pool, Dask) and the client-side driver.

Workers run :func:`run_point` and *return* its result; only this client process
writes the HDF5 file (``sweep_store``), one point at a time as results arrive.

Executors (both are ``concurrent.futures`` executors, so one driver serves both):

``local``
    ``ProcessPoolExecutor`` with the ``spawn`` start method (torch and numba are
    not fork-safe), ``--workers`` processes (default ``os.cpu_count()``).
``dask``
    ``distributed.Client(address).get_executor()``; ``scheduler="local"`` starts a
    ``LocalCluster`` of single-threaded worker processes on 127.0.0.1. Dask is
    the optional extra ``xbarsim[distributed]``. Remote workers need xbarsim
    (and the task's module) importable.

The driver keeps at most "capacity" points in flight (workers, or the Dask
cluster's thread count), so the progress bar's *running* count is what is
actually running. A point whose task raises is stored as failed with its
traceback and the sweep continues. If a local worker process dies, the points
in flight are stored as failed (which of them crashed is unknown), the pool is
restarted, and a rerun of the spec retries them.

Several processes, one file.  Every point is claimed
(:mod:`xbarsim.experiments.sweeps.claims`) before it is submitted, and its
claim is deleted after it is written, so any number of ``xbarsim sweep``
processes on the same spec and file (a scheduler job array, two terminals)
split the points and compute none twice.  A process skips points that another
process holds and comes back to them: when such a point is written meanwhile
it counts as done by another process; when its claim has gone stale (a dead
process on this host, or ``claim_timeout`` without renewal) this process
takes it over.  A process returns once every point of the spec is written,
except those held by live processes on other hosts when no ``claim_timeout``
is set (it cannot tell whether those are alive; it names them and leaves them).
A failed point is retried once per round: a process that sees another one
store a point (complete or failed) after its own scan does not run it again.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import math
import multiprocessing
import os
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from tqdm import tqdm

from xbarsim.experiments.sweeps.claims import CLAIMED, DONE, HELD, ClaimBoard
from xbarsim.experiments.sweeps.spec import SweepPoint, SweepSpec
from xbarsim.experiments.sweeps.store import SweepStore, utc_now
from xbarsim.experiments.sweeps.tasks import get_task

__all__ = ["ExecutorError", "SweepSummary", "run_point", "run_sweep", "normalize_metrics"]

log = logging.getLogger(__name__)

DASK_INSTALL_HINT = "pip install 'xbarsim[distributed]'   (or: pip install 'dask[distributed]')"


class ExecutorError(RuntimeError):
    """The requested executor cannot be started (missing Dask, unreachable scheduler, ...)."""


# ------------------------------------------------------------------ worker side
def normalize_metrics(result: Any) -> dict:
    """Check a task's return value and turn it into plain picklable values.

    Scalars (int, float, bool, str, numpy scalars) stay scalars; numeric
    sequences/arrays become numpy arrays. Anything else raises ``TypeError``.
    """
    if not isinstance(result, dict):
        raise TypeError(f"a task must return a dict of metrics, got {type(result).__name__}")
    out = {}
    for name, value in result.items():
        if not isinstance(name, str) or not name or "/" in name or name == ".":
            raise TypeError(f"metric name {name!r} must be a non-empty string without '/'")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float, str)):
            out[name] = value
            continue
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.ndim == 0:
            raise TypeError(f"metric {name!r} = {value!r:.80} is neither a scalar nor a numeric array")
        out[name] = arr
    return out


def run_point(run_fn: Callable[[dict, int], dict], params: dict, seed: int) -> dict:
    """Run one point in a worker; never raises (a failure is returned with its traceback)."""
    started, t0 = utc_now(), time.perf_counter()
    out: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(), "started": started}
    try:
        out["metrics"] = normalize_metrics(run_fn(dict(params), int(seed)))
        out["status"] = "complete"
    except (Exception, SystemExit):
        out["metrics"] = {}
        out["status"] = "failed"
        out["traceback"] = traceback.format_exc()
    out["finished"] = utc_now()
    out["wall_s"] = time.perf_counter() - t0
    return out


def _client_failure(exc: BaseException) -> dict:
    """Result record for a point whose future failed outside the task (worker died, ...)."""
    return {"status": "failed", "metrics": {}, "started": "", "finished": utc_now(), "wall_s": 0.0,
            "traceback": "".join(traceback.format_exception(exc)), "host": socket.gethostname(), "pid": os.getpid()}


# ------------------------------------------------------------------ executors
def share_cores(threads: int) -> None:
    """Worker initializer: the worker's share of the cores for numba's and torch's threads.

    Without it every worker would start a pool of all cores' threads, and on a small
    machine torch's small matmuls were measured 60x slower under that contention.
    The counter-based random numbers do not depend on it.
    """
    import xbarsim
    xbarsim.configure_threads(max(1, threads))


class _LocalBackend:
    def __init__(self, workers: int):
        self.workers = workers
        self.executor = self._start()

    def _start(self) -> cf.ProcessPoolExecutor:
        threads = max(1, (os.cpu_count() or 1) // self.workers)  # a worker's share of the cores
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=share_cores, initargs=(threads,))

    def capacity(self) -> int:
        return self.workers

    def restart(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._start()

    def close(self, cancel: bool = False) -> None:
        if cancel:  # interrupted: do not wait hours for running points; they are rerun on resume
            processes = getattr(self.executor, "_processes", None) or {}  # private, but no public API (<3.14)
            for proc in list(processes.values()):
                proc.terminate()
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


class _DaskBackend:
    def __init__(self, scheduler: str, workers: int):
        try:
            import distributed
        except ImportError as exc:
            raise ExecutorError(f"--executor dask needs dask.distributed, which is not installed ({exc}). "
                                f"Install it with: {DASK_INSTALL_HINT}") from exc
        if logging.getLogger().getEffectiveLevel() > logging.INFO:  # dask sets its loggers to INFO on import
            logging.getLogger("distributed").setLevel(logging.WARNING)
        self.cluster = None
        if scheduler == "local":
            self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address="127.0.0.1:0")
            log.info("dask LocalCluster dashboard: %s", self.cluster.dashboard_link)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
        self.executor = self.client.get_executor(pure=False)
        log.info("dask client: %s", self.client)

    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def restart(self) -> None:  # dask reschedules lost tasks itself
        pass

    def close(self, cancel: bool = False) -> None:
        self.executor.shutdown(wait=not cancel)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(executor: str, workers: int | None, scheduler: str | None):
    workers = workers or os.cpu_count() or 1
    if workers < 1:
        raise ExecutorError(f"--workers = {workers} must be >= 1")
    if executor == "local":
        if scheduler:
            raise ExecutorError("--scheduler only applies to --executor dask")
        return _LocalBackend(workers)
    if executor == "dask":
        return _DaskBackend(scheduler or "local", workers)
    raise ExecutorError(f"--executor = {executor!r} is not one of: local, dask")


# ------------------------------------------------------------------ driver
@dataclasses.dataclass
class SweepSummary:
    total: int = 0        # points in the spec
    skipped: int = 0      # already complete in the file
    complete: int = 0     # completed in this run
    failed: list = dataclasses.field(default_factory=list)  # keys that failed in this run
    by_others: int = 0    # written by other sweep processes on the same file during this run
    left_to_others: list = dataclasses.field(default_factory=list)  # "key (host:pid)" held elsewhere, not waited for

    @property
    def ok(self) -> bool:
        return not self.failed


HELD_RECHECK_S = 0.5  # how often points held by other processes are looked at again


def run_sweep(spec: SweepSpec, executor: str = "local", workers: int | None = None,
              scheduler: str | None = None, progress: bool = True,
              claim_timeout: float | None = None) -> SweepSummary:
    """Run every point of ``spec`` not already complete in ``spec.output``.

    Points are claimed first (module docstring), so several processes may run
    the same spec on the same file.  ``claim_timeout`` (seconds): a claim not
    renewed for that long is taken over, whatever host holds it.

    Raises ``StoreError`` (incompatible/corrupt file) or ``ExecutorError``
    before any point runs.
    """
    task = get_task(spec.task)
    store = SweepStore(spec.output)
    board = ClaimBoard(spec.output, claim_timeout)  # validates the timeout
    done = store.scan(spec).statuses  # read-only: refuses an incompatible file before anything is written
    points = spec.points()
    todo = [p for p in points if done.get(p.key) != "complete"]
    summary = SweepSummary(total=len(points), skipped=len(points) - len(todo))
    log.info("%s: %d points, %d already complete, %d to run", spec.output, len(points), summary.skipped, len(todo))
    if not todo:
        return summary

    backend = make_backend(executor, workers, scheduler)
    try:
        store.prepare(spec)  # creates the file, or deletes half-written points
        seen = store.point_states([p.key for p in todo])  # a change later means another process wrote it
    except BaseException:
        backend.close(cancel=True)
        raise
    queue = list(reversed(todo))  # never tried yet, next at the end
    held: list[SweepPoint] = []   # held by other processes when last tried
    in_flight: dict[cf.Future, SweepPoint] = {}
    bar = tqdm(total=len(todo), desc="sweep", unit="pt", disable=not progress, dynamic_ncols=True)

    def postfix(refresh: bool = True) -> None:
        bar.set_postfix(completed=summary.complete, failed=len(summary.failed), running=len(in_flight),
                        others=summary.by_others, refresh=refresh)

    def record(point: SweepPoint, result: dict) -> None:
        store.write_point(point, result)
        board.release(point.key)  # after the write: the file now says the point is done
        if result["status"] == "complete":
            summary.complete += 1
        else:
            summary.failed.append(point.key)
            last = result.get("traceback", "").strip().splitlines()[-1:] or ["?"]
            log.warning("point %s (%s, seed %d) failed: %s", point.key, point.axis_values, point.seed, last[0])
        postfix(refresh=False)
        bar.update(1)

    def still_todo(key: str) -> bool:
        now = store.point_states([key])[key]
        return now == seen[key] and (now is None or now[0] != "complete")  # complete before our look counts too

    def claim(point: SweepPoint) -> str:
        outcome = board.try_claim(point.key, lambda: still_todo(point.key))
        if outcome == DONE:
            summary.by_others += 1
            bar.update(1)
        return outcome

    last_recheck = [-math.inf]

    def fill() -> None:
        """Claim and submit points while there is capacity: held ones that are free now, then new ones."""
        nonlocal held
        if held and len(in_flight) < backend.capacity() and time.monotonic() - last_recheck[0] >= HELD_RECHECK_S:
            last_recheck[0] = time.monotonic()
            still = []
            for p in held:
                outcome = claim(p) if len(in_flight) < backend.capacity() else HELD
                if outcome == CLAIMED:
                    submit(p)
                elif outcome == HELD:
                    still.append(p)
            held = still
        while queue and len(in_flight) < backend.capacity():
            p = queue.pop()
            outcome = claim(p)
            if outcome == CLAIMED:
                submit(p)
            elif outcome == HELD:
                held.append(p)

    def submit(p: SweepPoint) -> None:
        in_flight[backend.executor.submit(run_point, task.run_fn, task.validate(p.params), p.seed)] = p

    def waitable(p: SweepPoint) -> bool:
        holder = board.holder(p.key)
        return holder is None or holder.can_go_stale(claim_timeout)

    cancel = True
    try:
        while queue or in_flight or held:
            fill()
            postfix()
            if not in_flight:
                if not held:
                    continue
                if not any(waitable(p) for p in held):  # only other hosts' live claims are left
                    for p in held:
                        h = board.holder(p.key)
                        summary.left_to_others.append(f"{p.key} ({h.host}:{h.pid})" if h else p.key)
                    log.warning("%d point(s) are being computed by processes on other hosts; not waiting for "
                                "them (give --claim-timeout to take over claims of dead processes there): %s",
                                len(held), ", ".join(summary.left_to_others))
                    break
                board.renew_due()
                time.sleep(HELD_RECHECK_S)
                continue
            # the timeout lets the main thread run signal handlers (Ctrl-C, SIGTERM) promptly
            finished, _ = cf.wait(in_flight, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            board.renew_due()
            broken = False
            for fut in finished:
                point = in_flight.pop(fut)
                try:
                    result = fut.result()
                except cf.BrokenExecutor as exc:
                    broken, result = True, _client_failure(exc)
                except Exception as exc:  # e.g. dask KilledWorker, unpicklable result
                    result = _client_failure(exc)
                record(point, result)
            if broken:
                log.warning("a worker process died; restarting the pool (points in flight are stored as failed)")
                for fut, point in list(in_flight.items()):
                    record(point, _client_failure(RuntimeError("worker pool broke while this point was running")))
                in_flight.clear()
                backend.restart()
        postfix()
        cancel = False
    finally:
        bar.close()
        backend.close(cancel=cancel)
        board.release_all()  # interrupted: points still claimed can be taken over at once
    return summary
