r"""Training recipe of binary neural networks (BinaryNet; Kim, Kim & Kim 2018's public code).

* loss ``"squared_hinge"``: ``mean_{b,k} max(0, 1 - t_bk o_bk)^2`` with ``t = ±1`` one-hot
  targets (Courbariaux et al., arXiv 1602.02830); ``"cross_entropy"`` as an option;
* AdaMax updates (Kingma & Ba, arXiv 1412.6980; ``torch.optim.Adamax``; the authors use
  a shift-based AdaMax, beta1 0.9, beta2 0.999), or Adam;
* per-layer Glorot learning-rate scaling (optional): a block with fan-in ``N`` and ``M``
  outputs (conv: ``N = C_in k k``, ``M = C_out k k``) gets ``lr / sqrt(1.5 / (N + M))``
  on its latent weights, as BinaryNet's ``W_LR_scale``;
* after every step the latent weights, and (``clamp_bn``) the BatchNorm affine
  parameters, are clamped to [-1, 1], as in the authors' code;
* the learning rate is halved every ``lr_halve_every`` epochs.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.devices.validation import Serialisable, require_bool, require_choice, require_number
from xbarsim.mapping.bnn_layers import BinaryBlock

__all__ = ["BNNTrainConfig", "squared_hinge_loss", "train_bnn", "evaluate_bnn", "clamp_bnn_parameters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BNNTrainConfig(Serialisable):
    """How a BNN is trained.

    Fields:
        epochs: passes over the training set.
        batch_size: samples per step (the authors: 100 on MNIST).
        lr: base learning rate (the authors: 2^-6 with Glorot scaling).
        lr_halve_every: epochs between halvings of lr (0: never).
        optimizer: ``"adamax"`` or ``"adam"``.
        loss: ``"squared_hinge"`` (±1 targets) or ``"cross_entropy"``.
        glorot_lr_scale: scale each block's weight lr by ``1/sqrt(1.5/(fan_in + fan_out))``.
        clamp_bn: clamp the BatchNorm affine parameters to [-1, 1] too (latent weights always are).
    """

    epochs: int = 1
    batch_size: int = 100
    lr: float = 2.0 ** -6
    lr_halve_every: int = 20
    optimizer: str = "adamax"
    loss: str = "squared_hinge"
    glorot_lr_scale: bool = True
    clamp_bn: bool = True

    def __post_init__(self) -> None:
        n = "BNNTrainConfig"
        require_number(n, "epochs", self.epochs, 0, None, integer=True)
        require_number(n, "batch_size", self.batch_size, 1, None, integer=True)
        require_number(n, "lr", self.lr, 0.0, None, lo_open=True)
        require_number(n, "lr_halve_every", self.lr_halve_every, 0, None, integer=True)
        require_choice(n, "optimizer", self.optimizer, ("adamax", "adam"))
        require_choice(n, "loss", self.loss, ("squared_hinge", "cross_entropy"))
        require_bool(n, "glorot_lr_scale", self.glorot_lr_scale)
        require_bool(n, "clamp_bn", self.clamp_bn)


def squared_hinge_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``mean(max(0, 1 - t o)^2)`` with ``t = 2 onehot(labels) - 1``."""
    t = 2.0 * F.one_hot(labels, logits.shape[1]).to(logits.dtype) - 1.0
    return torch.clamp(1.0 - t * logits, min=0.0).square().mean()


def clamp_bnn_parameters(model: nn.Module, clamp_bn: bool = True) -> None:
    """Clamp every block's latent weights (and BN affine parameters) to [-1, 1] in place."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BinaryBlock):
                m.weight.clamp_(-1.0, 1.0)
                if clamp_bn:
                    m.bn.weight.clamp_(-1.0, 1.0)
                    m.bn.bias.clamp_(-1.0, 1.0)


def _param_groups(model: nn.Module, cfg: BNNTrainConfig) -> list[dict]:
    groups, seen = [], set()
    for m in model.modules():
        if isinstance(m, BinaryBlock):
            scale = 1.0
            if cfg.glorot_lr_scale:
                k2 = m.kernel_size ** 2
                scale = 1.0 / math.sqrt(1.5 / (m.fan_in + m.out_features * k2))
            groups.append({"params": [m.weight], "lr": cfg.lr * scale, "base_lr": cfg.lr * scale})
            seen.add(id(m.weight))
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:
        groups.append({"params": rest, "lr": cfg.lr, "base_lr": cfg.lr})
    return groups


@torch.no_grad()
def evaluate_bnn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Test accuracy (fraction) of ``model`` in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(len(x), 1)


def train_bnn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: BNNTrainConfig, seed: int = 0,
              x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None) -> dict:
    """Train ``model`` in place; returns per-epoch ``loss``, ``train_time_s`` and (with test data) ``test_acc``."""
    gen = torch.Generator().manual_seed(int(seed))
    groups = _param_groups(model, cfg)
    opt_cls = torch.optim.Adamax if cfg.optimizer == "adamax" else torch.optim.Adam
    opt = opt_cls(groups, betas=(0.9, 0.999))
    loss_fn = squared_hinge_loss if cfg.loss == "squared_hinge" else F.cross_entropy
    hist: dict[str, list[float]] = {"loss": [], "test_acc": [], "epoch_time_s": []}
    for epoch in range(cfg.epochs):
        if cfg.lr_halve_every:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * 0.5 ** (epoch // cfg.lr_halve_every)
        model.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clamp_bnn_parameters(model, cfg.clamp_bn)
            total += float(loss.detach()) * len(idx)
            n += len(idx)
        hist["loss"].append(total / max(n, 1))
        hist["epoch_time_s"].append(time.perf_counter() - t0)
        if x_test is not None and y_test is not None:
            hist["test_acc"].append(evaluate_bnn(model, x_test, y_test))
        log.info("epoch %d: loss %.4f%s (%.1f s)", epoch + 1, hist["loss"][-1],
                 f", test {hist['test_acc'][-1]:.4f}" if hist["test_acc"] else "", hist["epoch_time_s"][-1])
    model.eval()
    return hist
