r"""In-situ training of a fully connected network on crossbar arrays (the main job).

The network is the standard in-situ benchmark of the RRAM literature
(Gokmen & Vlasov 2016; Kim et al. arXiv:1907.10228; aihwkit's MNIST example):
784-256-128-10, sigmoid hidden layers, log-softmax output, mean-reduced NLL
loss.  Each ``nn.Linear`` becomes an :class:`xbarsim.mapping.AnalogLinear` whose
weights live in :class:`xbarsim.crossbar.CrossbarArray` cells; the forward and backward
passes go through the DAC/ADC periphery and :class:`xbarsim.training.AnalogSGD` applies
each sample's outer product ``-lr d x^T`` as stochastic pulse trains, one
sample after another.  Biases are digital (aihwkit's default).

Three modes share the loop:

* in-situ (default): pulsed updates on the configured device;
* ``fp``: the floating-point baseline, same network and schedule, plain SGD;
* ``hwa``: hardware-aware training for inference: float weights with injected
  weight noise and the read periphery emulated in the forward pass, then
  :func:`xbarsim.training.program` writes them into arrays (with programming noise)
  for every evaluation.

The data order of epoch ``e`` is a permutation drawn from ``(seed, e)``, so a
run resumed from its end-of-epoch checkpoint is bit-identical to an
uninterrupted one.

A run whose loss stops being finite (NaN or inf outputs) raises
:class:`TrainingDiverged` naming the epoch and the first such batch; no
checkpoint is written after it, so the last one is the last good epoch's.  The
autograd loop checks every batch; the compiled MLP loop returns one loss sum
per call, so it is called :data:`DIVERGENCE_CHUNK` batches at a time and a
non-finite chunk is replayed from its saved state one batch per call.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from xbarsim.crossbar import IOConfig, UpdateConfig
from xbarsim.devices import device_from_name, device_names
from xbarsim.devices.validation import Serialisable, require_bool, require_choice, require_number
from xbarsim.experiments.train_presets import PRESETS
from xbarsim.mapping import AnalogConfig, AnalogLayer, convert_to_analog
from xbarsim.training import AnalogSGD, MLPStep, convert_to_hwa, program

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "step")
ACTIVATIONS = ("sigmoid", "tanh")
REFERENCE_MODES = ("none", "zero", "symmetry_point")
REFERENCE_PLACEMENTS = ("per_weight", "shared_column")


@dataclass(frozen=True)
class TrainConfig(Serialisable):
    config_name = "train"
    """Everything that defines one training run (JSON round-trip via to_dict/from_dict).

    ``device_params``, ``io_params`` and ``update_params`` override fields of the
    device model, :class:`xbarsim.crossbar.IOConfig` and :class:`xbarsim.crossbar.UpdateConfig`
    (aihwkit names).  ``lr_schedule="step"`` multiplies the learning rate by
    ``lr_gamma`` every ``lr_step_epochs`` epochs.  ``train_subset``/``test_subset``
    (0 = all) take the first N samples of a fixed seeded permutation.
    """

    device: str = "SoftBounds"
    device_params: dict = field(default_factory=dict)
    io_params: dict = field(default_factory=dict)
    update_params: dict = field(default_factory=dict)
    hidden: tuple = (256, 128)
    activation: str = "sigmoid"
    epochs: int = 10
    batch_size: int = 10
    lr: float = 0.1
    lr_schedule: str = "step"
    lr_step_epochs: int = 4
    lr_gamma: float = 0.5
    fp: bool = False
    hwa: bool = False
    hwa_weight_noise: float = 0.02
    programming_noise: float = 0.02
    reference: str = "none"
    reference_placement: str = "per_weight"
    reference_ideal: bool = False
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    train_subset: int = 0
    test_subset: int = 0
    return_weights: bool = False

    def __post_init__(self) -> None:
        n = "train"
        if self.device not in device_names() and self.device.lower() not in [d.lower() for d in device_names()]:
            raise ValueError(f"{n}.device = {self.device!r} is unknown; choose one of {device_names()}")
        for name in ("device_params", "io_params", "update_params"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{n}.{name} must be a table of field = value, got {getattr(self, name)!r}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for k, h in enumerate(self.hidden):
            require_number(n, f"hidden[{k}]", h, 1, 65536, integer=True)
        require_choice(n, "activation", self.activation, ACTIVATIONS)
        require_number(n, "epochs", self.epochs, 1, 10_000, integer=True)
        require_number(n, "batch_size", self.batch_size, 1, 1_000_000, integer=True)
        require_number(n, "lr", self.lr, 0.0, 1e3, lo_open=True)
        require_choice(n, "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        require_number(n, "lr_step_epochs", self.lr_step_epochs, 1, 10_000, integer=True)
        require_number(n, "lr_gamma", self.lr_gamma, 0.0, 1.0, lo_open=True)
        for name in ("fp", "hwa", "reference_ideal", "return_weights"):
            require_bool(n, name, getattr(self, name))
        if self.fp and self.hwa:
            raise ValueError(f"{n}: fp and hwa are exclusive (fp is the floating-point baseline)")
        require_number(n, "hwa_weight_noise", self.hwa_weight_noise, 0.0, 10.0)
        require_number(n, "programming_noise", self.programming_noise, 0.0, 10.0)
        require_choice(n, "reference", self.reference, REFERENCE_MODES)
        require_choice(n, "reference_placement", self.reference_placement, REFERENCE_PLACEMENTS)
        require_choice(n, "dataset", self.dataset, ("fashion-mnist", "mnist"))
        require_number(n, "train_subset", self.train_subset, 0, None, integer=True)
        require_number(n, "test_subset", self.test_subset, 0, None, integer=True)
        # built once, here, which validates the device/io/update overrides, naming the bad field
        device = device_from_name(self.device, **self.device_params)
        io = _replace_fields(IOConfig(), self.io_params, "io")
        update = _replace_fields(UpdateConfig(), self.update_params, "update")
        object.__setattr__(self, "_analog", AnalogConfig(device=device, io=io, update=update,
                                                         hwa_weight_noise=self.hwa_weight_noise,
                                                         programming_noise=self.programming_noise))

    # ------------------------------------------------------------------
    def analog_config(self) -> AnalogConfig:
        """The run's analog config (built once, in ``__post_init__``; configs are frozen)."""
        return self._analog

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d



