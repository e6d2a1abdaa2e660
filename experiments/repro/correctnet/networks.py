"""CorrectNet-style data, networks and their training (shared between points through the artifact cache).

``build_model``: LeNet-5 and the small VGG-style CNN (R) for 1 x 28 x 28 inputs.
``network``: a trained network, built once per reproduction run
(:func:`~xbarsim.experiments.repro.base.cached_artifact`, keyed by everything its
training reads).  ``device_nonideality``: the two device settings of the device points.
"""
from __future__ import annotations

import functools

from xbarsim.experiments.repro.base import cached_artifact
from xbarsim.experiments.repro.correctnet.spec import DEVICE_SETTINGS, MODELS

__all__ = ["build_model", "splits", "network", "device_nonideality"]


def build_model(name: str, seed: int = 0):
    """LeNet-5 or the small VGG-style CNN of the module docstring, for 1 x 28 x 28 inputs."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    if name == "lenet5":
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                             nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name == "vgg":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(288, 64), nn.ReLU(), nn.Linear(64, 10))
    raise ValueError(f"model {name!r} is unknown; choose one of {list(MODELS)}")


@functools.lru_cache(maxsize=2)
def splits(dataset: str, data_dir: str, train_subset: int, val_subset: int, seed: int) -> dict:
    """Train / validation / test tensors (validation: the first ``val_subset`` of a seeded permutation)."""
    import torch
    from xbarsim.experiments.data.datasets import load_dataset
    b = load_dataset(dataset, data_dir or None, flatten=False)
    perm = torch.randperm(len(b.train_labels), generator=torch.Generator().manual_seed(seed))
    val, rest = perm[:val_subset], perm[val_subset:]
    if train_subset:
        rest = rest[:train_subset]
    return {"train": (b.train_images[rest], b.train_labels[rest]), "val": (b.train_images[val], b.train_labels[val]),
            "test": (b.test_images, b.test_labels), "source": b.source}


def _train_network(name: str, data: tuple, beta: float, epochs: int, seed: int, kind: str = "spectral",
                   train_sigma: float = 0.0, lr_schedule: str = "constant") -> dict:
    r"""Adam on cross-entropy + the Lipschitz penalty; with ``train_sigma > 0`` every mini-batch's forward
    runs on a fresh lognormal chip (:func:`xbarsim.mapping.nonideal.sample_weights`, differentiable).

    ``lr_schedule="cosine"``: :math:`\eta_t = \tfrac{\eta_0}{2}(1 + \cos(\pi t / T))` over the
    ``T`` steps of the run (Loshchilov & Hutter, ICLR 2017), :math:`\eta_0 = 10^{-3}`.
    """
    import math

    import torch
    import torch.nn.functional as F
    from xbarsim.mapping.nonideal import LognormalVariation, Nonideality, chip_seed, perturbed_forward, sample_weights
    from xbarsim.training.compensate import cosine_lr
    from xbarsim.training.lipschitz import LipschitzRegularizer
    model = build_model(name, seed)
    reg = LipschitzRegularizer(kind, beta)
    lr0 = 1e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr0)
    images, labels = data
    gen = torch.Generator().manual_seed(seed + 1)
    nid = Nonideality(lognormal=LognormalVariation(train_sigma)) if train_sigma > 0 else None
    noise = torch.Generator().manual_seed(seed + 2)
    step, total = 0, epochs * math.ceil(len(labels) / 128)
    for _ in range(epochs):
        perm = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(labels), 128):
            if lr_schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(lr0, step, total)
            idx = perm[i:i + 128]
            if nid is None:
                out = model(images[idx])
            else:
                chip = sample_weights(model, nid, chip_seed(seed + 3, step), differentiable=True)
                out = perturbed_forward(model, images[idx], chip, nid, noise)
            step += 1
            loss = F.cross_entropy(out, labels[idx]) + reg(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {"state": model.state_dict()}


def network(params: dict, beta: float, data: tuple, train_sigma: float = 0.0, epochs: int = 0):
    epochs = epochs or params["epochs"]
    key = {"model": params["model"], "beta": beta, "epochs": epochs, "dataset": params["dataset"],
           "train_subset": params["train_subset"], "val_subset": params["val_subset"], "seed": params["seed_train"],
           "reg_kind": params["reg_kind"] if beta > 0 else ""}
    if train_sigma > 0:
        key["train_sigma"] = train_sigma
    if params["lr_schedule"] != "constant":
        key["lr_schedule"] = params["lr_schedule"]
    art = cached_artifact("network", key, lambda: _train_network(params["model"], data, beta, epochs,
                                                                 params["seed_train"], params["reg_kind"],
                                                                 train_sigma, params["lr_schedule"]))
    model = build_model(params["model"])
    model.load_state_dict(art["state"])
    return model.eval()


def device_nonideality(setting: str, weight_fraction: float = 0.5):
    from xbarsim.devices import SoftBounds
    from xbarsim.mapping.nonideal import DeviceProgramming, Nonideality
    if setting == "softbounds":
        dev = SoftBounds()
    elif setting == "low_variation":
        dev = SoftBounds(dw_min_dtod=0.05, dw_min_std=0.05, w_max_dtod=0.05, w_min_dtod=0.05, up_down_dtod=0.01)
    else:
        raise ValueError(f"device setting {setting!r} is unknown; choose one of {list(DEVICE_SETTINGS)}")
    return Nonideality(device=DeviceProgramming(device=dev, weight_fraction=weight_fraction))
