"""A paper reproduction is a sweep: a spec, a task and a figure function.

Every ``xbarsim repro NAME`` is one package (listed in
:data:`xbarsim.experiments.repro.REPRODUCTIONS`) whose ``__init__`` exports

``PRESETS``
    ``{"smoke": {...}, "paper": {...}}``: JSON-able option dicts.  ``smoke`` runs
    in seconds (tests, CI); ``paper`` is the figure.
``TASK``
    a :class:`~xbarsim.experiments.sweeps.tasks.Task` whose run function computes
    ONE point, ``run_point(params, seed) -> metrics`` (scalars and numeric arrays),
    in a worker process.
``build_spec(options, output) -> dict``
    the raw sweep spec (the TOML format of :mod:`xbarsim.experiments.sweeps.spec`)
    of a preset's points; a list of unlike points is one ``zip`` group.
``summarize(h5_path) -> dict``
    tables and a ``claims`` list (``{"claim", "value", "op", "target"}``), read
    from the HDF5 file only.
``draw_figures(h5_path, figures_dir) -> list[Path]``
    PNG and PDF from the HDF5 file only; never simulates.

This module runs that spec on the sweep engine (:func:`run_sweep`: local process
pool or Dask, resume after a kill, progress bar), then writes ``summary.json``
(the module's summary plus the preset, wall time and status) and the figures.
No reproduction owns a pool, a store or a thread setup of its own.

Points that share expensive work (a trained baseline several points evaluate)
use :func:`cached_artifact`: the first point to need it builds it, the others load it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from xbarsim.experiments.provenance import xbarsim_version
from xbarsim.experiments.sweeps.spec import SweepSpec, canonical_json, parse_spec
from xbarsim.experiments.sweeps.store import deferred_signals, open_h5, read_points, utc_now

__all__ = ["load_reproduction", "preset_options", "make_spec", "run_reproduction", "write_outputs", "build_summary",
           "cached_artifact", "ARTIFACT_DIR_ENV", "REQUIRED"]

log = logging.getLogger(__name__)

#: Environment variable naming the artifact folder of the running reproduction
#: (inherited by the spawned workers).  Unset: :func:`cached_artifact` builds every time.
ARTIFACT_DIR_ENV = "XBARSIM_ARTIFACT_DIR"
REQUIRED = ("PRESETS", "TASK", "build_spec", "summarize", "draw_figures")
RUN_ATTR = "repro_runs"  # file attribute: JSON list of {preset, options, started, wall_s, status}


def load_reproduction(name: str) -> ModuleType:
    """The module implementing reproduction ``name`` (checked for the five required names)."""
    from xbarsim.experiments.repro import REPRODUCTIONS
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown reproduction {name!r}; choose one of {sorted(REPRODUCTIONS)}")
    module = importlib.import_module(REPRODUCTIONS[name])
    missing = [n for n in REQUIRED if not hasattr(module, n)]
    if missing:
        raise TypeError(f"reproduction module {module.__name__} lacks {missing}")
    return module


def preset_options(module: ModuleType, preset: str, overrides: dict | None = None) -> dict:
    """A preset's options with ``overrides`` applied (tables merged); unknown keys raise ``ValueError`` naming them."""
    if preset not in module.PRESETS:
        raise ValueError(f"preset {preset!r} is unknown; choose one of {sorted(module.PRESETS)}")
    options = json.loads(json.dumps(module.PRESETS[preset]))  # deep copy, JSON-able by contract
    _override(options, overrides or {}, preset, "")
    return options


def _override(options: dict, overrides: dict, preset: str, where: str) -> None:
    """Set ``overrides`` in ``options``; a table given for a table is merged key by key
    (``networks='{"vgg": {"epochs": 3}}'`` changes one entry)."""
    for key, value in overrides.items():
        if key not in options:
            raise ValueError(f"option {where + key!r} is not an option of preset {preset!r}; "
                             f"known: {', '.join(sorted(options))}")
        if isinstance(value, dict) and isinstance(options[key], dict):
            _override(options[key], value, preset, f"{where}{key}.")
        else:
            options[key] = value


def make_spec(module: ModuleType, name: str, preset: str, options: dict, output: Path) -> SweepSpec:
    """The validated sweep spec of a preset (every point checked before any work starts)."""
    raw = module.build_spec(options, Path(output))
    raw.setdefault("description", f"xbarsim repro {name} --preset {preset}")
    return parse_spec(raw, source=f"repro {name} ({preset})", output=Path(output).resolve())


@contextlib.contextmanager
def _artifact_env(folder: Path):
    saved = os.environ.get(ARTIFACT_DIR_ENV)
    os.environ[ARTIFACT_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ARTIFACT_DIR_ENV, None)
        else:
            os.environ[ARTIFACT_DIR_ENV] = saved


