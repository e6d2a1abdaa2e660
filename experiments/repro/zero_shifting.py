r"""Zero-shifting on asymmetric soft-bound devices: ``xbarsim repro zero-shifting``.

Reproduces the figure of Kim et al., "Zero-shifting technique for deep neural
network training on resistive cross-point arrays", arXiv:1907.10228 (2019):
test accuracy of in-situ training versus device asymmetry, with and without
programming each weight's reference device to its symmetry point.

Physics (details in :mod:`xbarsim.mapping.reference`)
---------------------------------------------
A soft-bound cell steps ``+alpha_+ (1 - w/b_max)`` up and ``-alpha_- (1 - w/b_min)``
down; ``up_down`` (aihwkit convention) makes ``alpha_+ = dw_min (1 + min(up_down, 0))``
and ``alpha_- = dw_min (1 - max(up_down, 0))``.  The steps balance at the symmetry
point ``w* = (alpha_+ - alpha_-)/(alpha_+/b_max - alpha_-/b_min)``, e.g.
``w* = 0.6 * 0.6/1.4 = 0.257`` for ``up_down = 0.6``, ``b = ±0.6``.  Under the
zero-mean pulse traffic of SGD, ``E[dw] ∝ (w* - w)``: weights decay toward ``w*``.
With ``W = G`` (mode ``none``) that is a bias the network must fight; with
``G_ref = 0`` (``zero``) the same; with ``G_ref = w*`` (``symmetry_point``,
zero-shifting) the attractor is ``W = 0``.

What runs
---------
A 784-256-128-10 sigmoid MLP (log-softmax, NLL loss) trained in-situ with
:class:`xbarsim.training.AnalogSGD` on :class:`xbarsim.devices.SoftBounds` arrays
(``xbarsim.experiments.train.run_train``; aihwkit-default d2d/c2c variation:
``dw_min_dtod = 0.3``, ``up_down_dtod = 0.01``, ``w_max_dtod = w_min_dtod = 0.3``,
``dw_min_std = 0.3``; default IO periphery; stochastic pulse trains with
``desired_bl = 31``), for every point of

* ``up_down`` in the preset's list (main number of states), for each reference mode;
* the number of states ``(w_max - w_min)/dw_min`` (``w_max = -w_min = 0.6``, so
  ``dw_min = 1.2/states``) at one asymmetry, for each reference mode;
* the floating-point baseline (same network, data and schedule, plain SGD).

Every run uses the same seed (same initial weights, d2d draws and data order),
so differences between points are paired comparisons.  The reference, when
there is one, is measured and written with pulses (``reference_ideal=False``):
it carries measurement and programming error (:mod:`xbarsim.mapping.reference`).

Presets and budget
------------------
``smoke``
    Seconds: a 784-32-16-10 network, 300 training / 200 test samples, 1 epoch,
    ``up_down = 0.6`` only, modes ``none`` and ``symmetry_point``, 200 states, plus
    the float baseline.  For the tests: it checks the plumbing, not the physics.
``paper``
    The figure.  Budgeted for about 25 minutes on 2 cores (measured on this
    project's 2-core machine, shared with other jobs: one 10k-sample epoch of the
    full network takes 5-10 s; the symmetry-point measurement plus the
    reference writes of the 235k cells take about 15 s / 40 s / 80 s at
    200 / 600 / 1200 states).  Hence: a 10k-sample training subset (the first
    10k of a fixed seeded permutation), the 10k-sample test set, 5 epochs,
    batch 10, lr 0.1 constant; 600 states for the asymmetry sweep
    ``up_down in {0, ±0.2, ±0.4, ±0.6, ±0.8}``; states ``{200, 600, 1200}`` at
    ``up_down = 0.6``; modes ``none``, ``zero``, ``symmetry_point``: 34 runs.
    The full 60k-sample, 30-epoch schedule of the paper is out of this budget;
    absolute accuracies are therefore below converged values, but every point
    sees the same schedule.

Dataset: MNIST (the paper's) when a full copy is found
(``xbarsim.experiments.data.datasets.find_dataset("mnist")``), else Fashion-MNIST.

The paper preset took 1109 s (18.5 min) of wall time with 2 workers on the
shared 2-core machine (2197 s of run time summed over the 34 points).

Findings (paper preset, Fashion-MNIST, committed in ``experiments/figures/zero_shifting``)
------------------------------------------------------------------------------------------
* Zero-shifting keeps every asymmetry within a few points of the symmetric
  device (0.53-0.59 vs 0.538 for ``none`` at ``up_down = 0``; float 0.776 with
  the same short schedule).  A reference at 0 behaves like no reference.
* Without it, ``up_down >= +0.6`` collapses to chance (0.10-0.11 at 200, 600 and
  1200 states), but negative asymmetry does not (``-0.6``: 0.534, ``-0.8``: 0.470).
  The sign matters because a sigmoid network's layer inputs are all >= 0: the
  drift toward ``w*`` shifts every pre-activation by about ``w* sum_j x_j``.
  For ``w* > 0`` the second hidden layer saturates ON (mean activation 0.99,
  mean ``sigma'`` 0.006 instead of 0.24 after 10k samples at lr 0.1): its gradients
  vanish and its constant output feeds the output layer's drifted weights, whose
  row sums (the d2d spread of ``w*``) give one confident wrong class (training
  loss 2.7 > ln 10).  For ``w* < 0`` units turn OFF instead, which is
  self-limiting: a silent input gets no coincidence pulses, so the next layer's
  drift stops, and ``sigma'`` recovers (0.17).  In a network with
  sign-symmetric activations (tanh) both signs would be expected to hurt;
  ``run_train`` only builds sigmoid MLPs.  Longer training (12 epochs) did not
  make ``-0.6`` collapse either (none 0.630, zero-shifting 0.617).
* The collapse is a race, not an equilibrium: at lr 0.5 (3 epochs, 600 states,
  2k test samples) ``none`` at ``+0.6`` reached 0.66, because the first hidden
  layer learned to switch most units off (mean activation 0.10) before the
  second layer's offset ``w* sum_j h_j`` could saturate it.  The drift per
  update and the learning per update both scale with lr; what differs is how
  fast the digitally trained biases and the lower layer adapt before
  ``sigma' -> 0`` freezes them.

Outputs
-------
One HDF5 file (``--out``)::

    /                    attrs: format, format_version, experiment, preset (JSON),
                                dataset, created, xbarsim_version, wall_s (last invocation)
    /runs/<key>          one group per training run, key e.g. ``symmetry_point_ud+0.60_n600``
                         or ``fp``.  attrs: config (JSON: the run_train params), seed, mode,
                         up_down, states, xbarsim_version, started, finished, wall_s,
                         final_test_acc, data_source, weight_stats (JSON),
                         traceback (failed only), status ("complete"/"failed", LAST)
        test_acc, train_loss, epoch_seconds, lr     per-epoch curves
        weight_hist/<layer>                         final effective-weight histogram
                                                    (counts; attr ``shape``), edges in
        weight_hist_edges                           (shared bin edges)
    /device/ud<+0.60>    one cell's characterisation for figure (a).  attrs: up_down,
                         dw_min, states, w_star (the cell's closed form), w_star_nominal,
                         measured_w_star, n_up, n_down, n_pairs, status (LAST)
        pulse_response   weight after each pulse: n_up up pulses from b_min, then n_down down
        alternating      weight after each pulse of alternating up/down pairs from b_max

A point whose ``status`` is not ``complete``, or whose stored config differs from
the one the preset asks for, is (re)computed on ``--resume``; complete points
are skipped.  Only the main process writes the file, one point at a time
(open, write, flush, close), so a crash loses at most the running points.

Figures (``--figures``, PNG and PDF, drawn from the HDF5 file only):
``fig_a_device``, ``fig_b_accuracy_vs_asymmetry``, ``fig_c_weight_histograms``,
``fig_d_accuracy_vs_states``; and ``summary.json`` (accuracy table, baseline,
must-show check, wall time).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import math
import multiprocessing
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xbarsim.experiments.provenance import xbarsim_version
from xbarsim.experiments.sweeps.run import cap_numba_threads

log = logging.getLogger(__name__)

EXPERIMENT = "zero-shifting"
FORMAT = "xbarsim-repro-zero-shifting"
FORMAT_VERSION = 1
MODES = ("none", "zero", "symmetry_point")
WEIGHT_HIST_EDGES = np.linspace(-1.5, 1.5, 301)  # 0.01 wide; every SoftBounds weight fits
FIGURES = ("fig_a_device", "fig_b_accuracy_vs_asymmetry", "fig_c_weight_histograms", "fig_d_accuracy_vs_states")

__all__ = ["Preset", "PRESETS", "Point", "build_points", "run_experiment", "draw_figures", "write_summary",
           "read_results", "choose_dataset"]


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """One configuration of the experiment (see the module docstring for the budget)."""

    name: str
    epochs: int
    train_subset: int
    test_subset: int
    batch_size: int = 10
    lr: float = 0.1
    lr_schedule: str = "constant"
    hidden: tuple = (256, 128)
    up_downs: tuple = (0.0, 0.6)
    main_states: int = 600
    states: tuple = (600,)
    states_up_down: float = 0.6
    modes: tuple = MODES
    histogram_up_down: float = 0.6
    trace_up_downs: tuple = (0.0, 0.6)
    w_bound: float = 0.6
    seed: int = 1
    device_params: dict = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Preset":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


PRESETS: dict[str, Preset] = {
    "smoke": Preset(name="smoke", epochs=1, train_subset=300, test_subset=200, hidden=(32, 16),
                    up_downs=(0.6,), main_states=200, states=(200,), modes=("none", "symmetry_point")),
    "paper": Preset(name="paper", epochs=5, train_subset=10_000, test_subset=0,
                    up_downs=(-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8), main_states=600,
                    states=(200, 600, 1200), states_up_down=0.6),
}


def choose_dataset(data_dir: str | None = None) -> str:
    """MNIST (the paper's dataset) when a full copy is found, else Fashion-MNIST."""
    from xbarsim.experiments.data.datasets import find_dataset
    return "mnist" if find_dataset("mnist", data_dir).found else "fashion-mnist"


# --------------------------------------------------------------------------- points
@dataclass(frozen=True)
class Point:
    """One training run: its group name, run_train params and labels."""

    key: str
    params: dict
    seed: int
    mode: str            # "fp" or a reference mode
    up_down: float
    states: int          # 0 for fp

    def cost(self) -> float:
        """Rough relative cost, to submit the longest runs first."""
        c = float(self.params["epochs"])
        if self.mode == "symmetry_point":
            c += 2.0 * self.states / 200.0
        return c


def point_key(mode: str, up_down: float, states: int) -> str:
    return "fp" if mode == "fp" else f"{mode}_ud{up_down:+.2f}_n{int(states)}"


def build_points(preset: Preset, dataset: str, data_dir: str | None = None) -> list[Point]:
    """Every run of the preset: asymmetry sweep, states sweep, float baseline (no duplicates)."""
    base = dict(device="SoftBounds", epochs=preset.epochs, batch_size=preset.batch_size, lr=preset.lr,
                lr_schedule=preset.lr_schedule, hidden=list(preset.hidden), dataset=dataset,
                data_dir=data_dir, train_subset=preset.train_subset, test_subset=preset.test_subset)
    points: dict[str, Point] = {}

    def add(mode: str, up_down: float, states: int) -> None:
        key = point_key(mode, up_down, states)
        if key in points:
            return
        if mode == "fp":
            params = dict(base, fp=True)
        else:
            dev = dict(preset.device_params, up_down=float(up_down), dw_min=2 * preset.w_bound / states,
                       w_max=preset.w_bound, w_min=-preset.w_bound)
            params = dict(base, device_params=dev, reference=mode, reference_placement="per_weight",
                          reference_ideal=False, return_weights=True)
        points[key] = Point(key, params, preset.seed, mode, float(up_down), int(states) if mode != "fp" else 0)

    add("fp", 0.0, 0)
    for mode in preset.modes:
        for ud in preset.up_downs:
            add(mode, ud, preset.main_states)
        for s in preset.states:
            add(mode, preset.states_up_down, s)
    return list(points.values())


# --------------------------------------------------------------------------- workers
def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _run_point(point: Point) -> dict:
    """Run one training point (in a worker); return curves, histograms and timings."""
    started, t0 = _utc_now(), time.perf_counter()
    out: dict[str, Any] = {"key": point.key, "started": started}
    try:
        from xbarsim.experiments.train import run_train
        res = run_train(dict(point.params), point.seed)
        weights = res.pop("weights", None) or {}
        out["curves"] = {k: np.asarray(res[k], dtype=np.float64) for k in ("test_acc", "train_loss",
                                                                            "epoch_seconds", "lr") if k in res}
        out["final_test_acc"] = float(res["final_test_acc"])
        out["data_source"] = str(res.get("data_source", ""))
        hist, stats = {}, {}
        for name, w in weights.items():
            w = np.asarray(w, dtype=np.float64)
            hist[name] = (np.histogram(np.clip(w.ravel(), WEIGHT_HIST_EDGES[0], WEIGHT_HIST_EDGES[-1]),
                                       bins=WEIGHT_HIST_EDGES)[0], list(w.shape))
            stats[name] = {"mean": float(w.mean()), "std": float(w.std()), "median": float(np.median(w)),
                           "shape": list(w.shape)}
        out["weight_hist"] = hist
        out["weight_stats"] = stats
        out["pulses"] = res.get("pulses", {})
        out["status"] = "complete"
    except Exception:  # recorded as a failed point; resume reruns it
        out["status"] = "failed"
        out["traceback"] = traceback.format_exc()
    out["finished"] = _utc_now()
    out["wall_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------- the HDF5 file
@contextlib.contextmanager
def _open(path: Path, mode: str = "a"):
    with h5py.File(path, mode) as f:
        yield f
        f.flush()


def _stored_status(path: Path, group: str, config_json: str | None) -> str | None:
    """``complete`` if the group exists, is complete and (if given) has this config; else None."""
    if not path.exists():
        return None
    with h5py.File(path, "r") as f:
        if group not in f:
            return None
        g = f[group]
        if g.attrs.get("status") != "complete":
            return None
        if config_json is not None and g.attrs.get("config") != config_json:
            return None
        return "complete"


def _write_point(path: Path, point: Point, result: dict, version: str) -> None:
    with _open(path) as f:
        name = f"runs/{point.key}"
        if name in f:
            del f[name]
        g = f.require_group("runs").create_group(point.key)
        g.attrs["config"] = _config_json(point)
        g.attrs["seed"] = point.seed
        g.attrs["mode"] = point.mode
        g.attrs["up_down"] = point.up_down
        g.attrs["states"] = point.states
        g.attrs["xbarsim_version"] = version
        g.attrs["started"] = result["started"]
        g.attrs["finished"] = result["finished"]
        g.attrs["wall_s"] = float(result["wall_s"])
        if result["status"] == "complete":
            for k, v in result["curves"].items():
                g.create_dataset(k, data=v)
            g.attrs["final_test_acc"] = result["final_test_acc"]
            g.attrs["data_source"] = result["data_source"]
            g.attrs["weight_stats"] = json.dumps(result["weight_stats"], sort_keys=True)
            g.attrs["pulses"] = json.dumps(result["pulses"], sort_keys=True)
            if result["weight_hist"]:
                g.create_dataset("weight_hist_edges", data=WEIGHT_HIST_EDGES)
                h = g.create_group("weight_hist")
                for layer, (counts, shape) in result["weight_hist"].items():
                    d = h.create_dataset(layer, data=np.asarray(counts, dtype=np.int64))
                    d.attrs["shape"] = shape
        else:
            g.attrs["traceback"] = result.get("traceback", "")
        g.attrs["status"] = result["status"]  # last


def _config_json(point: Point) -> str:
    return json.dumps({"params": point.params, "seed": point.seed}, sort_keys=True)


def _trace_device(preset: Preset, up_down: float):
    from xbarsim.devices import SoftBounds
    states = preset.main_states
    return SoftBounds(**{**preset.device_params, "up_down": float(up_down), "dw_min": 2 * preset.w_bound / states,
                         "w_max": preset.w_bound, "w_min": -preset.w_bound})


def _device_trace(preset: Preset, up_down: float) -> dict:
    """One cell: pulse response (up from b_min, then down) and alternating pairs from b_max."""
    from xbarsim.crossbar import CrossbarArray, IOConfig
    from xbarsim.devices import symmetry_point
    from xbarsim.devices.kernels import C_B_MAX, C_B_MIN
    from xbarsim.devices.symmetry import convergence_pairs
    device = _trace_device(preset, up_down)
    arr = CrossbarArray(1, 1, device=device, io=IOConfig(perfect=True), seed=preset.seed)
    cell = arr.cell_params
    b_max, b_min = float(cell[0, 0, C_B_MAX]), float(cell[0, 0, C_B_MIN])
    n_up = n_down = int(math.ceil(1.25 * preset.main_states))
    up, down = np.ones((1, 1), bool), np.zeros((1, 1), bool)
    arr.set_weights(np.array([[b_min]]))
    response = [b_min]
    for k in range(n_up + n_down):
        arr.apply_pulses(up if k < n_up else down)
        response.append(float(arr.get_conductances()[0, 0]))
    n_pairs = convergence_pairs(cell) + 500
    arr.set_weights(np.array([[b_max]]))
    alternating = [b_max]
    for _ in range(n_pairs):
        arr.apply_pulses(up)
        alternating.append(float(arr.get_conductances()[0, 0]))
        arr.apply_pulses(down)
        alternating.append(float(arr.get_conductances()[0, 0]))
    alternating = np.asarray(alternating)
    return {"pulse_response": np.asarray(response), "alternating": alternating, "up_down": float(up_down),
            "dw_min": device.dw_min, "states": preset.main_states,
            "w_star": float(symmetry_point(device, cell)[0, 0]), "w_star_nominal": float(symmetry_point(device)),
            "measured_w_star": float(alternating[-1000:].mean()), "n_up": n_up, "n_down": n_down,
            "n_pairs": n_pairs, "device": device.to_json(), "b_max": b_max, "b_min": b_min}


def _write_device(path: Path, key: str, trace: dict) -> None:
    with _open(path) as f:
        name = f"device/{key}"
        if name in f:
            del f[name]
        g = f.require_group("device").create_group(key)
        for k in ("pulse_response", "alternating"):
            g.create_dataset(k, data=trace[k].astype(np.float32))
        for k, v in trace.items():
            if k not in ("pulse_response", "alternating"):
                g.attrs[k] = v
        g.attrs["status"] = "complete"  # last


# --------------------------------------------------------------------------- the run
@contextlib.contextmanager
def _thread_env(threads: int):
    """Environment inherited by spawned workers: one BLAS/OpenMP/numba pool of ``threads`` each."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.setdefault(n, str(threads))
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def run_experiment(preset: str | Preset = "paper", out: str | os.PathLike = "zero_shifting.h5",
                   figures_dir: str | os.PathLike | None = None, resume: bool = False, workers: int | None = None,
                   data_dir: str | None = None, epochs: int | None = None, progress: bool = True) -> dict:
    """Run (or resume) the experiment into ``out``, then draw the figures and ``summary.json``.

    Returns the summary dict.  Raises ``FileExistsError`` if ``out`` exists and
    ``resume`` is False, and ``ValueError`` if ``out`` belongs to another experiment.
    """
    t_start = time.perf_counter()
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"zero-shifting preset {preset!r} is unknown; choose one of {sorted(PRESETS)}")
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
        p = p.replace(epochs=epochs)
    workers = os.cpu_count() or 1 if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out)
    figures_dir = out.parent if figures_dir is None else Path(figures_dir)
    if out.exists() and not resume:
        raise FileExistsError(f"{out} exists; pass --resume to continue it, or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset = choose_dataset(data_dir)
    version = xbarsim_version()
    with _open(out) as f:
        fmt = f.attrs.get("format")
        if fmt is not None and fmt != FORMAT:
            raise ValueError(f"{out} is not a zero-shifting results file (format {fmt!r})")
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["experiment"] = EXPERIMENT
        f.attrs["preset"] = json.dumps(p.to_dict(), sort_keys=True)
        f.attrs["dataset"] = dataset
        f.attrs.setdefault("created", _utc_now())
        f.attrs["xbarsim_version"] = version
        f.attrs["status"] = "running"

    # figure (a): device traces, cheap, in this process
    for ud in p.trace_up_downs:
        key = f"ud{ud:+.2f}"
        if _stored_status(out, f"device/{key}", None) != "complete":
            _write_device(out, key, _device_trace(p, ud))

    points = build_points(p, dataset, data_dir)
    todo = [pt for pt in points if _stored_status(out, f"runs/{pt.key}", _config_json(pt)) != "complete"]
    todo.sort(key=lambda pt: -pt.cost())
    log.info("zero-shifting %s: %d points, %d to run (%d complete), %d workers, dataset %s",
             p.name, len(points), len(todo), len(points) - len(todo), workers, dataset)
    failed = 0
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(todo), desc=f"zero-shifting {p.name}", unit="run")
    try:
        if workers == 1 or len(todo) <= 1:
            for pt in todo:
                res = _run_point(pt)
                failed += _record(out, pt, res, version, bar)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            with _thread_env(threads), ProcessPoolExecutor(
                    max_workers=min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                    initializer=cap_numba_threads, initargs=(threads,)) as pool:
                futures = {pool.submit(_run_point, pt): pt for pt in todo}
                for fut in as_completed(futures):
                    failed += _record(out, futures[fut], fut.result(), version, bar)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t_start
    with _open(out) as f:
        f.attrs["wall_s"] = wall
        f.attrs["status"] = "complete" if failed == 0 else "incomplete"
    summary = write_summary(out, Path(figures_dir) / "summary.json")
    draw_figures(out, figures_dir)
    if failed:
        log.error("%d of %d points failed; their tracebacks are in %s (rerun with --resume)", failed, len(todo), out)
    return summary


def _record(out: Path, pt: Point, res: dict, version: str, bar) -> int:
    _write_point(out, pt, res, version)
    if bar is not None:
        bar.update(1)
        if res["status"] == "complete":
            bar.set_postfix_str(f"{pt.key}: {res['final_test_acc']:.3f}")
    if res["status"] != "complete":
        log.error("point %s failed:\n%s", pt.key, res.get("traceback", ""))
        return 1
    log.info("%s: test acc %.4f (%.0f s)", pt.key, res["final_test_acc"], res["wall_s"])
    return 0


# --------------------------------------------------------------------------- reading back
def read_results(path: str | os.PathLike) -> dict:
    """Everything the figures and the summary need, from the HDF5 file only."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `xbarsim repro zero-shifting --out {path}` first")
    runs, devices = {}, {}
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not a zero-shifting results file (format {f.attrs.get('format')!r})")
        meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        for key, g in f.get("runs", {}).items():
            if g.attrs.get("status") != "complete":
                continue
            r = {k: g.attrs[k] for k in ("mode", "up_down", "states", "final_test_acc", "wall_s", "seed")}
            r["data_source"] = g.attrs.get("data_source", "")
            r["config"] = json.loads(g.attrs["config"])
            for k in ("test_acc", "train_loss", "epoch_seconds", "lr"):
                if k in g:
                    r[k] = g[k][()]
            r["weight_stats"] = json.loads(g.attrs.get("weight_stats", "{}"))
            if "weight_hist" in g:
                r["weight_hist_edges"] = g["weight_hist_edges"][()]
                r["weight_hist"] = {layer: (d[()], list(d.attrs["shape"])) for layer, d in g["weight_hist"].items()}
            runs[key] = r
        for key, g in f.get("device", {}).items():
            if g.attrs.get("status") != "complete":
                continue
            d = {k: g.attrs[k] for k in g.attrs}
            d["pulse_response"] = g["pulse_response"][()]
            d["alternating"] = g["alternating"][()]
            devices[key] = d
    meta["preset"] = json.loads(meta["preset"])
    return {"meta": meta, "runs": runs, "devices": devices}


def _acc(runs: dict, mode: str, up_down: float, states: int) -> float | None:
    r = runs.get(point_key(mode, up_down, states))
    return None if r is None else float(r["final_test_acc"])


def _must_show(runs: dict, preset: dict) -> dict:
    """The issue's criteria at up_down = ±0.6 (main number of states)."""
    n = int(preset["main_states"])
    sym = _acc(runs, "none", 0.0, n)
    out: dict[str, Any] = {"states": n, "symmetric_none_acc": sym,
                           "symmetric_zero_shift_acc": _acc(runs, "symmetry_point", 0.0, n),
                           "criteria": "zero-shifting within 3 points of the symmetric device (none, up_down=0) "
                                       "and at least 15 points above none, same epochs"}
    for ud in (-0.6, 0.6):
        sp, none = _acc(runs, "symmetry_point", ud, n), _acc(runs, "none", ud, n)
        entry: dict[str, Any] = {"symmetry_point_acc": sp, "none_acc": none, "zero_acc": _acc(runs, "zero", ud, n)}
        if sp is not None and sym is not None:
            entry["gap_to_symmetric_points"] = round(100 * (sp - sym), 2)
            entry["within_3_points_of_symmetric"] = bool(abs(sp - sym) <= 0.03)
        if sp is not None and none is not None:
            entry["gain_over_none_points"] = round(100 * (sp - none), 2)
            entry["at_least_15_points_above_none"] = bool(sp - none >= 0.15)
        out[f"up_down={ud:+.1f}"] = entry
    return out


def write_summary(h5_path: str | os.PathLike, summary_path: str | os.PathLike) -> dict:
    """``summary.json`` from the HDF5 file: accuracy table mode x states x up_down, baseline, checks."""
    res = read_results(h5_path)
    runs, meta = res["runs"], res["meta"]
    table: dict[str, dict[str, dict[str, float]]] = {}
    rows = []
    for key, r in sorted(runs.items()):
        if r["mode"] == "fp":
            continue
        table.setdefault(r["mode"], {}).setdefault(str(int(r["states"])), {})[f"{float(r['up_down']):+.1f}"] = \
            round(float(r["final_test_acc"]), 4)
        rows.append({"key": key, "mode": r["mode"], "up_down": float(r["up_down"]), "states": int(r["states"]),
                     "final_test_acc": float(r["final_test_acc"]),
                     "test_acc_per_epoch": [round(float(a), 4) for a in r.get("test_acc", [])],
                     "wall_s": round(float(r["wall_s"]), 1)})
    fp = runs.get("fp")
    preset = meta["preset"]
    summary = {
        "experiment": EXPERIMENT,
        "preset": preset["name"],
        "dataset": meta.get("dataset"),
        "data_source": next((str(r.get("data_source", "")) for r in runs.values()), None),
        "epochs": preset["epochs"],
        "train_subset": preset["train_subset"],
        "test_subset": preset["test_subset"],
        "batch_size": preset["batch_size"],
        "lr": preset["lr"],
        "lr_schedule": preset["lr_schedule"],
        "hidden": preset["hidden"],
        "seed": preset["seed"],
        "fp_test_acc": None if fp is None else round(float(fp["final_test_acc"]), 4),
        "accuracy": table,
        "accuracy_table_keys": "accuracy[mode][states][up_down] = final test accuracy",
        "must_show": _must_show(runs, preset),
        "runs": rows,
        "points_complete": len(runs),
        "wall_seconds": round(float(meta.get("wall_s", float("nan"))), 1),
        "compute_seconds": round(sum(float(r["wall_s"]) for r in runs.values()), 1),
        "xbarsim_version": meta.get("xbarsim_version"),
        "status": meta.get("status"),
    }
    summary_path = Path(summary_path)
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return summary


# --------------------------------------------------------------------------- figures
_MODE_STYLE = {"none": dict(color="tab:red", marker="o", label="none (W = G)"),
               "zero": dict(color="tab:orange", marker="s", label="reference at 0"),
               "symmetry_point": dict(color="tab:blue", marker="^", label="zero-shifting (ref = w*)")}


def _save(fig, figures_dir: Path, name: str) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = figures_dir / f"{name}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    return paths


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """Figures (a)-(d) as PNG and PDF, from the HDF5 file only (never simulates)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = read_results(h5_path)
    runs, devices, meta = res["runs"], res["devices"], res["meta"]
    preset = meta["preset"]
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    title = f"{meta.get('dataset', '?')}, {preset['epochs']} epoch(s), preset {preset['name']}"
    paths: list[Path] = []
    fp = runs.get("fp")
    main_n = int(preset["main_states"])

    # (a) device
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (key, d) in enumerate(sorted(devices.items(), key=lambda kv: kv[1]["up_down"])):
        c = f"C{i}"
        ax1.plot(np.arange(d["pulse_response"].size), d["pulse_response"], color=c, lw=1,
                 label=f"up_down = {d['up_down']:+.1f}")
        ax1.axvline(d["n_up"], color="0.7", lw=0.8, ls=":")
        x = np.arange(d["alternating"].size) / 2.0
        ax2.plot(x, d["alternating"], color=c, lw=0.6,
                 label=f"up_down = {d['up_down']:+.1f}: measured {d['measured_w_star']:+.3f}")
        ax2.axhline(d["w_star"], color=c, ls="--", lw=1.2, label=f"closed-form w* = {d['w_star']:+.3f}")
    ax1.set(xlabel="pulse number (up, then down)", ylabel="weight w (G, weight units)",
            title=f"(a) pulse response of one cell ({main_n} states)")
    ax2.set(xlabel="alternating up/down pulse pairs", ylabel="weight w",
            title="convergence to the symmetry point")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    paths += _save(fig, figures_dir, FIGURES[0])
    plt.close(fig)

    # (b) accuracy vs asymmetry
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode in MODES:
        pts = sorted((float(r["up_down"]), float(r["final_test_acc"])) for r in runs.values()
                     if r["mode"] == mode and int(r["states"]) == main_n)
        if pts:
            ax.plot(*zip(*pts), **_MODE_STYLE[mode])
    if fp is not None:
        ax.axhline(float(fp["final_test_acc"]), color="k", ls="--", lw=1, label="floating point")
    ax.set(xlabel="asymmetry up_down", ylabel="test accuracy", ylim=(0, 1),
           title=f"(b) accuracy vs asymmetry ({main_n} states)\n{title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    paths += _save(fig, figures_dir, FIGURES[1])
    plt.close(fig)

    # (c) weight histograms: none vs symmetry_point at the histogram asymmetry
    ud = float(preset["histogram_up_down"])
    chosen = [(m, runs.get(point_key(m, ud, main_n))) for m in ("none", "symmetry_point")]
    chosen = [(m, r) for m, r in chosen if r is not None and "weight_hist" in r]
    layers = sorted({layer for _, r in chosen for layer in r["weight_hist"]}, key=lambda s: (len(s), s))
    fig, axes = plt.subplots(1, max(1, len(layers)), figsize=(4.2 * max(1, len(layers)), 3.8), squeeze=False)
    dev = devices.get(f"ud{ud:+.2f}")
    w_star_nominal = None if dev is None else float(dev["w_star_nominal"])
    for k, (ax, layer) in enumerate(zip(axes[0], layers)):
        shape = None
        for mode, r in chosen:
            if layer not in r["weight_hist"]:
                continue
            counts, shape = r["weight_hist"][layer]
            edges = r["weight_hist_edges"]
            frac = counts / max(counts.sum(), 1)
            ax.stairs(frac, edges, color=_MODE_STYLE[mode]["color"], label=_MODE_STYLE[mode]["label"],
                      fill=True, alpha=0.35)
        if w_star_nominal is not None:
            ax.axvline(w_star_nominal, color="k", ls="--", lw=1, label=f"nominal w* = {w_star_nominal:+.3f}")
        ax.axvline(0.0, color="0.5", ls=":", lw=1)
        ax.set(xlabel="effective weight W = G - G_ref", ylabel="fraction of weights", xlim=(-0.8, 0.8),
               title=f"layer {k + 1}: {shape[1]} -> {shape[0]}" if shape else f"layer {k + 1}")
        ax.legend(fontsize=7)
    fig.suptitle(f"(c) weights after training, up_down = {ud:+.1f}, {main_n} states; {title}", fontsize=10)
    fig.tight_layout()
    paths += _save(fig, figures_dir, FIGURES[2])
    plt.close(fig)

    # (d) accuracy vs number of states
    ud = float(preset["states_up_down"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode in MODES:
        pts = sorted((int(r["states"]), float(r["final_test_acc"])) for r in runs.values()
                     if r["mode"] == mode and abs(float(r["up_down"]) - ud) < 1e-9)
        if pts:
            ax.plot(*zip(*pts), **_MODE_STYLE[mode])
    sym = runs.get(point_key("none", 0.0, main_n))
    if sym is not None:
        ax.plot([main_n], [float(sym["final_test_acc"])], "k*", ms=10, label=f"symmetric device ({main_n} states)")
    if fp is not None:
        ax.axhline(float(fp["final_test_acc"]), color="k", ls="--", lw=1, label="floating point")
    ax.set(xscale="log", xlabel="number of states (w_max - w_min)/dw_min", ylabel="test accuracy", ylim=(0, 1),
           title=f"(d) accuracy vs number of states, up_down = {ud:+.1f}\n{title}")
    ticks = sorted({int(r["states"]) for r in runs.values() if r["mode"] != "fp"})
    if ticks:
        from matplotlib.ticker import NullFormatter
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths += _save(fig, figures_dir, FIGURES[3])
    plt.close(fig)
    return paths
