r"""Deploy a trained network on drifting conductances: program once, read at any time, compensate drift.

:func:`program` takes a torch model (its ``nn.Linear`` / ``nn.Conv2d`` layers, or
the :class:`~xbarsim.mapping.AnalogLinear` / :class:`~xbarsim.mapping.AnalogConv2d`
layers of a model converted with :func:`~xbarsim.mapping.convert_to_analog`) and
a conductance-over-time model (:class:`~xbarsim.devices.PCMLikeDrift`,
:class:`~xbarsim.devices.RRAMRelaxation`), and returns a
:class:`DeployedNetwork`; :meth:`DeployedNetwork.drift_to` then writes the
weights read ``t`` seconds after programming into (a copy of) the model.

**Weights to conductances** (aihwkit's ``SinglePairConductanceConverter``, here
with the model's ``g_min`` for a zero weight): a layer's ``(out, in)`` matrix
``W`` with ``w_max = max |W|`` becomes a differential pair per weight,

    g+ = g_min + (g_max - g_min) max(W, 0) / w_max,    g- = g_min + (g_max - g_min) max(-W, 0) / w_max,

and a read gives ``W(t) = (g+(t) - g-(t)) w_max / (g_max - g_min)``.  (aihwkit maps
its CMO RRAM model onto a single device per weight; a pair is used here for both
models, so a level-independent relaxation shift cancels in the difference.)

**Drift compensation** (aihwkit's ``GlobalDriftCompensation`` and
``PerColumnDriftCompensation``, ``aihwkit/inference/compensation/drift.py``):
right after programming each layer reads a known input set, the one-hot vectors
``e_1 .. e_in``; the reference is the mean absolute output, over everything
(``global``) or per output column (``per_column``).  At read time ``t`` the same
read gives ``r(t)`` and the digital output is multiplied by ``alpha = r(0) / r(t)``
(clamped below at 1e-4 as aihwkit does).  The scale applies to the analog
product only (the bias is digital), so it is folded into the written weight rows.
aihwkit's documentation describes an all-ones input; its code, followed here,
uses the one-hot set.

**IR drop** (:class:`IRDropConfig`): ``solve`` places each layer on tiles of
``array_size`` rows (inputs) by ``array_size`` columns (``array_size / 2`` weight
pairs, ``G+`` and ``G-`` in neighbouring columns) in the top-left corner of an
``array_size`` x ``array_size`` array (drivers on the left, sense amplifiers at
the bottom), solves each tile's resistive network exactly
(:mod:`xbarsim.crossbar.ir_drop`, conductances in units of ``g_max`` and
resistances in units of the on-resistance ``1/g_max``), and since the network is
linear writes the resulting effective weights; partial sums of row tiles add
digitally.  ``approx`` applies aihwkit's input-dependent correction
(:mod:`xbarsim.crossbar.ir_drop_approx`) per row tile at read time, with
``g_ratio = 1 / r_wire`` and inputs scaled by their absolute maximum (aihwkit's
default noise management); its compensation reference is read without the
correction (the correction depends on the inputs).

Randomness: programming of layer ``k`` draws from ``(seed, k, 0)``, the read at
time ``t`` from ``(seed, k, 1, round(t * 1000))``; the same seed gives the same
weights at the same time in any call order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar.ir_drop import WireParasitics, transfer_matrix
from xbarsim.crossbar.ir_drop_approx import ir_drop_approx
from xbarsim.devices.conductance_time import ConductanceTimeModel
from xbarsim.devices.validation import Serialisable, require_choice, require_number

from .layers import AnalogConv2d, AnalogLayer, AnalogLinear

__all__ = ["IRDropConfig", "DeployedNetwork", "program", "COMPENSATIONS"]

COMPENSATIONS = ("none", "global", "per_column")
_MIN_READOUT = 1e-4


@dataclass(frozen=True)
class IRDropConfig(Serialisable):
    """IR drop on read: ``none``, ``approx`` (aihwkit's model) or ``solve`` (the network).

    Fields:
        mode: ``none``, ``approx`` or ``solve``.
        array_size: rows and columns of one physical array (a tile), >= 2 and even.
        r_wire: wire-segment resistance relative to the cell's on-resistance ``1/g_max``.
        r_source, r_load: driver and sense-node resistance, same units (``solve`` only).
        ir_drop: aihwkit's dimensionless ``ir_drop`` scale (``approx`` only).
    """

    mode: str = "none"
    array_size: int = 256
    r_wire: float = 1e-4
    r_source: float = 0.0
    r_load: float = 0.0
    ir_drop: float = 1.0

    def __post_init__(self) -> None:
        n = "IRDropConfig"
        require_choice(n, "mode", self.mode, ("none", "approx", "solve"))
        require_number(n, "array_size", self.array_size, 2, None, integer=True)
        if self.array_size % 2:
            raise ValueError(f"{n}.array_size = {self.array_size} must be even (weight pairs share an array)")
        require_number(n, "r_wire", self.r_wire, 0.0, None, lo_open=True)
        require_number(n, "r_source", self.r_source, 0.0, None)
        require_number(n, "r_load", self.r_load, 0.0, None)
        require_number(n, "ir_drop", self.ir_drop, 0.0, None)


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    kinds = (nn.Linear, nn.Conv2d, AnalogLinear, AnalogConv2d)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


def _matrix(m: nn.Module) -> np.ndarray:
    if isinstance(m, AnalogLayer):
        w, _ = m.get_weights()
    else:
        w = m.weight.detach()
    return w.reshape(w.shape[0], -1).to(torch.float64).numpy().copy()


def _write(m: nn.Module, w: np.ndarray) -> None:
    if isinstance(m, AnalogLayer):
        w_old, b = m.get_weights()
        m.set_weights(torch.from_numpy(w.reshape(w_old.shape)).float(), b)
    else:
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(w.reshape(m.weight.shape)).to(m.weight.dtype))


def _readout(w: np.ndarray, how: str) -> np.ndarray | float:
    """aihwkit's drift readout of the one-hot input set: outputs ``W e_j`` are the columns of ``W``."""
    a = np.abs(w)
    if how == "global":
        return max(float(a.mean()), _MIN_READOUT)
    return np.maximum(a.mean(axis=1), _MIN_READOUT)


class _DeployedLayer:
    def __init__(self, index: int, name: str, module: nn.Module, noise: ConductanceTimeModel, seed: int):
        self.index, self.name, self.module = index, name, module
        self.w_target = _matrix(module)
        self.w_max = float(np.abs(self.w_target).max()) or 1.0
        span = noise.g_max - noise.g_min
        self.g_per_w = span / self.w_max
        g_plus = noise.g_min + self.g_per_w * np.maximum(self.w_target, 0.0)
        g_minus = noise.g_min + self.g_per_w * np.maximum(-self.w_target, 0.0)
        rng = np.random.default_rng([seed, index, 0])
        self.cells = (noise.program(g_plus, rng), noise.program(g_minus, rng))


class DeployedNetwork:
    """A model whose analog layers were programmed once; :meth:`drift_to` reads them at time ``t``.

    Build it with :func:`program`.  ``model`` is the deployed copy whose weights
    :meth:`drift_to` overwrites; ``reference`` holds each layer's compensation
    reference (read right after programming).
    """

    def __init__(self, model: nn.Module, noise: ConductanceTimeModel, seed: int, compensation: str,
                 ir_drop: IRDropConfig):
        require_choice("program", "compensation", compensation, COMPENSATIONS)
        self.model, self.noise, self.seed = model, noise, int(seed)
        self.compensation, self.ir_drop = compensation, ir_drop
        layers = _layers(model)
        if not layers:
            raise ValueError("program: the model has no nn.Linear / nn.Conv2d (or analog) layer to deploy")
        self.layers = [_DeployedLayer(k, name, m, noise, self.seed) for k, (name, m) in enumerate(layers)]
        self._hooks: list = []
        self.reference = [_readout(self._read(layer, 0.0), compensation) if compensation != "none" else 1.0
                          for layer in self.layers]
        self.t: Optional[float] = None

    # -- one layer's read --------------------------------------------------------------
    def _conductances(self, layer: _DeployedLayer, t: float) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, layer.index, 1, int(round(t * 1000.0))])
        plus, minus = layer.cells
        return self.noise.at_time(plus, t, rng), self.noise.at_time(minus, t, rng)

    def _read(self, layer: _DeployedLayer, t: float) -> np.ndarray:
        """The layer's effective ``(out, in)`` matrix at time ``t`` (IR drop included for ``solve``)."""
        g_plus, g_minus = self._conductances(layer, t)
        if self.ir_drop.mode != "solve":
            return (g_plus - g_minus) / layer.g_per_w
        return self._solved_matrix(g_plus, g_minus) * self.noise.g_max / layer.g_per_w

    def _solved_matrix(self, g_plus: np.ndarray, g_minus: np.ndarray) -> np.ndarray:
        """``T+ - T-`` tile by tile; conductances in units of ``g_max``, so the result is too."""
        cfg = self.ir_drop
        par = WireParasitics(cfg.r_wire, cfg.r_source, cfg.r_load)
        n_out, n_in = g_plus.shape
        pairs = cfg.array_size // 2
        out = np.zeros((n_out, n_in))
        for r0 in range(0, n_in, cfg.array_size):
            r1 = min(r0 + cfg.array_size, n_in)
            for c0 in range(0, n_out, pairs):
                c1 = min(c0 + pairs, n_out)
                tile = np.zeros((cfg.array_size, 2 * (c1 - c0)))
                tile[: r1 - r0, 0::2] = g_plus[c0:c1, r0:r1].T / self.noise.g_max
                tile[: r1 - r0, 1::2] = g_minus[c0:c1, r0:r1].T / self.noise.g_max
                t = transfer_matrix(tile, par)[:, : r1 - r0]
                out[c0:c1, r0:r1] = t[0::2] - t[1::2]
        return out

    # -- the public face ---------------------------------------------------------------
    def drift_to(self, t: float) -> nn.Module:
        """Write the weights read ``t`` seconds after programming (compensated) into :attr:`model`; return it."""
        require_number("drift_to", "t", t, 0.0, None)
        self._remove_hooks()
        for layer, ref in zip(self.layers, self.reference):
            w = self._read(layer, float(t))
            alpha = 1.0
            if self.compensation != "none":
                alpha = ref / _readout(w, self.compensation)
            w_comp = w * (alpha[:, None] if isinstance(alpha, np.ndarray) else alpha)
            _write(layer.module, w_comp)
            if self.ir_drop.mode == "approx":
                self._hooks.append(layer.module.register_forward_hook(self._approx_hook(layer, w_comp)))
        self.t = float(t)
        return self.model

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _approx_hook(self, layer: _DeployedLayer, w: np.ndarray):
        cfg = self.ir_drop
        w_t = torch.from_numpy(w)

        def hook(module, inputs, output):
            x = inputs[0]
            if isinstance(module, (nn.Conv2d, AnalogConv2d)):
                cols = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding,
                                stride=module.stride)                       # (N, K, L)
                x2 = cols.transpose(1, 2).reshape(-1, cols.shape[1])
            else:
                x2 = x.reshape(-1, x.shape[-1])
            y2 = _approx_read(x2.to(torch.float64), w_t, cfg).to(output.dtype)
            bias = getattr(module, "bias", None)
            if bias is not None:
                y2 = y2 + bias.detach()
            if isinstance(module, (nn.Conv2d, AnalogConv2d)):
                n, _, h, wd = output.shape
                return y2.reshape(n, h * wd, -1).transpose(1, 2).reshape(output.shape)
            return y2.reshape(output.shape)

        return hook