def run_reproduction(name: str, preset: str = "paper", out: str | os.PathLike | None = None,
                     figures_dir: str | os.PathLike | None = None, resume: bool = False,
                     executor: str = "local", workers: int | None = None, scheduler: str | None = None,
                     progress: bool = True, overrides: dict | None = None) -> dict:
    """Run (or resume) reproduction ``name`` into ``out``; write ``summary.json`` and the figures.

    Raises ``FileExistsError`` if ``out`` exists and ``resume`` is False,
    ``ValueError`` for an unknown preset or option, and the sweep engine's
    ``StoreError``/``ExecutorError`` (before any point runs).  Returns the summary.
    """
    from xbarsim.experiments.sweeps.run import run_sweep

    module = load_reproduction(name)
    out = Path(out) if out is not None else Path(f"{name.replace('-', '_')}_{preset}.h5")
    figures_dir = out.parent if figures_dir is None else Path(figures_dir)
    if out.exists() and not resume:
        raise FileExistsError(f"{out} exists; pass --resume to continue it, or choose another --out")
    options = preset_options(module, preset, overrides)
    spec = make_spec(module, name, preset, options, out)
    started, t0 = utc_now(), time.perf_counter()
    with _artifact_env(out.resolve().with_name(out.name + ".artifacts")):
        result = run_sweep(spec, executor=executor, workers=workers, scheduler=scheduler, progress=progress)
    status = "complete" if result.ok else "incomplete"
    _record_run(out, {"preset": preset, "options": options, "started": started,
                      "wall_s": round(time.perf_counter() - t0, 1), "status": status,
                      "points_run": result.complete, "points_failed": len(result.failed)})
    if result.failed:
        log.error("%d points failed; their tracebacks are in %s (rerun with --resume)", len(result.failed), out)
    return write_outputs(name, out, figures_dir)


def _record_run(out: Path, run: dict) -> None:
    if not out.exists():  # nothing to run and nothing written (an empty spec)
        return
    with deferred_signals(), open_h5(out, "a") as f:
        runs = json.loads(f.attrs.get(RUN_ATTR, "[]"))
        runs.append(run)
        f.attrs[RUN_ATTR] = json.dumps(runs)
        f.attrs["repro_preset"] = run["preset"]
        f.attrs["repro_options"] = canonical_json(run["options"])


def write_outputs(name: str, h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> dict:
    """``summary.json`` and the figures, from the HDF5 file only; returns the summary."""
    module = load_reproduction(name)
    figures_dir = Path(figures_dir)
    summary = build_summary(name, h5_path)
    figures_dir.mkdir(parents=True, exist_ok=True)
    (figures_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    module.draw_figures(Path(h5_path), figures_dir)
    return summary


def build_summary(name: str, h5_path: str | os.PathLike) -> dict:
    """The ``summary.json`` of reproduction ``name``, from its HDF5 file only (writes nothing)."""
    module = load_reproduction(name)
    h5_path = Path(h5_path)
    if not h5_path.exists():
        raise FileNotFoundError(f"{h5_path} not found; run `xbarsim repro {name} --out {h5_path}` first")
    with open_h5(h5_path, "r") as f:
        runs = json.loads(f.attrs.get(RUN_ATTR, "[]"))
        preset = f.attrs.get("repro_preset", "")
        options = json.loads(f.attrs.get("repro_options", "{}"))
    records = read_points(h5_path)
    complete = [r for r in records if r.status == "complete"]
    summary: dict[str, Any] = {
        "experiment": name,
        "preset": preset,
        "options": options,
        "points_complete": len(complete),
        "points_failed": len(records) - len(complete),
        "status": "complete" if records and len(complete) == len(records) and runs
                  and runs[-1]["status"] == "complete" else "incomplete",
        # wall time of every invocation (a resumed run has several), and the points' own run time
        "wall_seconds": round(sum(float(r["wall_s"]) for r in runs), 1),
        "invocations": runs,
        "compute_seconds": round(sum(r.wall_s for r in complete), 1),
        "xbarsim_version": xbarsim_version(),
    }
    body = module.summarize(h5_path)
    if "claims" not in body:
        raise TypeError(f"{module.__name__}.summarize must return a 'claims' list")
    summary.update(body)
    return summary


def cached_artifact(tag: str, key: dict, build: Callable[[], dict]) -> dict:
    """``build()`` once per ``(tag, key)`` within a reproduction run; later calls load it.

    The artifact (a dict of tensors, arrays and plain values) is saved with
    ``torch.save`` under the run's artifact folder (``<out>.artifacts/``, named by
    the environment variable :data:`ARTIFACT_DIR_ENV`), under an exclusive file
    lock, so two workers never build the same artifact twice.  Outside a
    reproduction run (variable unset) it simply builds.  Workers on other machines
    (Dask) must share that folder's file system to share artifacts.  It is loaded
    with ``weights_only=True`` (no arbitrary pickle from a shared folder): tensors,
    plain containers and numbers, and numpy arrays, dtypes and scalars
    (:func:`_numpy_safe_globals`) only.
    """
    import torch

    folder = os.environ.get(ARTIFACT_DIR_ENV)
    if not folder:
        return build()
    digest = hashlib.sha256(canonical_json({"tag": tag, "key": key}).encode()).hexdigest()[:16]
    path = Path(folder) / f"{tag}-{digest}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                return torch.load(path, weights_only=True)
        value = build()
        tmp = path.with_suffix(".tmp")
        torch.save(value, tmp)
        os.replace(tmp, path)
        return value


def _numpy_safe_globals() -> list:
    """What a pickled numpy array or scalar needs, for ``torch.load(weights_only=True)``."""
    import numpy as np
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / numpy 1
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
             np.float16, np.float32, np.float64, np.complex64, np.complex128)
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *(type(np.dtype(k)) for k in kinds)]


def save_figure(fig, figures_dir: str | os.PathLike, name: str) -> list[Path]:
    """Save ``fig`` as ``name.png`` (150 dpi) and ``name.pdf`` under ``figures_dir``; return both paths."""
    paths = []
    for ext in ("png", "pdf"):
        path = Path(figures_dir) / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(path)
    return paths
