r"""Train CorrectNet-style compensation units under injected variations, analog weights frozen.

Every step draws a fresh chip (:func:`xbarsim.mapping.nonideal.sample_weights`, or the
next one of a pool of ``chip_pool`` pre-drawn chips when drawing is costly, as for
device programming), runs :func:`xbarsim.mapping.nonideal.perturbed_forward` on a
mini-batch and takes an Adam step on the compensation units' parameters only:

.. math::
    \min_{U, V}\; E_{\text{chip}}\, E_{(x, t)}\; \mathrm{CE}\Big(\tau\,\frac{z}{\mathrm{rms}(z)}, t\Big),
    \qquad z = f_{W_{chip}, U, V}(x)

Everything else in the model (the analog weights, digital biases) is frozen.
The learning rate is constant, or (``schedule="cosine"``) decays over the run as
:math:`\eta_t = \tfrac{\eta_0}{2}(1 + \cos(\pi t / T))` for ``T = steps``
(Loshchilov & Hutter, ICLR 2017): a short run then ends at a small step size
instead of wherever the last large step left it, so a short run's units rank
placements more like long runs' do (budget-aware schedules, Li et al., ICLR 2020).

The loss is the cross-entropy of *normalised* logits (each sample's logits divided
by their RMS over classes, times a fixed temperature :math:`\tau`: the mean logit
RMS of the untouched network without variations on 512 training images).  Plain
cross-entropy has a poor optimum here: under strong variations the network is
often confidently wrong, and the units can lower the loss toward :math:`\ln C` by
cancelling the signal (predicting uniformly) -- we observed exactly that, with
accuracy falling below the uncompensated network.  The normalised loss is blind
to the logit scale, so the units can only gain by making the right class win.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.devices.validation import Serialisable, require_choice, require_number
from xbarsim.mapping.compensation import compensation_parameters
from xbarsim.mapping.nonideal import Nonideality, chip_seed, perturbed_forward, sample_weights

__all__ = ["CompensationTraining", "train_compensation", "cosine_lr", "SCHEDULES"]

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class CompensationTraining(Serialisable):
    """``steps`` Adam steps of ``batch_size`` examples at learning rate ``lr``; ``chip_pool``: 0 draws a
    fresh chip every step, ``k > 0`` cycles through ``k`` chips drawn once (for costly device programming);
    ``schedule``: ``constant`` or ``cosine`` (decayed to 0 over ``steps``)."""

    steps: int = 300
    batch_size: int = 128
    lr: float = 0.01
    chip_pool: int = 0
    schedule: str = "constant"

    def __post_init__(self) -> None:
        require_number("CompensationTraining", "steps", self.steps, 0, None, integer=True)
        require_number("CompensationTraining", "batch_size", self.batch_size, 1, None, integer=True)
        require_number("CompensationTraining", "lr", self.lr, 0.0, None, lo_open=True)
        require_number("CompensationTraining", "chip_pool", self.chip_pool, 0, None, integer=True)
        require_choice("CompensationTraining", "schedule", self.schedule, SCHEDULES)


def cosine_lr(lr0: float, step: int, total: int) -> float:
    r"""Cosine-decayed learning rate :math:`\eta_t = \tfrac{\eta_0}{2}(1 + \cos(\pi t / T))`, ``t = step``,
    ``T = total`` (Loshchilov & Hutter, ICLR 2017)."""
    return lr0 / 2 * (1.0 + math.cos(math.pi * step / total))


def _rms(z: torch.Tensor) -> torch.Tensor:
    return z.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-12)


def train_compensation(model: nn.Module, nonideality: Nonideality, data: Tuple[torch.Tensor, torch.Tensor],
                       config: CompensationTraining = CompensationTraining(), seed: int = 0) -> list:
    """Train ``model``'s compensation units in place; returns the per-step losses.

    ``seed`` fixes the batches, the chips (seeds ``chip_seed(seed + 1, k)``, never
    those of an evaluation run with another seed) and the read noise.
    """
    params = compensation_parameters(model)
    if not params:
        return []
    images, labels = data
    frozen = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in params)]
    for p in frozen:
        p.requires_grad_(False)
    was = model.training
    model.eval()  # no dropout / batch-norm updates: only the units learn
    opt = torch.optim.Adam(params, lr=config.lr)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.Generator().manual_seed(int(seed) + 1)
    pool = [sample_weights(model, nonideality, chip_seed(seed + 1, k)) for k in range(config.chip_pool)]
    with torch.no_grad():
        probe = torch.randint(0, len(labels), (min(512, len(labels)),), generator=gen)
        tau = float(_rms(model(images[probe])).mean())
    losses = []
    try:
        for step in range(config.steps):
            if config.schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(config.lr, step, config.steps)
            chip = pool[step % len(pool)] if pool else sample_weights(model, nonideality, chip_seed(seed + 1, step))
            idx = torch.randint(0, len(labels), (config.batch_size,), generator=gen)
            out = perturbed_forward(model, images[idx], chip, nonideality, noise)
            loss = F.cross_entropy(tau * out / _rms(out), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was)
    return losses
