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
A sweep (:mod:`xbarsim.experiments.repro.base`): one HDF5 file in the sweep
store's layout, one group per point under ``/points/<key>``, its ``config``
attribute holding the point's params (``kind``, ``mode``, ``up_down``,
``states``, the training schedule) and its ``status`` written last.

* ``kind = "train"`` points: ``final_test_acc``; per-epoch ``test_acc``,
  ``train_loss``, ``epoch_seconds``, ``lr``; per analog layer ``L`` (0, 1, 2) the
  final effective-weight histogram ``weight_hist_L`` over ``weight_hist_edges``,
  ``weight_shape_L``, ``weight_mean_L``, ``weight_std_L``; ``data_source``.
  Mode ``fp`` is the floating-point baseline.
* ``kind = "device"`` points: one cell's ``pulse_response`` (``n_up`` up pulses from
  ``b_min``, then ``n_down`` down) and ``alternating`` (up/down pairs from ``b_max``),
  with ``w_star`` (the cell's closed form), ``w_star_nominal`` and ``measured_w_star``.

Every point runs with the preset's seed (``seeds = [seed]``), as before the
sweep engine: the same initial weights, d2d draws and data order everywhere.
``--resume`` skips complete points; a killed run loses only the running points.

Figures (PNG and PDF, drawn from the HDF5 file only):
``fig_a_device``, ``fig_b_accuracy_vs_asymmetry``, ``fig_c_weight_histograms``,
``fig_d_accuracy_vs_states``; and ``summary.json`` (accuracy table, baseline,
claims, wall time).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from xbarsim.experiments.repro.base import save_figure
from xbarsim.experiments.sweeps.store import read_points
from xbarsim.experiments.sweeps.tasks import Param, ParamSchema, Task

MODES = ("none", "zero", "symmetry_point")
WEIGHT_HIST_EDGES = np.linspace(-1.5, 1.5, 301)  # 0.01 wide; every SoftBounds weight fits
FIGURES = ("fig_a_device", "fig_b_accuracy_vs_asymmetry", "fig_c_weight_histograms", "fig_d_accuracy_vs_states")

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "read_results",
           "choose_dataset", "point_label"]


# --------------------------------------------------------------------------- presets
PRESETS: dict[str, dict] = {
    "smoke": dict(epochs=1, train_subset=300, test_subset=200, batch_size=10, lr=0.1, lr_schedule="constant",
                  hidden=[32, 16], up_downs=[0.6], main_states=200, states=[200], states_up_down=0.6,
                  modes=["none", "symmetry_point"], histogram_up_down=0.6, trace_up_downs=[0.0, 0.6],
                  w_bound=0.6, seed=1, data_dir=None),
    "paper": dict(epochs=5, train_subset=10_000, test_subset=0, batch_size=10, lr=0.1, lr_schedule="constant",
                  hidden=[256, 128], up_downs=[-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8],
                  main_states=600, states=[200, 600, 1200], states_up_down=0.6, modes=list(MODES),
                  histogram_up_down=0.6, trace_up_downs=[0.0, 0.6], w_bound=0.6, seed=1, data_dir=None),
}


def choose_dataset(data_dir: str | None = None) -> str:
    """MNIST (the paper's dataset) when a full copy is found, else Fashion-MNIST."""
    from xbarsim.experiments.data.datasets import find_dataset
    return "mnist" if find_dataset("mnist", data_dir).found else "fashion-mnist"


def point_label(kind: str, mode: str, up_down: float, states: int) -> str:
    """Readable name of a point (``symmetry_point_ud+0.60_n600``, ``fp``, ``device_ud+0.60``)."""
    if kind == "device":
        return f"device_ud{up_down:+.2f}"
    return "fp" if mode == "fp" else f"{mode}_ud{up_down:+.2f}_n{int(states)}"