def _replace_fields(obj: Any, changes: dict, label: str) -> Any:
    known = {f.name for f in dataclasses.fields(obj)}
    for k in changes:
        if k not in known:
            raise ValueError(f"{label} has no parameter {k!r}; known: {sorted(known)}")
    return dataclasses.replace(obj, **changes)


TRAIN_PARAM_SCHEMA = {f.name: f for f in dataclasses.fields(TrainConfig)}


def preset_config(preset: str = "default", **overrides: Any) -> TrainConfig:
    if preset not in PRESETS:
        raise ValueError(f"train preset {preset!r} is unknown; choose one of {sorted(PRESETS)}")
    params = copy.deepcopy(PRESETS[preset])
    params.update(overrides)
    return TrainConfig.from_dict(params)


# ---------------------------------------------------------------------- model
def build_mlp(config: TrainConfig, seed: int) -> nn.Module:
    """784-hidden...-10 MLP (float), initialised from ``seed`` like ``nn.Linear``.

    Hidden units are ``sigmoid`` (the in-situ benchmark's choice; outputs >= 0) or
    ``tanh`` (signed outputs, which changes how a drift of all weights toward a
    non-zero symmetry point acts on the next layer).
    """
    torch.manual_seed(seed)
    sizes = (784, *config.hidden, 10)
    act = nn.Sigmoid if config.activation == "sigmoid" else nn.Tanh
    layers: list[nn.Module] = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        layers.append(act() if k < len(sizes) - 2 else nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


def build_model(config: TrainConfig, seed: int) -> tuple[nn.Module, dict]:
    """The network for the run's mode (float, HWA, or analog in-situ) and its reference stats.

    With ``reference != "none"`` the references are programmed before training
    (:func:`xbarsim.mapping.reference.apply_reference`); the second value holds, per layer, the
    programming statistics it returns (measurement pairs, programming error, ...).
    """
    model = build_mlp(config, seed)
    if config.fp:
        return model, {}
    analog = config.analog_config()
    if config.hwa:
        return convert_to_hwa(model, analog, seed=seed), {}
    model = convert_to_analog(model, analog, seed=seed)
    stats: dict = {}
    if config.reference != "none":
        from xbarsim.mapping.reference import ReferenceConfig, apply_reference
        ref = ReferenceConfig(mode=config.reference, placement=config.reference_placement,
                              ideal=config.reference_ideal)
        stats = apply_reference(model, ref, seed=seed)
    return model, stats


def analog_layers(model: nn.Module) -> list[tuple[str, AnalogLayer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AnalogLayer)]


# ----------------------------------------------------------------------- data
@dataclass
class TrainData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    is_subset: bool


def load_train_data(config: TrainConfig) -> TrainData:
    from xbarsim.experiments.data.datasets import load_dataset  # experiments is the layer that knows files
    bundle = load_dataset(config.dataset, data_dir=config.data_dir, flatten=True)
    xs, ys = bundle.train_images, bundle.train_labels
    xt, yt = bundle.test_images, bundle.test_labels
    pick = np.random.default_rng(12345)
    if config.train_subset and config.train_subset < len(ys):
        idx = torch.from_numpy(np.sort(pick.permutation(len(ys))[: config.train_subset]))
        xs, ys = xs[idx], ys[idx]
    if config.test_subset and config.test_subset < len(yt):
        idx = torch.from_numpy(np.sort(pick.permutation(len(yt))[: config.test_subset]))
        xt, yt = xt[idx], yt[idx]
    return TrainData(xs.contiguous(), ys, xt.contiguous(), yt, bundle.source, bundle.is_subset)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Order of the training samples in ``epoch`` (a pure function of seed and epoch)."""
    return torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(n))


# ------------------------------------------------------------------- training
def learning_rate(config: TrainConfig, epoch: int) -> float:
    if config.lr_schedule == "step":
        return config.lr * config.lr_gamma ** (epoch // config.lr_step_epochs)
    return config.lr


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Test accuracy through the model's (analog) forward reads."""
    model.eval()
    correct = 0
    for k in range(0, len(y), batch_size):
        out = model(x[k:k + batch_size])
        correct += int((out.argmax(1) == y[k:k + batch_size]).sum())
    model.train()
    return correct / max(len(y), 1)


def _inference_model(model: nn.Module, config: TrainConfig, seed: int, epoch: int) -> nn.Module:
    if config.hwa:
        import copy
        return program(copy.deepcopy(model), config.analog_config(), seed=seed + 7919 * (epoch + 1))
    return model


def _pulse_stats(model: nn.Module) -> dict:
    stats = {}
    for name, layer in analog_layers(model):
        c = layer.counters
        pulses = np.asarray(c["pulses"])
        stats[name] = {"pulse_total": int(c["pulse_total"]), "pulses_per_cell_mean": float(pulses.mean()),
                       "pulses_per_cell_max": int(pulses.max()), "updates": int(c["updates"]),
                       "forward_mvm": int(c["forward_mvm"]), "backward_mvm": int(c["backward_mvm"])}
    return stats


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.fp or config.hwa:
        return torch.optim.SGD(model.parameters(), lr=config.lr)
    return AnalogSGD(model.parameters(), lr=config.lr)


class TrainingDiverged(RuntimeError):
    """Training stopped: a batch's loss was not finite (NaN or inf: the network's outputs were).

    ``epoch`` and ``batch`` are 0-based (the message counts from 1); ``history``
    holds the curves of the epochs before (set by :func:`run_train`), and
    ``last_good_epoch`` the epoch whose end-of-epoch checkpoint is the last one
    written (``None``: the run diverged in its first epoch).
    """

    def __init__(self, epoch: int, epochs: int, batch: int, batches: int, loss: float):
        super().__init__(f"training diverged: non-finite loss ({loss}) in epoch {epoch + 1} of {epochs}, "
                         f"batch {batch + 1} of {batches}")
        self.epoch, self.batch, self.loss = epoch, batch, loss
        self.history: dict = {}
        self.last_good_epoch: int | None = None


#: batches per compiled call of :meth:`MLPStep.train_batches`; its loss sum is checked after each
DIVERGENCE_CHUNK = 200


def _train_epoch_autograd(model, opt, loss_fn, xs, ys, bs: int, on_batch, epoch: int, epochs: int) -> float:
    """One epoch batch by batch through autograd; returns sum of loss x batch length."""
    n, loss_sum = len(ys), 0.0
    for b, k in enumerate(range(0, n, bs)):
        opt.zero_grad(set_to_none=True)
        out = model(xs[k:k + bs])
        loss = loss_fn(out, ys[k:k + bs])
        value = float(loss.detach())
        if not math.isfinite(value):  # before the step: the arrays keep the last finite update
            raise TrainingDiverged(epoch, epochs, b, math.ceil(n / bs), value)
        loss.backward()
        opt.step()
        loss_sum += value * min(bs, n - k)
        if on_batch is not None:
            on_batch()
    return loss_sum


def _train_epoch_fused(fused, model, xs, ys, bs: int, on_batch, epoch: int, epochs: int) -> float:
    """One epoch through :meth:`MLPStep.train_batches`, :data:`DIVERGENCE_CHUNK` batches per call.

    The compiled loop returns only a chunk's loss sum.  When it is not finite, the
    state from before the chunk is restored and the chunk is replayed one batch
    per call (bit-identical, the random streams are part of the state) to name the
    first batch whose loss was not finite.
    """
    n, loss_sum = len(ys), 0.0
    step = DIVERGENCE_CHUNK * bs
    for start in range(0, n, step):
        before = copy.deepcopy(model.state_dict())
        chunk = fused.train_batches(xs[start:start + step], ys[start:start + step], bs, on_batch=on_batch)
        if not math.isfinite(chunk):
            model.load_state_dict(before)
            for k in range(start, min(start + step, n), bs):
                value = fused.train_batches(xs[k:k + bs], ys[k:k + bs], bs) / min(bs, n - k)
                if not math.isfinite(value):
                    raise TrainingDiverged(epoch, epochs, k // bs, math.ceil(n / bs), value)
            raise TrainingDiverged(epoch, epochs, start // bs, math.ceil(n / bs), chunk)  # not reproduced
        loss_sum += chunk
    return loss_sum


def _clipping(model: nn.Module) -> dict:
    """``{layer: {"clipped": cells clipped when programmed, "cells": cells}}`` of the analog layers."""
    return {name: {"clipped": int(getattr(layer, "clipped_at_programming", 0)),
                   "cells": int(layer.array.rows * layer.array.cols)} for name, layer in analog_layers(model)}


def run_train(params: dict | TrainConfig, seed: int = 0, progress: bool = False,
              checkpoint_path: str | None = None, resume: bool = False,
              on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train one network and return its curves.

    Args:
        params: a :class:`TrainConfig` or a dict of its fields (unknown keys raise).
        seed: seeds the initial weights, the arrays' d2d variation and every random
            stream, and the data order.
        progress: show a tqdm bar over the batches of each epoch.
        checkpoint_path: write model/optimizer state there after every epoch.
        resume: continue from ``checkpoint_path`` if it exists.
        on_epoch: called as ``on_epoch(epoch, history)`` after every epoch.

    Returns a JSON-able dict: ``test_acc``, ``train_loss``, ``epoch_seconds``, ``lr``
    (per epoch), ``final_test_acc``, ``pulses`` (per layer), ``clipped_at_programming``
    (per analog layer: cells clipped to the device bounds when the weights were
    programmed, at conversion or, with ``hwa``, at the last evaluation's
    programming), ``data_source``, and with ``return_weights`` the final
    effective weights per layer (lists).

    Raises :class:`TrainingDiverged` at the first batch whose loss is not finite
    (the end-of-epoch checkpoint of the epoch before is the last one written).
    """
    config = params if isinstance(params, TrainConfig) else TrainConfig.from_dict(dict(params))
    require_number("run_train", "seed", seed, 0, 2**31 - 1, integer=True)
    threads = torch.get_num_threads()
    # torch's ops here are tiny (batch-sized); its OpenMP pool would only compete with
    # the numba kernels for the cores
    torch.set_num_threads(1)
    try:
        return _run_train(config, seed, progress, checkpoint_path, resume, on_epoch)
    finally:
        torch.set_num_threads(threads)


def _run_train(config: TrainConfig, seed: int, progress: bool, checkpoint_path: str | None, resume: bool,
               on_epoch: Callable[[int, dict], None] | None) -> dict:
    data = load_train_data(config)
    model, reference_stats = build_model(config, seed)
    clipping = _clipping(model)
    opt = make_optimizer(model, config)
    history: dict[str, list] = {"test_acc": [], "train_loss": [], "epoch_seconds": [], "lr": []}
    start_epoch = 0
    if resume and checkpoint_path is not None:
        import os
        if os.path.exists(checkpoint_path):
            ckpt = torch.load(checkpoint_path, weights_only=True)
            if ckpt["config"] != config.to_dict() or ckpt["seed"] != seed:
                raise ValueError(f"checkpoint {checkpoint_path} was written by a different configuration or "
                                 f"seed; refusing to resume (delete it or use another --out)")
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            history = ckpt["history"]
            start_epoch = ckpt["epoch"] + 1
            log.info("resumed from %s after epoch %d", checkpoint_path, start_epoch)
    loss_fn = nn.NLLLoss()
    fused = MLPStep.build(model, loss_fn, opt)
    n = len(data.y_train)
    bs = config.batch_size
    for epoch in range(start_epoch, config.epochs):
        lr = learning_rate(config, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        perm = epoch_permutation(n, seed, epoch)
        xs, ys = data.x_train[perm], data.y_train[perm]
        batches = range(0, n, bs)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
                       mininterval=0.5, disable=None)  # None: no bar when stderr is not a terminal
        on_batch = None if bar is None else bar.update
        try:
            if fused is not None:  # same numbers as the autograd loop below, without its overhead
                loss_sum = _train_epoch_fused(fused, model, xs, ys, bs, on_batch, epoch, config.epochs)
            else:
                loss_sum = _train_epoch_autograd(model, opt, loss_fn, xs, ys, bs, on_batch, epoch, config.epochs)
        except TrainingDiverged as exc:
            exc.history = history
            exc.last_good_epoch = epoch - 1 if epoch > 0 else None
            raise
        finally:
            if bar is not None:
                bar.close()
        train_seconds = time.perf_counter() - t0
        inference = _inference_model(model, config, seed, epoch)
        if config.hwa:  # programmed anew for every evaluation: the last programming is recorded
            clipping = _clipping(inference)
        acc = evaluate(inference, data.x_test, data.y_test)
        history["test_acc"].append(acc)
        history["train_loss"].append(loss_sum / n)
        history["epoch_seconds"].append(train_seconds)
        history["lr"].append(lr)
        if checkpoint_path is not None:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "history": history,
                        "epoch": epoch, "config": config.to_dict(), "seed": seed}, checkpoint_path)
        if on_epoch is not None:
            on_epoch(epoch, history)
    result: dict[str, Any] = dict(history)
    result["final_test_acc"] = history["test_acc"][-1] if history["test_acc"] else math.nan
    result["pulses"] = _pulse_stats(model)
    result["reference"] = reference_stats
    result["clipped_at_programming"] = clipping
    result["data_source"] = data.source
    result["data_is_subset"] = data.is_subset
    if config.return_weights:
        result["weights"] = {name: layer.array.get_weights().tolist() for name, layer in analog_layers(model)}
    return result


def run_train_task(params: dict, seed: int) -> dict:
    """Sweep entry point: :func:`run_train` without the model, JSON-able only."""
    out = run_train(params, seed)
    out["pulses_json"] = json.dumps(out.pop("pulses"))
    out["reference_json"] = json.dumps(out.pop("reference"), default=float)
    out["clipped_at_programming_json"] = json.dumps(out.pop("clipped_at_programming"))
    out.pop("weights", None)
    return out
