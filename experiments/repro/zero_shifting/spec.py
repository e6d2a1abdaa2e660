"""Zero-shifting presets, point parameters and the sweep spec.

A point is a training run (``kind = "train"``: a reference ``mode`` at one
``up_down`` and number of ``states``, or the float baseline ``mode = "fp"``) or a
device trace (``kind = "device"``).  The hidden widths travel as a comma-separated
string, since the sweep engine's parameters are scalars.
"""
from __future__ import annotations

from pathlib import Path

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema

__all__ = ["MODES", "PRESETS", "PARAMS", "choose_dataset", "point_label", "build_spec"]


MODES = ("none", "zero", "symmetry_point")


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


PARAMS = ParamSchema({
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
})