def build_spec(options: dict, output: Path) -> dict:
    """Float baseline, device traces, asymmetry sweep and states sweep, as one zipped list of points."""
    o = options
    points: dict[str, tuple] = {}

    def add(kind: str, mode: str, up_down: float, states: int) -> None:
        points.setdefault(point_label(kind, mode, up_down, states), (kind, mode, float(up_down), int(states)))

    # the longest runs first, so the pool's last minutes are not spent on one long point
    for states in sorted(set(o["states"]) | {o["main_states"]}, reverse=True):
        for mode in sorted(o["modes"], key=lambda m: m != "symmetry_point"):
            if states == o["main_states"]:
                for ud in o["up_downs"]:
                    add("train", mode, ud, states)
            if states in o["states"]:
                add("train", mode, o["states_up_down"], states)
    add("train", "fp", 0.0, 0)
    for ud in o["trace_up_downs"]:
        add("device", "none", ud, o["main_states"])
    cols = list(zip(*points.values()))
    return {
        "task": "xbarsim.experiments.repro.zero_shifting:TASK",
        "seeds": [int(o["seed"])],
        "output": str(output),
        "base": {"epochs": o["epochs"], "train_subset": o["train_subset"], "test_subset": o["test_subset"],
                 "batch_size": o["batch_size"], "lr": o["lr"], "lr_schedule": o["lr_schedule"],
                 "hidden": ",".join(str(h) for h in o["hidden"]), "w_bound": o["w_bound"],
                 "dataset": choose_dataset(o["data_dir"]), "data_dir": o["data_dir"] or "",
                 "histogram_up_down": o["histogram_up_down"], "states_up_down": o["states_up_down"],
                 "main_states": o["main_states"]},
        "zip": [{"kind": list(cols[0]), "mode": list(cols[1]), "up_down": list(cols[2]), "states": list(cols[3])}],
    }


# --------------------------------------------------------------------------- one point
def _soft_bounds(params: dict, states: int):
    from xbarsim.devices import SoftBounds
    b = params["w_bound"]
    return SoftBounds(up_down=params["up_down"], dw_min=2 * b / states, w_max=b, w_min=-b)


def _train_point(params: dict, seed: int) -> dict:
    from xbarsim.experiments.train import run_train
    base = dict(device="SoftBounds", epochs=params["epochs"], batch_size=params["batch_size"], lr=params["lr"],
                lr_schedule=params["lr_schedule"], hidden=[int(h) for h in params["hidden"].split(",")],
                dataset=params["dataset"], data_dir=params["data_dir"] or None,
                train_subset=params["train_subset"], test_subset=params["test_subset"])
    if params["mode"] == "fp":
        run = dict(base, fp=True)
    else:
        dev = _soft_bounds(params, params["states"])
        run = dict(base, device_params=dict(up_down=dev.up_down, dw_min=dev.dw_min, w_max=dev.w_max,
                                            w_min=dev.w_min),
                   reference=params["mode"], reference_placement="per_weight", reference_ideal=False,
                   return_weights=True)
    res = run_train(run, seed)
    out: dict[str, Any] = {k: np.asarray(res[k], dtype=np.float64)
                           for k in ("test_acc", "train_loss", "epoch_seconds", "lr") if k in res}
    out["final_test_acc"] = float(res["final_test_acc"])
    out["data_source"] = str(res.get("data_source", ""))
    for k, (_, w) in enumerate((res.get("weights") or {}).items()):
        w = np.asarray(w, dtype=np.float64)
        out[f"weight_hist_{k}"] = np.histogram(np.clip(w.ravel(), WEIGHT_HIST_EDGES[0], WEIGHT_HIST_EDGES[-1]),
                                               bins=WEIGHT_HIST_EDGES)[0]
        out[f"weight_shape_{k}"] = np.asarray(w.shape)
        out[f"weight_mean_{k}"] = float(w.mean())
        out[f"weight_std_{k}"] = float(w.std())
    if "weights" in res:
        out["weight_hist_edges"] = WEIGHT_HIST_EDGES
    return out


