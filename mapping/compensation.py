r"""CorrectNet-style compensation units: small digital blocks that correct an analog layer's output.

A compensation unit is attached to one analog layer (``nn.Linear`` / ``nn.Conv2d``)
and computes, in exact digital arithmetic, a low-rank correction that is added to
the layer's (analog, varied) output:

.. math::
    y' = \mathrm{layer}(x) + U\,V\,z, \qquad U \in \mathbb{R}^{C_{out}\times r},\;
    V \in \mathbb{R}^{r\times n_z}

``source = "input"`` (default): :math:`z` is the layer's input -- for a convolution
``V`` is an ``r``-channel convolution with the layer's kernel, stride, padding and
dilation and ``U`` a 1x1 convolution, a digital rank-``r`` path parallel to the
analog layer; ``source = "output"``: :math:`z` is the layer's output -- ``V`` and ``U``
are 1x1 convolutions (linear maps over the output features).  ``U`` starts at
zero, so a freshly attached unit is the identity on the layer (changes nothing);
``V`` starts as ``N(0, 1/n_z)``.  The units are trained under injected variations
with the analog weights frozen (:func:`xbarsim.training.compensate.train_compensation`).

Overhead of a unit on a layer with ``P`` output positions (1 for linear):

* ``input``: parameters :math:`r(n_{in} + C_{out})`, MACs per image :math:`P\,r(n_{in} + C_{out})`,
  :math:`n_{in} = C_{in} k_h k_w` (or ``in_features``);
* ``output``: parameters :math:`2 r C_{out}`, MACs :math:`2 P r C_{out}`;

with :math:`r = \min(\text{rank}, C_{out}, n_z)` (a larger rank adds nothing), reported
relative to the network's parameters and to its analog layers' MACs
(:math:`\sum P\,n_{in} C_{out}`) by :func:`compensation_overhead`.
The CorrectNet paper (Eldebiky et al., DATE 2023) gives no exact unit; this one is reconstructed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.devices.validation import Serialisable, require_choice, require_number

from .introspect import trace_modules
from .nonideal import analog_layers

__all__ = ["CompensationConfig", "CompensationUnit", "CompensatedLayer", "LayerProfile", "profile_layers",
           "add_compensation", "compensation_parameters", "unit_cost", "compensation_overhead",
           "fit_rank_to_budget"]

SOURCES = ("input", "output")


@dataclass(frozen=True)
class CompensationConfig(Serialisable):
    """``rank``: the width of the digital path (channels / features), capped per layer at ``min(C_out, n_z)``;
    ``source``: ``input`` or ``output``."""

    rank: int = 2
    source: str = "input"

    def __post_init__(self) -> None:
        require_number("CompensationConfig", "rank", self.rank, 1, 4096, integer=True)
        require_choice("CompensationConfig", "source", self.source, SOURCES)


@dataclass(frozen=True)
class LayerProfile:
    """One analog layer's shape: ``kind`` (``conv``/``linear``), ``fan_in`` (``C_in k_h k_w``), ``fan_out``,
    ``in_channels``, ``kernel`` (``k_h k_w``, 1 for linear), ``positions`` (output positions per image),
    ``params`` (weights + bias) and ``macs`` per image (``positions fan_in fan_out``)."""

    name: str
    kind: str
    fan_in: int
    fan_out: int
    in_channels: int
    kernel: int
    positions: int
    params: int
    macs: int

    def to_dict(self) -> dict:
        return asdict(self)


def profile_layers(model: nn.Module, input_shape: Sequence[int]) -> List[LayerProfile]:
    """Profiles of every analog layer, from one forward pass of a zero input of shape ``(1, *input_shape)``."""
    layers = analog_layers(model)
    selected = {id(m) for _, m in layers}
    positions = dict(trace_modules(model, tuple(input_shape), lambda m: id(m) in selected,
                                   lambda name, m, inp, y: (id(m), int(y[0].numel() // y.shape[1]))))
    out = []
    for name, m in layers:
        w = m.weight
        fan_in = int(w[0].numel())
        kernel = int(math.prod(m.kernel_size)) if isinstance(m, nn.Conv2d) else 1
        in_ch = int(m.in_channels) if isinstance(m, nn.Conv2d) else int(m.in_features)
        p = positions.get(id(m), 1)
        params = int(w.numel() + (0 if m.bias is None else m.bias.numel()))
        out.append(LayerProfile(name, "conv" if isinstance(m, nn.Conv2d) else "linear", fan_in, int(w.shape[0]),
                                in_ch, kernel, p, params, p * fan_in * int(w.shape[0])))
    return out


def unit_cost(profile: LayerProfile, config: CompensationConfig) -> tuple[int, int]:
    """``(parameters, MACs per image)`` of a unit of ``config`` on the layer of ``profile``."""
    n_z = profile.fan_in if config.source == "input" else profile.fan_out
    r = min(config.rank, profile.fan_out, n_z)
    params = r * (n_z + profile.fan_out)
    return params, profile.positions * params


class CompensationUnit(nn.Module):
    """The digital low-rank block :math:`U V z` of the module docstring for one layer (``U = 0`` at init)."""

    def __init__(self, layer: nn.Module, config: CompensationConfig, generator: Optional[torch.Generator] = None):
        super().__init__()
        if type(layer) not in (nn.Linear, nn.Conv2d):
            raise ValueError(f"CompensationUnit: layer must be an nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        self.config = config
        self.conv = isinstance(layer, nn.Conv2d)
        c_out = layer.weight.shape[0]
        n_in = layer.weight[0].numel() if config.source == "input" else c_out
        r = self.rank = min(config.rank, c_out, n_in)
        if self.conv:
            self.stride, self.padding, self.dilation = layer.stride, layer.padding, layer.dilation
            v_shape = (r, layer.in_channels, *layer.kernel_size) if config.source == "input" else (r, c_out, 1, 1)
            u_shape = (c_out, r, 1, 1)
        else:
            v_shape = (r, layer.in_features if config.source == "input" else c_out)
            u_shape = (c_out, r)
        n_z = math.prod(v_shape[1:])
        self.V = nn.Parameter(torch.randn(v_shape, generator=generator) / math.sqrt(n_z))
        self.U = nn.Parameter(torch.zeros(u_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.conv:
            return F.linear(F.linear(z, self.V), self.U)
        if self.config.source == "input":
            h = F.conv2d(z, self.V, stride=self.stride, padding=self.padding, dilation=self.dilation)
        else:
            h = F.conv2d(z, self.V)
        return F.conv2d(h, self.U)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, source={self.config.source}"


class CompensatedLayer(nn.Module):
    """An analog layer (``.layer``, still the original ``nn.Linear``/``nn.Conv2d``) plus its unit (``.unit``)."""

    def __init__(self, layer: nn.Module, unit: CompensationUnit) -> None:
        super().__init__()
        self.layer = layer
        self.unit = unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x)
        return y + self.unit(x if self.unit.config.source == "input" else y)


def add_compensation(model: nn.Module, names: Iterable[str], config: CompensationConfig | Dict[str, CompensationConfig],
                     seed: int = 0) -> nn.Module:
    """Wrap the analog layers ``names`` (as in :func:`xbarsim.mapping.nonideal.analog_layers`) in place.

    ``config`` is one :class:`CompensationConfig` or one per name.  Unit ``k`` (in
    layer order) draws ``V`` from ``seed + k``.  Returns ``model``.
    """
    names = list(names)
    layers = dict(analog_layers(model))
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise ValueError(f"add_compensation: {unknown} are not analog layers of the model; known: {list(layers)}")
    order = [n for n, _ in analog_layers(model) if n in names]
    for k, name in enumerate(order):
        cfg = config[name] if isinstance(config, dict) else config
        gen = torch.Generator().manual_seed(int(seed) + k)
        wrapped = CompensatedLayer(layers[name], CompensationUnit(layers[name], cfg, gen))
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if not child:
            raise ValueError("add_compensation: cannot wrap the model itself; wrap it in a container first")
        setattr(parent, child, wrapped)
    return model


def compensation_parameters(model: nn.Module) -> List[nn.Parameter]:
    """The parameters of every compensation unit in ``model``."""
    return [p for m in model.modules() if isinstance(m, CompensationUnit) for p in m.parameters()]


def compensation_overhead(profiles: Sequence[LayerProfile], names: Iterable[str],
                          config: CompensationConfig | Dict[str, CompensationConfig],
                          model_params: Optional[int] = None) -> dict:
    """Parameters and MACs of units on ``names``, absolute and in % of the model's.

    ``model_params`` defaults to the analog layers' parameters (weights + biases);
    MACs are relative to the analog layers' MACs per image.  Returns
    ``params``, ``macs``, ``params_pct``, ``macs_pct`` and ``per_layer``.
    """
    names = set(names)
    total_params = model_params if model_params is not None else sum(p.params for p in profiles)
    total_macs = sum(p.macs for p in profiles)
    per_layer = {}
    for p in profiles:
        if p.name in names:
            cfg = config[p.name] if isinstance(config, dict) else config
            per_layer[p.name] = dict(zip(("params", "macs"), unit_cost(p, cfg)))
    params = sum(v["params"] for v in per_layer.values())
    macs = sum(v["macs"] for v in per_layer.values())
    return {"params": params, "macs": macs, "params_pct": 100.0 * params / max(total_params, 1),
            "macs_pct": 100.0 * macs / max(total_macs, 1), "per_layer": per_layer}


def fit_rank_to_budget(profiles: Sequence[LayerProfile], names: Iterable[str], config: CompensationConfig,
                       budget_pct: float, model_params: Optional[int] = None) -> CompensationConfig:
    """The largest rank ``<= config.rank`` whose parameter overhead on ``names`` is within ``budget_pct`` %
    (ranks are capped per layer, so several ranks may cost the same; the largest is returned).

    Returns rank 1 if even that exceeds the budget (the caller reports the overhead).
    """
    names = list(names)
    for r in range(config.rank, 0, -1):
        cfg = config.replace(rank=r)
        if compensation_overhead(profiles, names, cfg, model_params)["params_pct"] <= budget_pct:
            return cfg
    return config.replace(rank=1)
