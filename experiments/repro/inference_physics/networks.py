"""Inference-physics networks and data: LeNet-5 on Fashion-MNIST, the splits, training, accuracy.

Training is plain or hardware-aware (``hwa_noise > 0``: additive Gaussian weight
noise on every training forward, :func:`_train`); each trained network is shared
between the points that read it through :func:`~xbarsim.experiments.repro.base.cached_artifact`.
The weight noise is the same model as :mod:`xbarsim.training.hwa`'s step 1, but drawn
here from one generator for all layers on the plain layers' forward; ``convert_to_hwa``
(one generator per layer, convolutions via im2col) would train other weights than the
committed run's, so the loop stays here.
"""
from __future__ import annotations

from xbarsim.experiments.repro.base import cached_artifact

__all__ = ["build_lenet5"]


def build_lenet5(seed: int = 0):
    """LeNet-5 for 1 x 28 x 28 inputs (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 400-120-84-10, ReLU)."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def _splits(data_dir: str, train_subset: int, val_subset: int, test_subset: int, seed: int) -> dict:
    """Train / validation (first ``val_subset`` of a seeded permutation of the training set) / test."""
    import torch
    from xbarsim.experiments.data.datasets import load_dataset
    b = load_dataset("fashion-mnist", data_dir or None, flatten=False)
    perm = torch.randperm(len(b.train_labels), generator=torch.Generator().manual_seed(seed))
    val, rest = perm[:val_subset], perm[val_subset:]
    if train_subset:
        rest = rest[:train_subset]
    n_test = test_subset or len(b.test_labels)
    return {"train": (b.train_images[rest], b.train_labels[rest]), "val": (b.train_images[val], b.train_labels[val]),
            "test": (b.test_images[:n_test], b.test_labels[:n_test]), "source": b.source}


def _train(data: tuple, epochs: int, hwa_noise: float, seed: int) -> dict:
    """Adam (1e-3, batch 128) on cross-entropy; ``hwa_noise > 0`` adds N(0, (hwa_noise max|W|)^2) to every
    conv/linear weight on each training forward (a fresh draw per batch, gradient to the clean weight)."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call
    model = build_lenet5(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    images, labels = data
    gen, noise_gen = torch.Generator().manual_seed(seed + 1), torch.Generator().manual_seed(seed + 2)
    names = [n for n, p in model.named_parameters() if n.endswith("weight")]
    for _ in range(epochs):
        perm = torch.randperm(len(labels), generator=gen)
        for i in range(0, len(labels), 128):
            idx = perm[i:i + 128]
            if hwa_noise > 0:
                params = dict(model.named_parameters())
                for n in names:
                    w = params[n]
                    params[n] = w + hwa_noise * w.detach().abs().max() * torch.randn(w.shape, generator=noise_gen)
                out = functional_call(model, params, (images[idx],))
            else:
                out = model(images[idx])
            loss = F.cross_entropy(out, labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {"state": model.state_dict()}


def _network(params: dict, training: str, data: tuple):
    hwa = params["hwa_noise"] if training == "hwa" else 0.0
    key = {"training": training, "hwa_noise": hwa, "epochs": params["epochs"], "train_subset": params["train_subset"],
           "val_subset": params["val_subset"], "seed": params["seed_train"]}
    art = cached_artifact("lenet5", key, lambda: _train(data, params["epochs"], hwa, params["seed_train"]))
    model = build_lenet5()
    model.load_state_dict(art["state"])
    return model.eval()


def _accuracy(model, data: tuple, batch: int = 500) -> float:
    import torch
    images, labels = data
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch):
            correct += int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
    return correct / max(len(labels), 1)


def _noise_model(device: str, quiet: bool = False):
    from xbarsim.devices import PCMLikeDrift, RRAMRelaxation
    if quiet:
        return PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    return PCMLikeDrift() if device == "pcm" else RRAMRelaxation()

