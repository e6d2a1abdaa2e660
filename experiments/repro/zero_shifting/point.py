"""One zero-shifting point: an in-situ training run, or one cell's pulse traces.

Training goes through :func:`xbarsim.experiments.train.run_train` (a 784-H1-H2-10
sigmoid MLP on :class:`~xbarsim.devices.SoftBounds` arrays, the reference measured and
written with pulses, ``reference_ideal=False``); the point stores the curves and, per
analog layer, a histogram of the final effective weights over ``WEIGHT_HIST_EDGES``.
A device point pulses one cell up from ``b_min`` and down again, then alternates up/down
pairs from ``b_max`` and compares the level it settles at with the closed-form ``w*``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from xbarsim.experiments.repro.zero_shifting.spec import PARAMS
from xbarsim.experiments.sweeps.tasks import Task

__all__ = ["TASK", "run_point", "WEIGHT_HIST_EDGES"]


WEIGHT_HIST_EDGES = np.linspace(-1.5, 1.5, 301)  # 0.01 wide; every SoftBounds weight fits


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


TASK = Task("zero-shifting", run_point, PARAMS)
