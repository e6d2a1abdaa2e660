"""HDF5 store of one sweep: layout, resume scan, point writes, reading back.

Layout (one file per sweep)::

    /                         attrs: format="xbarsim-sweep", format_version=1,
                                     spec (JSON, the latest spec run into this file),
                                     compat (JSON: task, task options, base config, axis names),
                                     fingerprint (16 hex of sha256 of compat), task,
                                     axis_names (JSON list), created, xbarsim_version
    /points/<key>             one group per point; <key> = 16 hex of sha256 of the
                              canonical JSON of {task, params, seed} (sweep_spec.point_key)
        attrs:  config (JSON: task, params, seed, repeat, axes), task, seed, repeat,
                xbarsim_version, host, pid, started, finished (ISO-8601 UTC), wall_s,
                metrics (JSON list of dataset names), traceback (failed points only),
                status = "complete" | "failed"      <- written LAST, then the file is flushed
        datasets: one per metric; curves 1-D, scalars 0-d (strings as 0-d UTF-8)

Resume semantics (``SweepStore.prepare``):

* A *complete* point is never recomputed; a *failed* or missing one is run again.
* A group with no ``status`` (or an unknown one, missing ``config``/metric datasets,
  or a ``config`` whose hash is not the group name) is a half-written point: it is
  deleted and recomputed.
* The file's ``compat`` must equal the new spec's: changing the task, its options,
  the base config or the set of axis names is refused (the file is not touched).
  New axis values, more repeats or another seed only add points.

Crash safety. The file is opened only for each write (open, append, flush, close),
and SIGINT/SIGTERM/SIGHUP are held back during a write, so an interrupted or
terminated sweep loses only the points still running. SIGKILL cannot be held
back, and HDF5 has no journal: a kill landing inside the milliseconds of a write
can leave the file's metadata damaged (in stress tests killing a process that did
nothing but write points, about 1 kill in 100 did). Resume then *salvages*: every
point still readable (looked up by name, so a damaged ``/points`` index is
survivable) is copied into a fresh file that atomically replaces the damaged
one, which is kept as ``<file>.damaged-<UTC time>``; unreadable points are
recomputed (in those stress tests no file was lost and one salvage in five lost
one finished point; a real sweep spends a far smaller share of its time writing). The file uses the default (oldest compatible) HDF5 format on purpose:
with ``libver="latest"`` HDF5 marks the superblock "open for write", and a killed
writer leaves a file that only ``h5clear`` can reopen.
Only the sweep client writes; workers return results to it.  Several sweep
processes may write one file (``xbarsim sweep`` run twice, or a job array): each
write, the resume clean-up and a salvage hold an exclusive ``flock`` on
``<file>.lock`` for their few milliseconds, so a salvage never replaces the file
under another process's write, and ``sweeps.claims`` makes sure they compute
different points.

Other records (``xbarsim train``'s ``/run`` group) are written by
:meth:`SweepStore.write_group` with the same lock, deferred signals and
status-last order.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbarsim.experiments.provenance import xbarsim_version
from xbarsim.experiments.sweeps.spec import SweepPoint, SweepSpec, canonical_json, point_key

__all__ = ["StoreError", "SweepStore", "Scan", "PointRecord", "read_points", "read_file_attrs", "xbarsim_version", "utc_now"]

log = logging.getLogger(__name__)

FORMAT = "xbarsim-sweep"
FORMAT_VERSION = 1
POINTS = "points"
STATUSES = ("complete", "failed")
LOCK_RETRY_S = 30.0


class StoreError(RuntimeError):
    """The output file cannot be used for this sweep (incompatible, corrupt, locked)."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


@contextmanager
def open_h5(path: Path, mode: str):
    """``h5py.File`` that waits (up to LOCK_RETRY_S) while another process holds the file lock."""
    deadline = time.monotonic() + LOCK_RETRY_S
    while True:
        try:
            f = h5py.File(path, mode)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError(f"{path}: locked by another process for more than {LOCK_RETRY_S:.0f} s")
            time.sleep(0.05)
        except OSError as exc:
            if "lock" in str(exc).lower():
                if time.monotonic() <= deadline:
                    time.sleep(0.05)
                    continue
                raise StoreError(f"{path}: cannot lock the file ({exc}); another process holds it, or the "
                                 "file system has no locks (then set HDF5_USE_FILE_LOCKING=FALSE)") from exc
            raise StoreError(f"{path}: cannot open as HDF5 ({exc}); if it is damaged, move it away and rerun") from exc
    try:
        yield f
    finally:
        f.close()


