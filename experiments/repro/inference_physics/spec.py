"""Inference-physics presets, point parameters and the sweep spec.

A point is a drift curve (``kind = "drift"``: one device, training and compensation),
an IR-drop curve (``"ir"``: one array size and method over the wire resistances) or a
solver check (``"solver"``: one array size).  Read times and wire resistances travel
as comma-separated strings, since the sweep engine's parameters are scalars.
"""
from __future__ import annotations

from pathlib import Path

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema

__all__ = ["HOUR", "DAY", "YEAR", "DEVICES", "TRAININGS", "COMPENSATIONS", "METHODS", "PRESETS", "PARAMS",
           "build_spec"]

HOUR, DAY, YEAR = 3600.0, 86400.0, 365.25 * 86400.0
DEVICES = ("pcm", "rram")
TRAININGS = ("plain", "hwa")
COMPENSATIONS = ("none", "global")
METHODS = ("solve", "approx")

PRESETS: dict[str, dict] = {
    "smoke": dict(epochs=1, train_subset=600, val_subset=200, test_subset=200, hwa_noise=0.038,
                  times=[1.0, YEAR], n_chips=2, devices=list(DEVICES), trainings=list(TRAININGS),
                  compensations=list(COMPENSATIONS), array_sizes=[32, 64], r_wires=[1e-5, 1e-3],
                  ir_test_subset=200, solver_sizes=[16, 32], solver_batch=100, solver_repeats=3,
                  seed=1, data_dir=None),
    "paper": dict(epochs=8, train_subset=0, val_subset=2000, test_subset=0, hwa_noise=0.038,
                  times=[1.0, HOUR, DAY, 30 * DAY, YEAR], n_chips=8, devices=list(DEVICES),
                  trainings=list(TRAININGS), compensations=list(COMPENSATIONS),
                  array_sizes=[64, 128, 256, 512], r_wires=[1e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3],
                  ir_test_subset=2000, solver_sizes=[64, 128, 256], solver_batch=100, solver_repeats=20,
                  seed=1, data_dir=None),
}



PARAMS = ParamSchema({
    "kind": Param(str, choices=("drift", "ir", "solver"), required=True),
    "device": Param(str, choices=DEVICES + ("",), default=""),
    "training": Param(str, choices=TRAININGS + ("",), default=""),
    "compensation": Param(str, choices=COMPENSATIONS + ("",), default=""),
    "method": Param(str, choices=METHODS + ("",), default=""),
    "array_size": Param(int, 0, 4096, default=0, doc="IR and solver points: rows = columns of one array"),
    "epochs": Param(int, 1, 1000, default=8),
    "train_subset": Param(int, 0, None, default=0, doc="0: every training image but the validation split"),
    "val_subset": Param(int, 1, None, default=2000),
    "test_subset": Param(int, 0, None, default=0, doc="0: the whole test set"),
    "ir_test_subset": Param(int, 0, None, default=2000),
    "hwa_noise": Param(float, 0.0, 1.0, default=0.038),
    "times": Param(str, default="1", doc="read times in s after programming, comma-separated"),
    "n_chips": Param(int, 1, 1000, default=8),
    "r_wires": Param(str, default="1e-4", doc="wire-segment resistance / on-resistance, comma-separated"),
    "solver_batch": Param(int, 1, None, default=100),
    "solver_repeats": Param(int, 1, None, default=20),
    "seed_train": Param(int, 0, None, default=1),
    "data_dir": Param(str, default=""),
})


def build_spec(options: dict, output: Path) -> dict:
    """Drift points (device x training x compensation), IR points (size x method), solver points (size)."""
    o = options
    rows = []  # plain and hwa alternate, so two workers train the two networks at the same time
    for comp in o["compensations"]:
        for dev in o["devices"]:
            for tr in o["trainings"]:
                rows.append(("drift", dev, tr, comp, "", 0))
    for size in sorted(o["array_sizes"], reverse=True):
        for method in METHODS:
            rows.append(("ir", "", "", "", method, int(size)))
    for size in o["solver_sizes"]:
        rows.append(("solver", "", "", "", "", int(size)))
    cols = list(zip(*rows))
    base = {k: o[k] for k in ("epochs", "train_subset", "val_subset", "test_subset", "ir_test_subset", "hwa_noise",
                              "n_chips", "solver_batch", "solver_repeats")}
    base.update(times=",".join(repr(float(t)) for t in o["times"]), r_wires=",".join(repr(float(r)) for r in o["r_wires"]),
                seed_train=int(o["seed"]), data_dir=o["data_dir"] or "")
    return {"task": "xbarsim.experiments.repro.inference_physics:TASK", "seeds": [int(o["seed"])],
            "output": str(output), "description": "inference physics: drift, compensation, IR drop, solver",
            "base": base,
            "zip": [{"kind": list(cols[0]), "device": list(cols[1]), "training": list(cols[2]),
                     "compensation": list(cols[3]), "method": list(cols[4]), "array_size": list(cols[5])}]}

