"""BNN input-split presets, point parameters and the sweep spec: one point per (network, A).

List options (MLP widths, CNN channels, on/off ratios, variations) travel as
comma-separated strings, since the sweep engine's parameters are scalars.
"""
from __future__ import annotations

from pathlib import Path

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema

__all__ = ["NETWORKS", "PRESETS", "PARAMS", "choose_dataset", "build_spec"]


NETWORKS = ("mlp", "cnn")


PRESETS: dict[str, dict] = {
    "smoke": dict(networks=["mlp", "cnn"], array_rows=[0, 32], mlp_widths=[784, 64, 64, 64, 10],
                  cnn_channels=[4, 4, 8, 8], cnn_fc=32, train_subset=300, test_subset=200, epochs=1,
                  retrain_epochs=1, batch_size=50, lr=3e-3, retrain_lr=7.5e-4, glorot_lr_scale=False,
                  on_off_ratios=[10.0],
                  variations=[0.0, 0.2], n_mc=2, mc_test_subset=100, seed=1, data_dir=None),
    "paper": dict(networks=["mlp", "cnn"], array_rows=[0, 512, 256, 128], mlp_widths=[784, 2048, 2048, 2048, 10],
                  cnn_channels=[16, 16, 32, 32], cnn_fc=256, train_subset=20_000, test_subset=0, epochs=3,
                  retrain_epochs=1, batch_size=100, lr=3e-3, retrain_lr=7.5e-4, glorot_lr_scale=False,
                  on_off_ratios=[10.0, 100.0],
                  variations=[0.0, 0.1, 0.2], n_mc=10, mc_test_subset=1000, seed=1, data_dir=None),
}


def choose_dataset(data_dir: str | None = None) -> str:
    """MNIST (the paper's dataset) when a full copy is found, else Fashion-MNIST."""
    from xbarsim.experiments.data.datasets import find_dataset
    return "mnist" if find_dataset("mnist", data_dir).found else "fashion-mnist"


def _csv(values: list) -> str:
    return ",".join(str(v) for v in values)


def build_spec(options: dict, output: Path) -> dict:
    """One point per (network, A); the unsplit points first (they train the shared baselines)."""
    o = options
    nets, rows = [], []
    for a in sorted(o["array_rows"], key=lambda a: (a != 0, -a)):
        for net in o["networks"]:
            nets.append(net)
            rows.append(int(a))
    return {
        "task": "xbarsim.experiments.repro.bnn_split:TASK",
        "seeds": [int(o["seed"])],
        "output": str(output),
        "base": {"mlp_widths": _csv(o["mlp_widths"]), "cnn_channels": _csv(o["cnn_channels"]),
                 "cnn_fc": o["cnn_fc"], "train_subset": o["train_subset"], "test_subset": o["test_subset"],
                 "epochs": o["epochs"], "retrain_epochs": o["retrain_epochs"], "batch_size": o["batch_size"],
                 "lr": o["lr"], "retrain_lr": o["retrain_lr"], "glorot_lr_scale": o["glorot_lr_scale"],
                 "on_off_ratios": _csv(o["on_off_ratios"]), "variations": _csv(o["variations"]),
                 "n_mc": o["n_mc"], "mc_test_subset": o["mc_test_subset"],
                 "dataset": choose_dataset(o["data_dir"]), "data_dir": o["data_dir"] or ""},
        "zip": [{"network": nets, "array_rows": rows}],
    }


PARAMS = ParamSchema({
    "network": Param(str, choices=NETWORKS, required=True, doc="mlp or cnn"),
    "array_rows": Param(int, 0, 1 << 20, required=True, doc="array rows A; 0: unsplit"),
    "mlp_widths": Param(str, default="784,2048,2048,2048,10", doc="MLP widths, comma-separated"),
    "cnn_channels": Param(str, default="16,16,32,32", doc="CNN conv channels, comma-separated"),
    "cnn_fc": Param(int, 1, None, default=256, doc="CNN hidden FC width"),
    "train_subset": Param(int, 0, None, default=0, doc="training images; 0: all"),
    "test_subset": Param(int, 0, None, default=0, doc="test images; 0: all"),
    "epochs": Param(int, 1, 10_000, default=3, doc="baseline epochs"),
    "retrain_epochs": Param(int, 0, 10_000, default=1, doc="split fine-tuning epochs"),
    "batch_size": Param(int, 2, 100_000, default=100),
    "lr": Param(float, 0.0, None, low_open=True, default=3e-3, doc="AdaMax lr (before Glorot scaling, if any)"),
    "retrain_lr": Param(float, 0.0, None, low_open=True, default=7.5e-4, doc="AdaMax lr of the split fine-tuning"),
    "glorot_lr_scale": Param(bool, default=False, doc="BinaryNet's per-layer Glorot lr scaling"),
    "on_off_ratios": Param(str, default="10,100", doc="device on/off ratios, comma-separated"),
    "variations": Param(str, default="0,0.1,0.2", doc="lognormal conductance sigmas, comma-separated"),
    "n_mc": Param(int, 1, 10_000, default=10, doc="Monte Carlo device samples per setting"),
    "mc_test_subset": Param(int, 0, None, default=1000, doc="test images of the device Monte Carlo; 0: all"),
    "dataset": Param(str, choices=("mnist", "fashion-mnist"), default="fashion-mnist"),
    "data_dir": Param(str, default="", doc="dataset folder; empty: the default search"),
})