def _attr_str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _group_problem(key: str, g: h5py.Group) -> str | None:
    """Why group ``g`` is not a usable point, or None if it is complete/failed and intact."""
    status = g.attrs.get("status")
    if status is None:
        return "no status attribute (half-written)"
    status = _attr_str(status)
    if status not in STATUSES:
        return f"status = {status!r} is not one of {STATUSES}"
    try:
        cfg = json.loads(_attr_str(g.attrs["config"]))
        if point_key(cfg["task"], cfg["params"], cfg["seed"]) != key:
            return "config does not hash to the group name"
        missing = [m for m in json.loads(_attr_str(g.attrs["metrics"])) if m not in g]
    except (KeyError, ValueError, TypeError) as exc:
        return f"unreadable attributes ({type(exc).__name__}: {exc})"
    if missing:
        return f"metric datasets missing: {missing}"
    return None


def _compat_diff(old: dict, new: dict) -> list[str]:
    out = []
    if old.get("task") != new["task"]:
        out.append(f"task: file has {old.get('task')!r}, spec has {new['task']!r}")
    for section in ("options", "base"):
        a, b = old.get(section, {}), new[section]
        for k in sorted(set(a) | set(b)):
            if a.get(k, "<unset>") != b.get(k, "<unset>"):
                out.append(f"{section}.{k}: file has {a.get(k, '<unset>')!r}, spec has {b.get(k, '<unset>')!r}")
    a, b = set(old.get("axis_names", [])), set(new["axis_names"])
    if a != b:
        out.append(f"axis names: added {sorted(b - a)}, removed {sorted(a - b)}")
    return out or ["fingerprints differ"]


_DEFERRED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