def _device_point(params: dict, seed: int) -> dict:
    """One cell: pulse response (up from b_min, then down) and alternating pairs from b_max."""
    from xbarsim.crossbar import CrossbarArray, IOConfig
    from xbarsim.devices import symmetry_point
    from xbarsim.devices.kernels import C_B_MAX, C_B_MIN
    from xbarsim.devices.symmetry import convergence_pairs
    states = params["states"]
    device = _soft_bounds(params, states)
    arr = CrossbarArray(1, 1, device=device, io=IOConfig(perfect=True), seed=seed)
    cell = arr.cell_params
    b_max, b_min = float(cell[0, 0, C_B_MAX]), float(cell[0, 0, C_B_MIN])
    n_up = n_down = int(math.ceil(1.25 * states))
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
    return {"pulse_response": np.asarray(response, dtype=np.float32),
            "alternating": alternating.astype(np.float32), "dw_min": device.dw_min, "n_up": n_up,
            "n_down": n_down, "n_pairs": n_pairs, "b_max": b_max, "b_min": b_min,
            "w_star": float(symmetry_point(device, cell)[0, 0]), "w_star_nominal": float(symmetry_point(device)),
            "measured_w_star": float(alternating[-1000:].mean())}


def run_point(params: dict, seed: int) -> dict:
    """One point: an in-situ training run (``kind = "train"``) or a device trace (``"device"``)."""
    return (_device_point if params["kind"] == "device" else _train_point)(params, seed)


TASK = Task("zero-shifting", run_point, ParamSchema({
    "kind": Param(str, choices=("train", "device"), required=True, doc="training run or device trace"),
    "mode": Param(str, choices=("fp",) + MODES, required=True, doc="reference mode (fp: float baseline)"),
    "up_down": Param(float, -1.0, 1.0, low_open=True, high_open=True, required=True, doc="asymmetry"),
    "states": Param(int, 0, 100_000, required=True, doc="(w_max - w_min)/dw_min; 0 for fp"),
    "epochs": Param(int, 1, 10_000, required=True),
    "train_subset": Param(int, 0, None, default=0, doc="0: the whole training set"),
    "test_subset": Param(int, 0, None, default=0, doc="0: the whole test set"),
    "batch_size": Param(int, 1, 100_000, default=10),
    "lr": Param(float, 0.0, None, low_open=True, default=0.1),
    "lr_schedule": Param(str, default="constant"),
    "hidden": Param(str, default="256,128", doc="hidden widths, comma-separated"),
    "w_bound": Param(float, 0.0, None, low_open=True, default=0.6, doc="w_max = -w_min"),
    "dataset": Param(str, choices=("mnist", "fashion-mnist"), default="fashion-mnist"),
    "data_dir": Param(str, default="", doc="dataset folder; empty: the default search"),
    "histogram_up_down": Param(float, default=0.6, doc="figure (c)'s asymmetry"),
    "states_up_down": Param(float, default=0.6, doc="figure (d)'s asymmetry"),
    "main_states": Param(int, 1, None, default=600, doc="states of the asymmetry sweep"),
}))


# --------------------------------------------------------------------------- reading back
def read_results(path: str | os.PathLike) -> dict:
    """Everything the figures and the summary need, from the HDF5 file only.

    ``runs[label]`` for training points (``mode``, ``up_down``, ``states``,
    ``final_test_acc``, curves, weight histograms) and ``devices["ud+0.60"]`` for
    device traces; ``meta`` holds the schedule (the base params).
    """
    runs, devices, meta = {}, {}, {}
    for rec in read_points(path):
        if rec.status != "complete":
            continue
        p, m = rec.params, rec.metrics
        meta = {k: p[k] for k in ("epochs", "train_subset", "test_subset", "batch_size", "lr", "lr_schedule",
                                  "hidden", "dataset", "histogram_up_down", "states_up_down", "main_states")}
        meta["seed"] = rec.seed
        if p["kind"] == "device":
            devices[f"ud{p['up_down']:+.2f}"] = dict(m, up_down=p["up_down"], states=p["states"])
            continue
        r = dict(m, mode=p["mode"], up_down=p["up_down"], states=p["states"], wall_s=rec.wall_s, seed=rec.seed)
        layers = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("weight_hist_") and k[-1].isdigit())
        if layers:
            r["weight_hist"] = {f"layer{k}": (m[f"weight_hist_{k}"], list(m[f"weight_shape_{k}"])) for k in layers}
        runs[point_label("train", p["mode"], p["up_down"], p["states"])] = r
    return {"meta": meta, "runs": runs, "devices": devices}


