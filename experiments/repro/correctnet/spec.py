"""CorrectNet-style presets, the point parameters and the sweep spec.

Options shared by every network sit at the top level of a preset; what differs per
network (its σ list, epochs, variation-aware training, data subsets) sits under
``networks[model]``.  A point's parameters are flat (the sweep engine's parameters
are scalars): the ``lenet5`` recipe under the plain names (``epochs``), the
``vgg`` one under ``vgg_`` names (``vgg_epochs``), which is also how the committed
results files store them.
"""
from __future__ import annotations

import itertools
from pathlib import Path

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema

__all__ = ["MODELS", "DEVICE_SETTINGS", "VARIANTS", "NETWORK_OPTIONS", "PRESETS", "PARAMS", "choose_dataset",
           "build_spec", "network_param"]

MODELS = ("lenet5", "vgg")
DEVICE_SETTINGS = ("softbounds", "low_variation")
VARIANTS = ("plain", "reg", "vat", "rl", "greedy", "all")

#: per-network options (``networks[model]`` of a preset) -> their point parameter, for the ``lenet5`` recipe
NETWORK_OPTIONS = {
    "epochs": Param(int, 1, 1000, default=3),
    "vat_epochs": Param(int, 0, 1000, default=0, doc="epochs of the variation-aware network (0: epochs)"),
    "train_subset": Param(int, 0, None, default=0, doc="0: all training images but the validation split"),
    "test_subset": Param(int, 0, None, default=0, doc="0: the whole test set"),
    "train_sigma": Param(float, 0.0, 5.0, default=0.0,
                         doc="lognormal σ injected while training the variation-aware network (0: none)"),
}


def network_param(model: str, option: str) -> str:
    """The point parameter of ``networks[model][option]``: ``epochs`` for LeNet-5, ``vgg_epochs`` for VGG."""
    return f"vgg_{option}" if model == "vgg" else option


def _networks(lenet5: dict, vgg: dict) -> dict:
    return {"lenet5": lenet5, "vgg": vgg}


_SMOKE_NET = dict(sigmas=[1.0], epochs=1, vat_epochs=0, train_subset=1500, test_subset=200, train_sigma=0.5)

PRESETS: dict[str, dict] = {
    "smoke": dict(models=["lenet5"], networks=_networks(dict(_SMOKE_NET), dict(_SMOKE_NET)),
                  device_models=["lenet5"], devices=["low_variation"], val_subset=200,
                  device_test_subset=20, heldout_subset=100, n_mc=2, n_mc_search=2, episodes=3, search_steps=5,
                  halving_top=3, halving_steps=5, rescore_top=2, final_steps=5, unit_schedule="cosine", beta=0.01,
                  reg_kind="spectral", rank=16, source="input", budget_pct=5.0, penalty=0.5, chip_pool=1,
                  skip_below_drop=0.0, weight_fraction=0.5, lr_schedule="cosine", sensitivity="recovery", seed=1,
                  data_dir=None),
    "paper": dict(models=list(MODELS),
                  networks=_networks(
                      dict(sigmas=[0.1, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0], epochs=20, vat_epochs=0, train_subset=0,
                           test_subset=2000, train_sigma=0.7),
                      dict(sigmas=[0.2, 0.5, 0.65, 0.8], epochs=20, vat_epochs=40, train_subset=0,
                           test_subset=2000, train_sigma=0.65)),
                  device_models=["lenet5"], devices=list(DEVICE_SETTINGS), val_subset=2000,
                  device_test_subset=200, heldout_subset=8000, n_mc=20, n_mc_search=6, episodes=20,
                  search_steps=200, halving_top=5, halving_steps=1000, rescore_top=2, final_steps=3000,
                  unit_schedule="cosine", beta=0.01, reg_kind="spectral", rank=8, source="input", budget_pct=5.0,
                  penalty=0.02, chip_pool=6, skip_below_drop=0.005, weight_fraction=0.5, lr_schedule="cosine",
                  sensitivity="recovery", seed=1, data_dir=None),
}

#: the options shared by every network, copied into each point as they are
SHARED_OPTIONS = ("val_subset", "device_test_subset", "heldout_subset", "n_mc", "n_mc_search", "episodes",
                  "search_steps", "rescore_top", "halving_top", "halving_steps", "unit_schedule", "final_steps",
                  "beta", "rank", "source", "budget_pct", "penalty", "chip_pool", "skip_below_drop",
                  "weight_fraction", "reg_kind", "lr_schedule", "sensitivity")