def _approx_read(x: torch.Tensor, w: torch.Tensor, cfg: IRDropConfig) -> torch.Tensor:
    """aihwkit's approximate IR drop per row tile, with abs-max input scaling and weights in units of max|W|."""
    w_max = float(w.abs().max()) or 1.0
    out = torch.zeros(x.shape[0], w.shape[0], dtype=torch.float64)
    for r0 in range(0, w.shape[1], cfg.array_size):
        xs, ws = x[:, r0:r0 + cfg.array_size], w[:, r0:r0 + cfg.array_size] / w_max
        scale = xs.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        y = ir_drop_approx(ws.numpy(), (xs / scale).numpy(), cfg.ir_drop, g_ratio=1.0 / cfg.r_wire)
        out += torch.from_numpy(y) * scale * w_max
    return out


def program(model: nn.Module, noise: ConductanceTimeModel, seed: int = 0, compensation: str = "none",
            ir_drop: Optional[IRDropConfig] = None, copy_model: bool = True) -> DeployedNetwork:
    """Program ``model``'s layers onto cells of ``noise`` and read the drift reference; returns the deployment.

    ``copy_model`` (default) deploys a deep copy, leaving ``model`` as trained.
    Call :meth:`DeployedNetwork.drift_to` for the weights at a time ``t >= 0``
    (``drift_to(0)`` reads right after programming).
    """
    if not isinstance(noise, ConductanceTimeModel):
        raise ValueError(f"program: noise must be a ConductanceTimeModel (e.g. PCMLikeDrift()), got {noise!r}")
    net = copy.deepcopy(model) if copy_model else model
    return DeployedNetwork(net, noise, seed, compensation, ir_drop or IRDropConfig())