def _acc(runs: dict, mode: str, up_down: float, states: int) -> float | None:
    r = runs.get(point_label("train", mode, up_down, states))
    return None if r is None else float(r["final_test_acc"])


def _claims(runs: dict, n: int) -> list[dict]:
    """The paper's trend at up_down = +0.6 (and -0.6), main number of states, same epochs."""
    claims = []
    sym = _acc(runs, "none", 0.0, n)
    for ud in (0.6, -0.6):
        sp, none = _acc(runs, "symmetry_point", ud, n), _acc(runs, "none", ud, n)
        if sp is not None and sym is not None:
            claims.append({"claim": f"zero-shifting at up_down={ud:+.1f} is within 3 points of the symmetric "
                                    f"device (no reference, up_down=0), {n} states: |gap| in points",
                           "value": round(100 * abs(sp - sym), 2), "op": "<=", "target": 3.0})
        if sp is not None and none is not None:
            claims.append({"claim": f"zero-shifting at up_down={ud:+.1f} gains at least 15 points over no "
                                    f"reference, {n} states (the paper's trend: asymmetry collapses training)",
                           "value": round(100 * (sp - none), 2), "op": ">=", "target": 15.0})
    return claims


def summarize(h5_path: str | os.PathLike) -> dict:
    """Accuracy table mode x states x up_down, the float baseline and the claims."""
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
    return {
        "dataset": meta.get("dataset"),
        "data_source": next((str(r.get("data_source", "")) for r in runs.values()), None),
        "schedule": meta,
        "fp_test_acc": None if fp is None else round(float(fp["final_test_acc"]), 4),
        "accuracy": table,
        "accuracy_table_keys": "accuracy[mode][states][up_down] = final test accuracy",
        "runs": rows,
        "claims": _claims(runs, int(meta.get("main_states", 0))) if meta else [],
    }


# --------------------------------------------------------------------------- figures
_MODE_STYLE = {"none": dict(color="tab:red", marker="o", label="none (W = G)"),
               "zero": dict(color="tab:orange", marker="s", label="reference at 0"),
               "symmetry_point": dict(color="tab:blue", marker="^", label="zero-shifting (ref = w*)")}


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """Figures (a)-(d) as PNG and PDF, from the HDF5 file only (never simulates)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = read_results(h5_path)
    runs, devices, meta = res["runs"], res["devices"], res["meta"]
    preset = meta
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    title = f"{meta.get('dataset', '?')}, {preset['epochs']} epoch(s), {preset['train_subset'] or 'all'} training samples"
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
    paths += save_figure(fig, figures_dir, FIGURES[0])
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
    paths += save_figure(fig, figures_dir, FIGURES[1])
    plt.close(fig)

    # (c) weight histograms: none vs symmetry_point at the histogram asymmetry
    ud = float(preset["histogram_up_down"])
    chosen = [(m, runs.get(point_label("train", m, ud, main_n))) for m in ("none", "symmetry_point")]
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
    paths += save_figure(fig, figures_dir, FIGURES[2])
    plt.close(fig)

    # (d) accuracy vs number of states
    ud = float(preset["states_up_down"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode in MODES:
        pts = sorted((int(r["states"]), float(r["final_test_acc"])) for r in runs.values()
                     if r["mode"] == mode and abs(float(r["up_down"]) - ud) < 1e-9)
        if pts:
            ax.plot(*zip(*pts), **_MODE_STYLE[mode])
    sym = runs.get(point_label("train", "none", 0.0, main_n))
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
    paths += save_figure(fig, figures_dir, FIGURES[3])
    plt.close(fig)
    return paths