PARAMS = ParamSchema({
    "kind": Param(str, choices=("sigma", "device"), required=True, doc="lognormal σ point or device point"),
    "model": Param(str, choices=MODELS, required=True),
    "sigma": Param(float, 0.0, 5.0, default=0.0, doc="lognormal σ (sigma points)"),
    "device": Param(str, choices=("",) + DEVICE_SETTINGS, default="", doc="device setting (device points)"),
    **{network_param(model, name): p for model in MODELS for name, p in NETWORK_OPTIONS.items()},
    "skip_below_drop": Param(float, 0.0, 1.0, default=0.02,
                             doc="no placement search where reg loses less than this accuracy"),
    "weight_fraction": Param(float, 0.0, 1.0, low_open=True, default=0.5, doc="device mapping of max|W|"),
    "val_subset": Param(int, 1, None, default=2000),
    "heldout_subset": Param(int, 0, None, default=0,
                            doc="test images after the table's subset, scored again for the claim's variants "
                                "(clean, plain, RL, greedy; sigma points): no choice of the recipe saw them"),
    "device_test_subset": Param(int, 0, None, default=1000),
    "n_mc": Param(int, 1, None, default=20, doc="chips per test accuracy"),
    "n_mc_search": Param(int, 1, None, default=5, doc="chips per validation score"),
    "episodes": Param(int, 1, None, default=16),
    "search_steps": Param(int, 0, None, default=120),
    "rescore_top": Param(int, 0, None, default=0,
                         doc="best search placements scored again with final-length units (0: none)"),
    "halving_top": Param(int, 0, None, default=0,
                         doc="middle rung: best search placements scored with halving_steps units (0: none)"),
    "halving_steps": Param(int, 0, None, default=1000, doc="unit training steps of the middle rung"),
    "unit_schedule": Param(str, choices=("constant", "cosine"), default="constant",
                           doc="learning rate of every compensation unit's training: constant or cosine-decayed"),
    "final_steps": Param(int, 0, None, default=300),
    "beta": Param(float, 0.0, None, default=0.01, doc="Lipschitz regularizer strength"),
    "reg_kind": Param(str, choices=("orthogonal", "spectral"), default="spectral", doc="Lipschitz regularizer form"),
    "lr_schedule": Param(str, choices=("constant", "cosine"), default="constant",
                         doc="learning rate of every network's training: Adam 1e-3 constant or cosine-decayed"),
    "sensitivity": Param(str, choices=("alone", "recovery"), default="alone",
                         doc="per-layer sensitivity: loss when the layer alone varies, or gain when it alone is exact"),
    "rank": Param(int, 1, 4096, default=16),
    "source": Param(str, choices=("input", "output"), default="input"),
    "budget_pct": Param(float, 0.0, 100.0, low_open=True, default=5.0),
    "penalty": Param(float, 0.0, None, default=0.5),
    "chip_pool": Param(int, 1, None, default=8),
    "seed_train": Param(int, 0, None, default=1),
    "dataset": Param(str, choices=("mnist", "fashion-mnist"), default="fashion-mnist"),
    "data_dir": Param(str, default=""),
})


def choose_dataset(data_dir: str | None = None) -> str:
    """MNIST (the paper's) when a full copy is found, else Fashion-MNIST."""
    from xbarsim.experiments.data.datasets import find_dataset
    return "mnist" if find_dataset("mnist", data_dir).found else "fashion-mnist"


def build_spec(options: dict, output: Path) -> dict:
    """Per network its σ points, then its device points; the networks' lists interleaved.

    Interleaving lets two workers train the two networks' models at the same time
    (each point waits for its network's cached training, under a file lock).
    """
    o = options
    per_model = []
    for model in o["models"]:
        own = [("sigma", model, float(s), "") for s in o["networks"][model]["sigmas"]]
        if model in o["device_models"]:
            own += [("device", model, 0.0, dev) for dev in o["devices"]]
        per_model.append(own)
    points = [p for group in itertools.zip_longest(*per_model) for p in group if p is not None]
    cols = list(zip(*points))
    base = {network_param(model, name): o["networks"][model][name] for model in MODELS for name in NETWORK_OPTIONS}
    base.update({k: o[k] for k in SHARED_OPTIONS})
    base.update(seed_train=int(o["seed"]), dataset=choose_dataset(o["data_dir"]), data_dir=o["data_dir"] or "")
    return {
        "task": "xbarsim.experiments.repro.correctnet:TASK",
        "seeds": [int(o["seed"])],
        "output": str(output),
        "description": "CorrectNet-style: Lipschitz regularization and RL-placed compensation under variations",
        "base": base,
        "zip": [{"kind": list(cols[0]), "model": list(cols[1]), "sigma": list(cols[2]), "device": list(cols[3])}],
    }
