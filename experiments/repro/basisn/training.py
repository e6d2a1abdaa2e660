"""BasisN-style training: the unconstrained baseline and the fine-tuned BasisNet, each built once per run.

Plain SGD (momentum 0.9, weight decay, cosine decay per step) on the first
``train_subset`` images of a seeded permutation of Fashion-MNIST, normalised with
its mean and std.  Both networks are :func:`~xbarsim.experiments.repro.base.cached_artifact` s
keyed by everything their training reads, so every point of a run shares them.
"""
from __future__ import annotations

import math

from xbarsim.experiments.data.datasets import load_dataset
from xbarsim.experiments.repro.base import cached_artifact
from xbarsim.experiments.repro.basisn.spec import model_of
from xbarsim.experiments.repro.cnn_models import stages_of
from xbarsim.mapping.basis import BasisDecomposition, BasisNet

__all__ = ["load_data", "train", "accuracy", "baseline_key", "baseline", "basis_net"]

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


def load_data(params: dict):
    bundle = load_dataset("fashion-mnist", data_dir=params["data_dir"] or None, flatten=False)
    norm = (lambda x: (x - FMNIST_MEAN) / FMNIST_STD)
    return (norm(bundle.train_images), bundle.train_labels, norm(bundle.test_images), bundle.test_labels,
            bundle.source)


def train(model, params: dict, seed: int, epochs: int, lr: float, data) -> None:
    """Plain SGD (momentum 0.9, weight decay, cosine decay per step) on the seeded training subset."""
    import torch
    import torch.nn.functional as F
    x_tr, y_tr = data[0], data[1]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y_tr), generator=gen)
    n = params["train_subset"] or len(y_tr)
    x_tr, y_tr = x_tr[order[:n]], y_tr[order[:n]]
    bs = params["batch_size"]
    steps = epochs * math.ceil(n / bs)
    params_to_train = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params_to_train, lr=lr, momentum=0.9, weight_decay=params["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            F.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
            sched.step()
    model.eval()


def accuracy(model, x, y, limit: int = 0, batch: int = 500) -> float:
    import torch
    n = limit or len(y)
    correct = 0
    with torch.no_grad():
        for i in range(0, n, batch):
            correct += int((model(x[i:min(i + batch, n)]).argmax(1) == y[i:min(i + batch, n)]).sum())
    return correct / n


def baseline_key(params: dict, seed: int) -> dict:
    return {k: params[k] for k in ("model", "vgg_width", "vgg_hidden", "resnet_width", "epochs", "train_subset",
                                   "batch_size", "lr", "weight_decay", "data_dir")} | {"seed": seed}


def baseline(params: dict, seed: int, data):
    """The trained unconstrained network (built once per run, shared by every point)."""
    import torch


    def build():
        torch.manual_seed(seed)
        model = model_of(params)
        train(model, params, seed, params["epochs"], params["lr"], data)
        return {"state": model.state_dict()}

    model = model_of(params)
    model.load_state_dict(cached_artifact("basisn-baseline", baseline_key(params, seed), build)["state"])
    return model.eval()


def basis_net(params: dict, seed: int, data, model):
    """The fine-tuned BasisNet for (model, n_bases, coeff_bits), built once per run."""
    dec = BasisDecomposition(n_bases=params["n_bases"], segment_rows=params["array_size"],
                             coeff_bits=params["coeff_bits"])

    def fresh():
        return BasisNet(model, dec, stages=stages_of(model), seed=seed)

    def build():
        net = fresh()
        train(net, params, seed + 1, params["ft_epochs"], params["ft_lr"], data)
        return {"state": net.state_dict()}

    key = baseline_key(params, seed) | {k: params[k] for k in ("n_bases", "coeff_bits", "ft_epochs", "ft_lr",
                                                                 "array_size")}
    net = fresh()
    net.load_state_dict(cached_artifact("basisn-basisnet", key, build)["state"])
    return net.eval()
