"""BasisN-style presets, point parameters and the sweep spec (baselines, basis points, cost points)."""
from __future__ import annotations

from pathlib import Path

from xbarsim.experiments.repro.cnn_models import build_model
from xbarsim.experiments.sweeps.tasks import Param, ParamSchema
from xbarsim.mapping.basis_schedule import conventional_schedule, layer_shapes

__all__ = ["PRESETS", "PARAMS", "model_of", "k_values", "build_spec"]

PRESETS: dict[str, dict] = {
    "smoke": dict(models=["vgg", "resnet"], vgg_width=4, vgg_hidden=16, resnet_width=4, epochs=1, ft_epochs=1,
                  train_subset=256, test_subset=200, analog_test_subset=32, batch_size=64, lr=0.05, ft_lr=0.01,
                  weight_decay=1e-4, n_bases=[8], coeff_bits=[8], main_bases=8, main_bits=8,
                  over_capacity=[10], array_size=32, out_noise=0.06, n_infer=1, seed=0, data_dir=None),
    "paper": dict(models=["vgg", "resnet"], vgg_width=16, vgg_hidden=128, resnet_width=24, epochs=3, ft_epochs=1,
                  train_subset=20_000, test_subset=0, analog_test_subset=2000, batch_size=128, lr=0.05,
                  ft_lr=0.01, weight_decay=1e-4, n_bases=[4, 8, 16, 32], coeff_bits=[2, 4, 8], main_bases=16,
                  main_bits=8, over_capacity=[3, 10, 30, 100], array_size=32, out_noise=0.06, n_infer=2, seed=0,
                  data_dir=None),
}


def model_of(params: dict):
    return build_model(params["model"], params["vgg_width"] if params["model"] == "vgg" else params["resnet_width"],
                       params["vgg_hidden"])


def k_values(n_weights: int, n_blocks: int, array_size: int, over_capacity: list) -> list[int]:
    """``K_fit = n_blocks`` (all conventional blocks resident), then ``floor(W / (f A^2))`` for each
    over-capacity factor ``f``, then 1; duplicates removed, descending."""
    ks = [n_blocks] + [max(1, n_weights // (f * array_size ** 2)) for f in over_capacity] + [1]
    return sorted(set(ks), reverse=True)


def build_spec(options: dict, output: Path) -> dict:
    """Baselines first (they build the shared trained networks), then basis points, then cost points."""

    o = options
    cols: dict[str, list] = {"kind": [], "model": [], "n_bases": [], "coeff_bits": [], "n_arrays": []}

    def add(kind, model, m=0, q=0, k=0):
        for key, v in zip(cols, (kind, model, m, q, k)):
            cols[key].append(v)

    for model in o["models"]:
        add("baseline", model)
    for model in o["models"]:
        pairs = [(o["main_bases"], o["main_bits"])] + [(m, o["main_bits"]) for m in o["n_bases"]] + \
                [(o["main_bases"], q) for q in o["coeff_bits"]]
        for m, q in dict.fromkeys(pairs):
            add("basis", model, m, q)
    base = {k: o[k] for k in ("vgg_width", "vgg_hidden", "resnet_width", "epochs", "ft_epochs", "train_subset",
                              "test_subset", "analog_test_subset", "batch_size", "lr", "ft_lr", "weight_decay",
                              "main_bases", "main_bits", "array_size", "out_noise", "n_infer")}
    base["data_dir"] = o["data_dir"] or ""
    for model in o["models"]:
        net = model_of(dict(base, model=model))
        shapes = layer_shapes(net, (1, 28, 28))
        n_weights = sum(s.out_features * s.fan_in for s in shapes)
        n_blocks = len(conventional_schedule(shapes, 10 ** 9, o["array_size"], o["array_size"]).setup)
        for k in k_values(n_weights, n_blocks, o["array_size"], o["over_capacity"]):
            add("cost", model, o["main_bases"], o["main_bits"], k)
    return {"task": "xbarsim.experiments.repro.basisn:TASK", "seeds": [int(o["seed"])], "output": str(output),
            "base": base, "zip": [cols]}


PARAMS = ParamSchema({
    "kind": Param(str, choices=("baseline", "basis", "cost"), required=True, doc="which computation"),
    "model": Param(str, choices=("vgg", "resnet"), required=True),
    "n_bases": Param(int, 0, 4096, default=0, doc="M, bases per set (basis, cost)"),
    "coeff_bits": Param(int, 0, 16, default=0, doc="coefficient bits, 0 = float (basis, cost)"),
    "n_arrays": Param(int, 0, None, default=0, doc="K, available arrays (cost)"),
    "vgg_width": Param(int, 1, 1024, default=16), "vgg_hidden": Param(int, 1, 100_000, default=128),
    "resnet_width": Param(int, 1, 1024, default=24),
    "epochs": Param(int, 1, 1000, default=3), "ft_epochs": Param(int, 0, 1000, default=1),
    "train_subset": Param(int, 0, None, default=20_000, doc="0: all 60k"),
    "test_subset": Param(int, 0, None, default=0, doc="0: all 10k"),
    "analog_test_subset": Param(int, 1, None, default=2000, doc="test images read through crossbars"),
    "batch_size": Param(int, 1, 100_000, default=128),
    "lr": Param(float, 0.0, None, low_open=True, default=0.05),
    "ft_lr": Param(float, 0.0, None, low_open=True, default=0.01),
    "weight_decay": Param(float, 0.0, None, default=1e-4),
    "main_bases": Param(int, 1, 4096, default=16), "main_bits": Param(int, 0, 16, default=8),
    "array_size": Param(int, 2, 4096, default=32, doc="array rows = cols = segment length"),
    "out_noise": Param(float, 0.0, None, default=0.06, doc="ADC-referred read noise (IOConfig.out_noise)"),
    "n_infer": Param(int, 1, 1000, default=2, doc="measured batch-1 inferences per cost point"),
    "data_dir": Param(str, default="", doc="dataset folder; empty: the default search"),
})
