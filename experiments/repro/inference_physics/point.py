"""One inference-physics point: a drift curve, an IR-drop curve or a solver check."""
from __future__ import annotations

import statistics
import time

import numpy as np

from xbarsim.experiments.repro.inference_physics.networks import _accuracy, _network, _noise_model, _splits
from xbarsim.experiments.repro.inference_physics.spec import PARAMS
from xbarsim.experiments.sweeps.tasks import Task

__all__ = ["TASK", "run_point"]


def _drift_point(params: dict, seed: int) -> dict:
    from xbarsim.mapping.inference_physics import program
    d = _splits(params["data_dir"], params["train_subset"], params["val_subset"], params["test_subset"],
                params["seed_train"])
    net = _network(params, params["training"], d["train"])
    times = [float(t) for t in params["times"].split(",")]
    test = np.zeros((params["n_chips"], len(times)))
    val = np.zeros_like(test)
    for c in range(params["n_chips"]):
        dep = program(net, _noise_model(params["device"]), seed=seed * 1000 + c,
                      compensation=params["compensation"])
        for k, t in enumerate(times):
            model = dep.drift_to(t)
            test[c, k], val[c, k] = _accuracy(model, d["test"]), _accuracy(model, d["val"])
    return {"times": np.asarray(times), "test_acc": test.ravel(), "val_acc": val.ravel(),
            "n_chips": params["n_chips"], "digital_test_acc": _accuracy(net, d["test"]),
            "digital_val_acc": _accuracy(net, d["val"]), "data_source": str(d["source"])}


def _ir_point(params: dict, seed: int) -> dict:
    from xbarsim.mapping.inference_physics import IRDropConfig, program
    d = _splits(params["data_dir"], params["train_subset"], params["val_subset"], params["ir_test_subset"],
                params["seed_train"])
    net = _network(params, "plain", d["train"])
    r_wires = [float(r) for r in params["r_wires"].split(",")]
    quiet = _noise_model("pcm", quiet=True)
    ideal = program(net, quiet, seed=seed).drift_to(0.0)
    test, val, secs = [], [], []
    for r in r_wires:
        cfg = IRDropConfig(mode=params["method"], array_size=params["array_size"], r_wire=r)
        t0 = time.perf_counter()
        model = program(net, quiet, seed=seed, ir_drop=cfg).drift_to(0.0)
        test.append(_accuracy(model, d["test"], batch=250))
        val.append(_accuracy(model, d["val"], batch=250))
        secs.append(time.perf_counter() - t0)
    return {"r_wires": np.asarray(r_wires), "test_acc": np.asarray(test), "val_acc": np.asarray(val),
            "seconds": np.asarray(secs), "ideal_test_acc": _accuracy(ideal, d["test"]),
            "ideal_val_acc": _accuracy(ideal, d["val"])}


def _solver_point(params: dict, seed: int) -> dict:
    from xbarsim.crossbar import CrossbarArray, IOConfig
    from xbarsim.crossbar.ir_drop import ResistiveCrossbar, WireParasitics
    n, b = params["array_size"], params["solver_batch"]
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.01, 1.0, (n, n))
    v = rng.uniform(-1.0, 1.0, (b, n))
    par = WireParasitics(1e-4, 1e-3, 1e-3)
    t0 = time.perf_counter()
    xbar = ResistiveCrossbar(g, par)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    direct = xbar.direct_currents(v)
    t_direct = time.perf_counter() - t0
    solved = xbar.column_currents(v)
    arr = CrossbarArray(rows=n, cols=n, io=IOConfig(perfect=True), seed=seed)
    arr.set_weights(g.T.astype(np.float32))
    v32 = v.astype(np.float32)
    arr.forward(v32)
    t_read, t_solve = [], []
    for _ in range(params["solver_repeats"]):  # alternated, so host load hits both alike
        t0 = time.perf_counter()
        arr.forward(v32)
        t_read.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        xbar.column_currents(v)
        t_solve.append(time.perf_counter() - t0)
    read, solve = statistics.median(t_read), statistics.median(t_solve)
    return {"rel_error": float(np.abs(solved - direct).max() / np.abs(direct).max()),
            "ir_drop_rel": float(np.abs(direct - v @ g).max() / np.abs(v @ g).max()),
            "t_read": read, "t_solve": solve, "t_setup": setup, "t_direct": t_direct, "ratio": solve / read}


def run_point(params: dict, seed: int) -> dict:
    """One point: a drift curve (``kind = "drift"``), an IR-drop curve (``"ir"``) or a solver check (``"solver"``)."""
    return {"drift": _drift_point, "ir": _ir_point, "solver": _solver_point}[params["kind"]](params, seed)


TASK = Task("inference-physics", run_point, PARAMS)