@contextmanager
def deferred_signals():
    """Hold back SIGINT/SIGTERM/SIGHUP while the file is being written (POSIX, any thread)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@dataclasses.dataclass
class Scan:
    """What a sweep file holds: ``statuses[key]`` is "complete", "failed" or "corrupt: why".

    ``damage`` says why the file needs salvaging (unreadable point objects or
    ``/points`` index), else is empty.
    """

    statuses: dict
    damage: str = ""

    def usable(self) -> dict:
        return {k: v for k, v in self.statuses.items() if v in STATUSES}


class SweepStore:
    """The HDF5 file of one sweep (see module docstring for layout and resume rules)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @contextmanager
    def writing(self):
        """Exclusive ``flock`` on ``<file>.lock`` (every writer of this file takes it), signals held back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with deferred_signals():
                    yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---------------------------------------------------------------- resume
    def check_compatible(self, f: h5py.File, spec: SweepSpec) -> None:
        if _attr_str(f.attrs.get("format", "")) != FORMAT:
            raise StoreError(f"{self.path}: exists but is not an xbarsim sweep file (no format={FORMAT!r} attribute); "
                             "choose another output")
        if _attr_str(f.attrs.get("fingerprint", "")) != spec.fingerprint():
            old = json.loads(_attr_str(f.attrs.get("compat", "{}")))
            diff = "; ".join(_compat_diff(old, spec.compat()))
            raise StoreError(
                f"{self.path}: holds a different sweep ({diff}). Only new axis values, repeats or seeds "
                "can be added to an existing file; write to a new output (or --output) instead"
            )

    def scan(self, spec: SweepSpec | None = None) -> Scan:
        """Read-only inventory of the file (checks compatibility with ``spec`` if given)."""
        if not self.path.exists():
            return Scan({})
        with open_h5(self.path, "r") as f:
            if spec is not None:
                self.check_compatible(f, spec)
            try:
                points = f.get(POINTS)
                keys, damage = ([] if points is None else list(points)), ""
            except Exception as exc:  # the /points index itself is damaged
                if spec is None:
                    raise StoreError(f"{self.path}: the point index is damaged ({exc}); run its sweep spec "
                                     "again to salvage the readable points") from exc
                keys, damage = [p.key for p in spec.points()], f"point index unreadable ({exc})"
            statuses = {}
            for key in keys:
                try:
                    if damage and key not in points:
                        continue
                    problem = _group_problem(key, points[key])
                except Exception as exc:  # h5py raises KeyError/OSError/RuntimeError for damaged objects
                    problem = f"unreadable ({type(exc).__name__}: {exc})"
                    damage = damage or f"point {key} is unreadable"
                statuses[key] = f"corrupt: {problem}" if problem else _attr_str(points[key].attrs["status"])
            return Scan(statuses, damage)

    def prepare(self, spec: SweepSpec) -> dict[str, str]:
        """Create the file or validate it for ``spec``; remove half-written points.

        Returns ``{key: status}`` of the intact points. Raises :class:`StoreError`
        (file untouched) when the file holds an incompatible sweep. A damaged file
        is salvaged first (see module docstring).
        """
        self.scan(spec)  # read-only first: an incompatible file is never opened for writing
        with self.writing():
            return self._prepare_locked(spec)

    def _prepare_locked(self, spec: SweepSpec) -> dict[str, str]:
        scan = self.scan(spec)  # again: another process may have written since
        if scan.damage:
            scan = self._salvage(scan)
        statuses = scan.statuses
        with open_h5(self.path, "a") as f:
            if _attr_str(f.attrs.get("format", "")) != FORMAT:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["created"] = utc_now()
                f.attrs["compat"] = canonical_json(spec.compat())
                f.attrs["fingerprint"] = spec.fingerprint()
                f.attrs["task"] = spec.task
            f.attrs["spec"] = canonical_json(spec.to_dict())
            f.attrs["axis_names"] = json.dumps(list(spec.axis_names))
            f.attrs["xbarsim_version"] = xbarsim_version()
            points = f.require_group(POINTS)
            for key, status in list(statuses.items()):
                if status.startswith("corrupt"):
                    log.warning("point %s is %s; deleting it, it will be recomputed", key, status)
                    del points[key]
                    del statuses[key]
            f.flush()
        return statuses

    def _salvage(self, scan: Scan) -> Scan:
        """Copy every intact point into a fresh file that replaces this one; keep the original.

        Called under :meth:`writing`, so no other process writes between the copy and the replace.
        """
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        backup = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        tmp = self.path.with_name(f"{self.path.name}.salvage")
        kept = {}
        with open_h5(self.path, "r") as src, h5py.File(tmp, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            out = dst.create_group(POINTS)
            for key, status in scan.usable().items():
                try:
                    src.copy(src[POINTS][key], out, name=key)
                    kept[key] = status
                except Exception as exc:
                    log.warning("salvage: point %s could not be copied (%s); it will be recomputed", key, exc)
                    out.pop(key, None)
        shutil.copy2(self.path, backup)
        os.replace(tmp, self.path)
        log.warning("%s was damaged (%s; the writer was probably killed during a write). Salvaged %d intact "
                    "points into a fresh file; the damaged original is kept as %s", self.path, scan.damage,
                    len(kept), backup)
        return Scan(kept)

    def point_states(self, keys) -> dict[str, tuple[str, str] | None]:
        """``{key: (status, finished) or None}`` for ``keys``: what the file says about them now.

        A change of this value since a process's own scan means another process
        wrote the point meanwhile.
        """
        if not self.path.exists():
            return dict.fromkeys(keys)
        out: dict[str, tuple[str, str] | None] = {}
        with open_h5(self.path, "r") as f:
            points = f.get(POINTS)
            for key in keys:
                try:
                    a = points[key].attrs
                    out[key] = (_attr_str(a["status"]), _attr_str(a.get("finished", "")))
                except Exception:  # absent, half-written or unreadable: not written by anyone
                    out[key] = None
        return out

    # ---------------------------------------------------------------- writes
    def write_group(self, name: str, datasets: dict, attrs: dict, status: str) -> None:
        """Write group ``name`` (a path such as ``"run"``) whole: datasets, attributes, ``status`` last, flush.

        An existing group of that name is deleted first.  Under :meth:`writing`
        (the file's writer lock, signals held back).
        """
        with self.writing(), open_h5(self.path, "a") as f:
            if name in f:
                del f[name]
            g = f.create_group(name)
            for key, value in datasets.items():
                g.create_dataset(key, data=value)
            for key, value in attrs.items():
                g.attrs[key] = value
            g.attrs["status"] = status  # last: a group without it is half-written
            f.flush()

    def write_point(self, point: SweepPoint, result: dict) -> None:
        """Write one finished point: datasets and attributes, ``status`` last, then flush.

        ``result`` is what ``sweep_run.run_point`` returns: status, metrics,
        traceback, started, finished, wall_s, host, pid.
        """
        metrics = result.get("metrics") or {}
        a = {}
        a["config"] = canonical_json(point.config())
        a["task"] = point.task
        a["seed"] = point.seed
        a["repeat"] = point.repeat
        a["xbarsim_version"] = xbarsim_version()
        a["host"] = result.get("host") or socket.gethostname()
        a["pid"] = int(result.get("pid") or os.getpid())
        a["started"] = result.get("started") or ""
        a["finished"] = result.get("finished") or utc_now()
        a["wall_s"] = float(result.get("wall_s") or 0.0)
        a["metrics"] = json.dumps(sorted(metrics))
        if result.get("traceback"):
            a["traceback"] = result["traceback"]
        # a failed point being rerun is replaced whole
        self.write_group(f"{POINTS}/{point.key}", metrics, a, result["status"])


# -------------------------------------------------------------------- reading
@dataclasses.dataclass
class PointRecord:
    """One stored point, as read back by ``results`` and ``plot``."""

    key: str
    status: str
    config: dict
    seed: int
    repeat: int
    metrics: dict
    started: str = ""
    finished: str = ""
    wall_s: float = 0.0
    host: str = ""
    traceback: str = ""

    @property
    def params(self) -> dict:
        return self.config.get("params", {})

    def value(self, name: str) -> Any:
        """A param, ``seed``/``repeat``/``status``/``key``, or a metric (curves: last value)."""
        if name in ("seed", "repeat", "status", "key"):
            return getattr(self, name)
        if name in self.metrics:
            v = self.metrics[name]
            return v[-1].item() if isinstance(v, np.ndarray) and v.ndim == 1 and v.size else v
        v: Any = self.params
        for part in name.split("."):  # dotted names reach into nested params
            if not isinstance(v, dict) or part not in v:
                return None
            v = v[part]
        return v


def _read_dataset(d: h5py.Dataset) -> Any:
    v = d[()]
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def read_file_attrs(path: str | Path) -> dict:
    """File-level attributes, JSON ones decoded (spec, compat, axis_names)."""
    with open_h5(Path(path), "r") as f:
        attrs = {k: _attr_str(v) if isinstance(v, (bytes, str)) else v for k, v in f.attrs.items()}
    if attrs.get("format") != FORMAT:
        raise StoreError(f"{path}: not an xbarsim sweep file")
    for k in ("spec", "compat", "axis_names"):
        if k in attrs:
            attrs[k] = json.loads(attrs[k])
    return attrs


def read_points(path: str | Path, include_corrupt: bool = False) -> list[PointRecord]:
    """All intact points of a sweep file (half-written ones are skipped unless asked)."""
    out = []
    statuses = SweepStore(path).scan().statuses
    with open_h5(Path(path), "r") as f:
        points = f.get(POINTS, {})
        for key, status in statuses.items():
            if status not in STATUSES and (not include_corrupt or "unreadable" in status):
                continue
            g = points[key]
            a = g.attrs
            cfg = json.loads(_attr_str(a.get("config", "{}")))
            out.append(PointRecord(
                key=key,
                status=status,
                config=cfg,
                seed=int(a.get("seed", cfg.get("seed", -1))),
                repeat=int(a.get("repeat", cfg.get("repeat", -1))),
                metrics={m: _read_dataset(g[m]) for m in g if isinstance(g[m], h5py.Dataset)},
                started=_attr_str(a.get("started", "")),
                finished=_attr_str(a.get("finished", "")),
                wall_s=float(a.get("wall_s", 0.0)),
                host=_attr_str(a.get("host", "")),
                traceback=_attr_str(a.get("traceback", "")),
            ))
    return out
