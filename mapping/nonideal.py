r"""Inference nonidealities of programmed analog weights, and Monte Carlo evaluation under them.

A trained network's ``nn.Linear`` / ``nn.Conv2d`` layers (the *analog layers*: exact
types, as :func:`xbarsim.mapping.convert_to_analog` converts them) are deployed on
crossbars.  Their weights then deviate from the trained values.  Each mechanism
below is one frozen, validated config; :class:`Nonideality` combines them.

Programming time (one draw per deployed chip; ``w`` a trained weight, ``w_max =
max|W|`` of its layer, :math:`\xi, \theta` independent standard normals per weight):

1. :class:`ConductanceLevels` -- the target is rounded to one of ``n_levels``
   equally spaced signed levels: :math:`w \leftarrow \mathrm{clip}(\Delta\,\mathrm{round}(w/\Delta), \pm w_{max})`,
   :math:`\Delta = 2 w_{max}/(n-1)`;
2. :class:`LognormalVariation` -- :math:`w \leftarrow w\,e^{\theta}`, :math:`\theta\sim N(0,\sigma^2)`
   (CorrectNet's model; :math:`E[e^\theta] = e^{\sigma^2/2}`);
3. :class:`ProgrammingNoise` -- :math:`w \leftarrow w + \sigma\,w_{max}\,\xi` (the same
   equation as :class:`xbarsim.mapping.AnalogConfig`'s ``programming_noise``, which
   ``xbarsim.training.program`` applies through :func:`additive_programming_noise`);
4. :class:`StuckCells` -- with probability ``p_off`` a weight's cell is stuck at its
   off state, :math:`w = 0`; with probability ``p_on`` at its on state,
   :math:`w = \pm w_{max}` (sign +/- with probability 1/2: which cell of the
   differential pair is stuck).

Read time (fresh at every forward pass, per output element; ``x`` the layer input,
``u = s\,w_{max}`` the full-scale unit of the read with ``s = max|x|`` over the
values one output sees -- the sample for a linear layer, the receptive field for a
convolution -- i.e. aihwkit's ``abs_max`` noise management with weights scaled to
``max|W| = 1``):

5. :class:`ReadNoise` -- :math:`y \leftarrow y + \sigma_r\,u\,\xi` (IOConfig's ``out_noise``);
6. :class:`ADCQuantization` -- :math:`y \leftarrow u\,\mathrm{clip}(\delta\,\mathrm{round}(y/(u\delta)), \pm b)`,
   :math:`\delta = 2b/(2^{bits}-2)` (IOConfig's ``out_res = 1/(2^{bits}-2)``, ``out_bound = b``).

The bias is digital: it is added after the ADC.  There is no DAC quantisation and
no bound management on this fast path (a saturated output stays clipped).

Device programming (:class:`DeviceProgramming`) is the physical alternative: each
layer's weights are scaled by :math:`\alpha = \max|W| / (f\,w_{max}^{dev})` and
written by closed-loop program-and-verify (:func:`xbarsim.mapping.reference.program_cells`)
into cells of a :mod:`xbarsim.devices` model, with its device-to-device parameters and
cycle-to-cycle pulse noise; :func:`program` returns a model whose layers read them
through a :class:`xbarsim.crossbar.CrossbarArray` with the config's
:class:`xbarsim.crossbar.IOConfig` periphery and multiply the result by :math:`\alpha`
digitally.  On the fast path (:func:`sample_weights`, used for training and search)
the programmed weights are read with the IOConfig's ``out_noise`` / ``out_res`` /
``out_bound`` as in steps 5-6.

:func:`program` deploys one chip; :func:`evaluate_mc` returns the accuracy over
``n_samples`` chips (mean, std, per-chip values).  Chip ``k`` of seed ``s`` is drawn
with seed :func:`chip_seed` ``(s, k)``, so two calls with the same seed see the same chips.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import IOConfig, periphery_torch
from xbarsim.devices import DeviceConfig, IdealDevice, SoftBounds
from xbarsim.devices.validation import Serialisable, require_number

from .config import AnalogConfig
from .convert import replace_layers
from .layers import AnalogConv2d, AnalogLinear
from .reference import program_cells

__all__ = [
    "LognormalVariation", "ProgrammingNoise", "StuckCells", "ConductanceLevels", "ReadNoise", "ADCQuantization",
    "DeviceProgramming", "Nonideality", "MCResult", "analog_layers", "sample_weights", "program", "evaluate_mc",
    "read_periphery", "perturbed_forward", "layer_sensitivity", "chip_seed", "additive_programming_noise", "accuracy",
]

ANALOG_TYPES = (nn.Linear, nn.Conv2d)


# --------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class LognormalVariation(Serialisable):
    r"""Multiplicative lognormal variation :math:`w' = w\,e^{\theta}`, :math:`\theta\sim N(0,\sigma^2)` per weight.

    ``sigma``: std of :math:`\theta` (dimensionless).  CorrectNet (Eldebiky et al.,
    DATE 2023) sweeps 0.1-0.5.
    """

    sigma: float = 0.5

    def __post_init__(self) -> None:
        require_number("LognormalVariation", "sigma", self.sigma, 0.0, 5.0)


@dataclass(frozen=True)
class ProgrammingNoise(Serialisable):
    r"""Additive programming noise :math:`w' = w + \sigma\,\max|W|\,\xi` per weight (one draw per chip).

    ``sigma``: std relative to the layer's largest weight (dimensionless).
    """

    sigma: float = 0.02

    def __post_init__(self) -> None:
        require_number("ProgrammingNoise", "sigma", self.sigma, 0.0, 10.0)


@dataclass(frozen=True)
class StuckCells(Serialisable):
    r"""Stuck cells: :math:`w' = 0` with probability ``p_off``, :math:`\pm\max|W|` with probability ``p_on``.

    ``p_off``, ``p_on``: per-weight probabilities (``p_off + p_on <= 1``).
    """

    p_off: float = 0.0
    p_on: float = 0.0

    def __post_init__(self) -> None:
        require_number("StuckCells", "p_off", self.p_off, 0.0, 1.0)
        require_number("StuckCells", "p_on", self.p_on, 0.0, 1.0)
        if self.p_off + self.p_on > 1.0:
            raise ValueError(f"StuckCells.p_off + p_on = {self.p_off + self.p_on!r} must be <= 1")


@dataclass(frozen=True)
class ConductanceLevels(Serialisable):
    r"""Finite conductance levels: :math:`w' = \mathrm{clip}(\Delta\,\mathrm{round}(w/\Delta), \pm w_{max})`.

    ``n_levels``: number of signed levels spanning ``[-max|W|, max|W|]`` (>= 2),
    :math:`\Delta = 2\max|W|/(n-1)`.  An odd count contains 0.
    """

    n_levels: int = 16

    def __post_init__(self) -> None:
        require_number("ConductanceLevels", "n_levels", self.n_levels, 2, 2**24, integer=True)


@dataclass(frozen=True)
class ReadNoise(Serialisable):
    r"""Output-referred read noise at every forward: :math:`y + \sigma\,s\,\max|W|\,\xi`.

    ``sigma``: std in units of the read's full scale ``s max|W|`` (``s = max|x|`` of
    the read's inputs), as IOConfig's ``out_noise`` with weights scaled to
    ``max|W| = 1`` (aihwkit default 0.06).
    """

    sigma: float = 0.06

    def __post_init__(self) -> None:
        require_number("ReadNoise", "sigma", self.sigma, 0.0, 10.0)


@dataclass(frozen=True)
class ADCQuantization(Serialisable):
    r"""ADC: :math:`y_q = u\,\mathrm{clip}(\delta\,\mathrm{round}(y/(u\delta)), \pm b)`, :math:`\delta = 2b/(2^{bits}-2)`.

    ``bits``: signed ADC resolution (2-16).  ``out_bound``: ``b``, the clipping
    level in units of the full scale ``u = s max|W|`` (IOConfig's ``out_bound``,
    aihwkit default 12).
    """

    bits: int = 8
    out_bound: float = 12.0

    def __post_init__(self) -> None:
        require_number("ADCQuantization", "bits", self.bits, 2, 16, integer=True)
        require_number("ADCQuantization", "out_bound", self.out_bound, 0.0, None, lo_open=True)

    @property
    def step(self) -> float:
        """The ADC step in full-scale units."""
        return 2.0 * self.out_bound / (2 ** self.bits - 2)


def _default_device_io() -> IOConfig:
    return IOConfig()


@dataclass(frozen=True)
class DeviceProgramming(Serialisable):
    r"""Program-and-verify onto a device model, read through a crossbar periphery.

    Per layer: :math:`\alpha = \max|W|/(f\,w_{max})`; target :math:`G = W/\alpha`, written
    from reset by :func:`xbarsim.mapping.reference.program_cells` (stops within
    ``tolerance`` nominal ``dw_min`` or one pulse past the target) into cells with the
    device's d2d parameters; reads through ``io``; output :math:`\times\alpha` digitally.
    An :class:`xbarsim.devices.IdealDevice` is written exactly.

    Fields: ``device`` (cell model, default aihwkit's SoftBounds defaults),
    ``io`` (read periphery), ``weight_fraction`` (``f``: fraction of the device's
    ``w_max`` that the layer's largest weight is mapped to, dimensionless),
    ``tolerance`` (verify tolerance, in nominal ``dw_min``), ``max_pulses`` (per cell).
    """

    device: DeviceConfig = field(default_factory=SoftBounds)
    io: IOConfig = field(default_factory=_default_device_io)
    weight_fraction: float = 0.8
    tolerance: float = 0.5
    max_pulses: int = 20_000

    def __post_init__(self) -> None:
        if not isinstance(self.device, DeviceConfig):
            raise ValueError(f"DeviceProgramming.device must be a xbarsim.devices.DeviceConfig, got {self.device!r}")
        if not isinstance(self.io, IOConfig):
            raise ValueError(f"DeviceProgramming.io must be a xbarsim.crossbar.IOConfig, got {self.io!r}")
        require_number("DeviceProgramming", "weight_fraction", self.weight_fraction, 0.0, 1.0, lo_open=True)
        require_number("DeviceProgramming", "tolerance", self.tolerance, 0.0, None)
        require_number("DeviceProgramming", "max_pulses", self.max_pulses, 1, None, integer=True)

    def to_dict(self) -> dict:
        return {"device": self.device.to_dict(), "io": self.io.to_dict(), "weight_fraction": self.weight_fraction,
                "tolerance": self.tolerance, "max_pulses": self.max_pulses}

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceProgramming":
        d = dict(d)
        if isinstance(d.get("device"), dict):
            d["device"] = DeviceConfig.from_dict(d["device"])
        if isinstance(d.get("io"), dict):
            d["io"] = IOConfig.from_dict(d["io"])
        return super().from_dict(d)

    def device_scale(self) -> float:
        """The weight the layer's largest weight is written to (weight units of the device)."""
        if isinstance(self.device, IdealDevice):
            return self.weight_fraction
        return self.weight_fraction * min(self.device.w_max, -self.device.w_min)


_PARTS = {"levels": ConductanceLevels, "lognormal": LognormalVariation, "programming": ProgrammingNoise,
          "stuck": StuckCells, "read": ReadNoise, "adc": ADCQuantization, "device": DeviceProgramming}


@dataclass(frozen=True)
class Nonideality(Serialisable):
    """The nonidealities of one deployment; ``None`` switches a mechanism off.

    Programming-time parts apply in the order ``levels, lognormal, programming,
    stuck`` (the module docstring's steps 1-4); ``read`` and ``adc`` act at every
    forward.  ``device`` is the physical model and excludes the four
    programming-time parts; its read periphery is ``device.io``.
    """

    levels: Optional[ConductanceLevels] = None
    lognormal: Optional[LognormalVariation] = None
    programming: Optional[ProgrammingNoise] = None
    stuck: Optional[StuckCells] = None
    read: Optional[ReadNoise] = None
    adc: Optional[ADCQuantization] = None
    device: Optional[DeviceProgramming] = None

    def __post_init__(self) -> None:
        for name, cls in _PARTS.items():
            v = getattr(self, name)
            if v is not None and not isinstance(v, cls):
                raise ValueError(f"Nonideality.{name} must be None or a {cls.__name__}, got {v!r}")
        if self.device is not None:
            static = [n for n in ("levels", "lognormal", "programming", "stuck", "read", "adc")
                      if getattr(self, n) is not None]
            if static:
                raise ValueError(f"Nonideality.device excludes {static}: the device model and its io "
                                 f"periphery replace them")

    def to_dict(self) -> dict:
        return {n: (None if getattr(self, n) is None else getattr(self, n).to_dict()) for n in _PARTS}

    @classmethod
    def from_dict(cls, d: dict) -> "Nonideality":
        unknown = set(d) - set(_PARTS)
        if unknown:
            raise ValueError(f"Nonideality has no field(s) {sorted(unknown)}; known: {sorted(_PARTS)}")
        return cls(**{n: (None if v is None else _PARTS[n].from_dict(v)) for n, v in d.items()})

    @property
    def read_noise(self) -> Optional[ReadNoise]:
        """The read noise in effect (the device io's ``out_noise`` for device programming)."""
        if self.device is not None:
            io = self.device.io
            return None if io.perfect or io.out_noise == 0 else ReadNoise(sigma=io.out_noise)
        return self.read

    @property
    def read_adc(self) -> Optional[ADCQuantization]:
        """The ADC in effect (from the device io's ``out_res``/``out_bound`` for device programming)."""
        if self.device is not None:
            io = self.device.io
            if io.perfect or io.out_res <= 0:
                return None
            bits = int(round(math.log2(1.0 / io.out_res + 2.0)))
            return ADCQuantization(bits=min(max(bits, 2), 16), out_bound=io.out_bound)
        return self.adc

    @property
    def is_ideal(self) -> bool:
        return all(getattr(self, n) is None for n in _PARTS)


# --------------------------------------------------------------------------- weights
def analog_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.Linear`` / ``nn.Conv2d`` (exact types) in ``named_modules`` order."""
    return [(name, m) for name, m in model.named_modules() if type(m) in ANALOG_TYPES]


def chip_seed(seed: int, k: int) -> int:
    """Seed of Monte Carlo chip ``k`` of a run seeded ``seed`` (a fixed, documented mix)."""
    return (int(seed) * 1_000_003 + int(k) * 7_919 + 17) % (2**62)


def additive_programming_noise(w: torch.Tensor, sigma: float, w_max: torch.Tensor,
                               generator: torch.Generator) -> torch.Tensor:
    r""":math:`w + \sigma\,w_{max}\,\xi`, :math:`\xi\sim N(0,1)` per element from ``generator``."""
    return w + sigma * w_max * torch.randn(w.shape, generator=generator, dtype=w.dtype)


def _perturb(w: torch.Tensor, nonideality: Nonideality, gen: torch.Generator) -> torch.Tensor:
    """Programming-time steps 1-4 of the module docstring for one layer's weight."""
    w_max = w.detach().abs().max()  # a constant of the draw, not differentiated
    if nonideality.levels is not None:
        delta = 2.0 * w_max / (nonideality.levels.n_levels - 1)
        if delta > 0:
            w = (torch.round(w / delta) * delta).clamp(-w_max, w_max)
    if nonideality.lognormal is not None and nonideality.lognormal.sigma > 0:
        theta = torch.randn(w.shape, generator=gen, dtype=w.dtype)
        w = w * torch.exp(nonideality.lognormal.sigma * theta)
    if nonideality.programming is not None and nonideality.programming.sigma > 0:
        w = additive_programming_noise(w, nonideality.programming.sigma, w_max, gen)
    st = nonideality.stuck
    if st is not None and (st.p_off > 0 or st.p_on > 0):
        u = torch.rand(w.shape, generator=gen, dtype=w.dtype)
        sign = torch.where(torch.rand(w.shape, generator=gen) < 0.5, -1.0, 1.0).to(w.dtype)
        w = torch.where(u < st.p_off, torch.zeros_like(w), w)
        w = torch.where((u >= st.p_off) & (u < st.p_off + st.p_on), sign * w_max, w)
    return w


def _device_program_matrix(w2: torch.Tensor, dp: DeviceProgramming, array) -> float:
    """Write ``w2 / alpha`` into ``array`` by program-and-verify; returns ``alpha``."""
    w_abs = float(w2.abs().max())
    alpha = w_abs / dp.device_scale() if w_abs > 0 else 1.0
    target = (w2.double() / alpha).numpy()
    if isinstance(dp.device, IdealDevice):
        array.set_weights(target.astype(np.float32))
    else:
        seed = (array.seed * 2_654_435_761 + 12_345) % (2**62)
        written, _ = program_cells(dp.device, array.cell_params, target, seed, dp.tolerance, dp.max_pulses)
        array.set_weights(written.astype(np.float32))
    return alpha


def _device_layer(m: nn.Module, dp: DeviceProgramming, seed: int) -> "CrossbarDeployed":
    config = AnalogConfig(device=dp.device, io=dp.io)
    if type(m) is nn.Linear:
        layer = AnalogLinear(m.in_features, m.out_features, bias=m.bias is not None, config=config, seed=seed)
    else:
        layer = AnalogConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                             dilation=m.dilation, groups=m.groups, bias=m.bias is not None, config=config,
                             seed=seed)
    w2 = m.weight.detach().reshape(m.weight.shape[0], -1)
    alpha = _device_program_matrix(w2, dp, layer.array)
    if m.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(m.bias.detach() / alpha)
    return CrossbarDeployed(layer, alpha)


class CrossbarDeployed(nn.Module):
    """A layer programmed onto a crossbar (``.analog``) with weights scaled by ``1/scale``; output ``x scale``."""

    def __init__(self, analog: nn.Module, scale: float) -> None:
        super().__init__()
        self.analog = analog
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.analog(x) * self.scale

    def effective_weight(self) -> torch.Tensor:
        """The programmed weights in the trained layer's units (``scale x`` the array's)."""
        return self.analog.get_weights()[0] * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:.4g}"


def _device_weights(model: nn.Module, dp: DeviceProgramming, seed: int) -> Dict[str, torch.Tensor]:
    """Program-and-verify every analog layer (as :func:`program` does) and return the effective weights."""
    from xbarsim.crossbar import CrossbarArray  # local: only the device path needs an array
    out = {}
    for k, (name, m) in enumerate(analog_layers(model)):
        w2 = m.weight.detach().reshape(m.weight.shape[0], -1)
        arr = CrossbarArray(w2.shape[0], w2.shape[1], device=dp.device, io=IOConfig(perfect=True),
                            seed=_layer_seed(seed, k))
        alpha = _device_program_matrix(w2, dp, arr)
        # get_weights: the stored values; a device's write noise (write_noise_std) is seen on the crossbar path only
        out[_pname(name, "weight")] = torch.from_numpy(arr.get_weights()).reshape(m.weight.shape) * alpha
    return out


def _layer_seed(seed: int, k: int) -> int:
    return (int(seed) + 7_001 * (k + 1)) % (2**62)


def _pname(module_name: str, p: str) -> str:
    return f"{module_name}.{p}" if module_name else p


def sample_weights(model: nn.Module, nonideality: Nonideality, seed: int,
                   differentiable: bool = False) -> Dict[str, torch.Tensor]:
    r"""The programmed weights of one chip: ``{parameter name: tensor}`` for every analog layer's weight.

    Steps 1-4 of the module docstring (or device programming), seeded by ``seed``;
    biases are digital and unchanged.  Use with :func:`perturbed_forward`.

    ``differentiable``: keep the graph to the trained weights, for variation-aware
    training (the same draws as without it).  The gradient is that of the
    perturbation's formula: :math:`\partial w'/\partial w = e^{\theta}` for the
    lognormal step, 1 for additive noise, 0 for a stuck cell, and 0 through level
    rounding (use it without ``levels``).  Not available for device programming.
    """
    if nonideality.device is not None:
        if differentiable:
            raise ValueError("sample_weights: differentiable=True is not available for device programming")
        return _device_weights(model, nonideality.device, seed)
    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    with torch.set_grad_enabled(bool(differentiable) and torch.is_grad_enabled()):
        for name, m in analog_layers(model):
            w = m.weight if differentiable else m.weight.detach()
            out[_pname(name, "weight")] = _perturb(w, nonideality, gen)
    return out


# --------------------------------------------------------------------------- read periphery
def _full_scale(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``s = max|x|`` over the finite values each output sees: per sample (linear) or per receptive field (conv)."""
    s = _max_over_receptive_field(m, x.detach().abs())
    if not bool(torch.isfinite(s).all()):  # NaN or inf inputs: the maximum runs over the finite ones
        s = _max_over_receptive_field(m, periphery_torch.finite_abs(x))
    return s


def _max_over_receptive_field(m: nn.Module, a: torch.Tensor) -> torch.Tensor:
    if isinstance(m, nn.Conv2d):
        a = a.amax(dim=1, keepdim=True)
        if isinstance(m.padding, str):
            pad = [0, 0] if m.padding == "valid" else [d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation)]
        else:
            pad = list(m.padding)
        (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, m.stride, m.dilation
        # separable max over the receptive field: rows, then columns (same result, k instead of k^2 compares)
        a = F.max_pool2d(a, (kh, 1), (sh, 1), (pad[0], 0), (dh, 1))
        return F.max_pool2d(a, (1, kw), (1, sw), (0, pad[1]), (1, dw))
    return a.amax(dim=-1, keepdim=True)


def apply_read_periphery(m: nn.Module, x: torch.Tensor, y: torch.Tensor, read: Optional[ReadNoise],
                         adc: Optional[ADCQuantization], generator: torch.Generator,
                         w_max: torch.Tensor) -> torch.Tensor:
    """Steps 5-6 of the module docstring on the output ``y`` of analog layer ``m`` (bias added back after).

    The read noise and ADC stages of :mod:`xbarsim.crossbar.periphery_torch` (``out_noise``,
    ``out_res``, ``out_bound``) with the noise std, grid step and bound in units of the full
    scale ``u`` (``u = 0`` reads 0).  Without autograd (evaluation) it works in place on
    ``y``; with autograd the rounding is straight-through and clipping passes no gradient
    beyond the bounds.
    """
    if read is None and adc is None:
        return y
    inplace = not (torch.is_grad_enabled() and y.requires_grad)
    bias = None if m.bias is None else m.bias.detach()
    if bias is not None:
        bias = bias.view(1, -1, 1, 1) if y.dim() == 4 else bias
        y = y.sub_(bias) if inplace else y - bias
    u = _full_scale(m, x).mul_(w_max.detach())
    if read is not None and read.sigma > 0:
        y = periphery_torch.add_noise(y, u * read.sigma, generator, inplace=inplace)
    if adc is not None:
        unit = (u * adc.step).clamp_(min=1e-30)
        y = periphery_torch.clip(periphery_torch.quantize(y, unit, inplace=inplace), u * adc.out_bound,
                                 inplace=inplace)
    if bias is not None:
        y = y.add_(bias) if inplace else y + bias
    return y


@contextlib.contextmanager
def read_periphery(model: nn.Module, read: Optional[ReadNoise], adc: Optional[ADCQuantization],
                   generator: torch.Generator, only: Optional[Sequence[str]] = None) -> Iterator[None]:
    """Within the block, every analog layer's output (or those named in ``only``) passes through read noise
    and the ADC (forward hooks)."""
    if read is None and adc is None:
        yield
        return
    handles = []

    def hook(m, inputs, y):
        return apply_read_periphery(m, inputs[0], y, read, adc, generator, m.weight.detach().abs().max())

    try:
        for name, m in analog_layers(model):
            if only is None or name in only:
                handles.append(m.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def perturbed_forward(model: nn.Module, x: torch.Tensor, weights: Dict[str, torch.Tensor],
                      nonideality: Nonideality, generator: torch.Generator,
                      only: Optional[Sequence[str]] = None) -> torch.Tensor:
    """``model(x)`` with the analog weights replaced by ``weights`` and the read periphery of ``nonideality``.

    Differentiable in every other parameter (compensation units); rounding is
    straight-through.  ``only``: apply the read periphery to these analog layers only.
    """
    with read_periphery(model, nonideality.read_noise, nonideality.read_adc, generator, only):
        return torch.func.functional_call(model, weights, (x,), strict=False)


# --------------------------------------------------------------------------- deploy / evaluate
class _PeripheryLayer(nn.Module):
    """A deployed analog layer with programmed weights (in ``.layer``) and its read periphery."""

    def __init__(self, layer: nn.Module, read: Optional[ReadNoise], adc: Optional[ADCQuantization],
                 seed: int) -> None:
        super().__init__()
        self.layer = layer
        self.read, self.adc = read, adc
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x)
        return apply_read_periphery(self.layer, x, y, self.read, self.adc, self.generator,
                                    self.layer.weight.detach().abs().max())


def _replace(model: nn.Module, build: Callable[[int, nn.Module], nn.Module]) -> nn.Module:
    """Every ``nn.Linear``/``nn.Conv2d`` replaced by ``build(k, module)``, k its index (:func:`replace_layers`)."""
    if not analog_layers(model):
        raise ValueError("the model has no nn.Linear / nn.Conv2d layers to deploy")
    builder = lambda m, _config, k: build(k, m)  # noqa: E731
    return replace_layers(model, {t: builder for t in ANALOG_TYPES}, None, seed=0)


def program(model: nn.Module, nonideality: Nonideality, seed: int = 0) -> nn.Module:
    """Deploy one chip: a copy of ``model`` whose analog layers carry the programmed weights.

    Without ``device``: each ``nn.Linear``/``nn.Conv2d`` gets the weights of
    :func:`sample_weights` and, when ``read``/``adc`` are set, is wrapped so that
    every forward applies them (its own generator, seeded from ``seed``).  With
    ``device``: each becomes a :class:`CrossbarDeployed` around an
    :class:`xbarsim.mapping.AnalogLinear` / :class:`xbarsim.mapping.AnalogConv2d` written by
    program-and-verify and read through ``device.io``.  ``model`` is not changed.
    """
    if not isinstance(nonideality, Nonideality):
        raise ValueError(f"program: nonideality must be a Nonideality, got {nonideality!r}")
    deployed = copy.deepcopy(model)
    dp = nonideality.device
    if dp is not None:
        return _replace(deployed, lambda k, m: _device_layer(m, dp, _layer_seed(seed, k)))
    weights = sample_weights(deployed, nonideality, seed)
    with torch.no_grad():
        for name, m in analog_layers(deployed):
            m.weight.copy_(weights[_pname(name, "weight")])
    if nonideality.read is None and nonideality.adc is None:
        return deployed
    return _replace(deployed, lambda k, m: _PeripheryLayer(m, nonideality.read, nonideality.adc,
                                                         _layer_seed(seed, k)))


@dataclass
class MCResult:
    """Monte Carlo accuracy over chips: ``mean``, ``std`` (ddof=1; 0 for one chip), per-chip ``accuracies``."""

    mean: float
    std: float
    accuracies: np.ndarray

    @classmethod
    def of(cls, accuracies) -> "MCResult":
        a = np.asarray(accuracies, dtype=np.float64)
        return cls(float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0, a)

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "accuracies": self.accuracies.tolist()}


def accuracy(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 2500) -> float:
    """Top-1 accuracy of ``forward`` over ``images`` in batches."""
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(labels), batch_size):
            correct += int((forward(images[i:i + batch_size]).argmax(dim=1) == labels[i:i + batch_size]).sum())
    return correct / max(len(labels), 1)


def evaluate_mc(model: nn.Module, data: Tuple[torch.Tensor, torch.Tensor], nonideality: Nonideality,
                n_samples: int = 20, seed: int = 0, batch_size: int = 2500,
                through_crossbar: Optional[bool] = None) -> MCResult:
    """Accuracy of ``model`` on ``data = (images, labels)`` over ``n_samples`` programmed chips.

    Chip ``k`` uses seed ``chip_seed(seed, k)``.  The fast path (default without a
    device) evaluates each chip by :func:`perturbed_forward`: its weights are drawn
    once, every batch sees fresh read noise.  ``through_crossbar`` (default: only
    with ``device``) evaluates :func:`program`'s model instead, whose device layers
    read through :class:`xbarsim.crossbar.CrossbarArray`.
    """
    require_number("evaluate_mc", "n_samples", n_samples, 1, None, integer=True)
    if not isinstance(nonideality, Nonideality):
        raise ValueError(f"evaluate_mc: nonideality must be a Nonideality, got {nonideality!r}")
    images, labels = data
    if through_crossbar is None:
        through_crossbar = nonideality.device is not None
    was_training = model.training
    model.eval()
    accs = []
    try:
        for k in range(int(n_samples)):
            s = chip_seed(seed, k)
            if through_crossbar:
                deployed = program(model, nonideality, s)
                accs.append(accuracy(deployed, images, labels, batch_size))
                continue
            weights = sample_weights(model, nonideality, s)
            gen = torch.Generator().manual_seed(s)
            accs.append(accuracy(lambda xb: perturbed_forward(model, xb, weights, nonideality, gen),
                                 images, labels, batch_size))
    finally:
        model.train(was_training)
    return MCResult.of(accs)


def layer_sensitivity(model: nn.Module, data: Tuple[torch.Tensor, torch.Tensor], nonideality: Nonideality,
                      n_samples: int = 5, seed: int = 0, batch_size: int = 2500,
                      mode: str = "alone") -> Dict[str, float]:
    r"""Per analog layer ``l``, the accuracy its errors cost, in one of two readings.

    ``mode="alone"``: :math:`s_l = A_\mathrm{clean} - \bar A(\text{only } l \text{ varies})`.
    ``mode="recovery"``: :math:`s_l = \bar A(\text{all but } l \text{ vary}) - \bar A(\text{all vary})`,
    the accuracy a perfect correction of layer ``l`` alone would win back.  For a
    network trained under variations no single layer costs anything alone (the
    others absorb it), yet together they do; the second reading still ranks the
    layers there (CorrectNet's placement needs where compensation *pays*).

    A varied layer receives the programming-time perturbation and the read
    periphery of ``nonideality`` (fast path), over ``n_samples`` chips (the same
    chip seeds for every layer and for the all-vary reference).
    """
    if mode not in ("alone", "recovery"):
        raise ValueError(f"layer_sensitivity: mode must be 'alone' or 'recovery', got {mode!r}")
    images, labels = data
    was = model.training
    model.eval()
    try:
        names = [name for name, _ in analog_layers(model)]
        keys = {name: _pname(name, "weight") for name in names}

        def chip_accuracy(chip, s, varied):
            gen = torch.Generator().manual_seed(s)
            weights = {keys[n]: chip[keys[n]] for n in varied}
            return accuracy(lambda xb: perturbed_forward(model, xb, weights, nonideality, gen, list(varied)),
                            images, labels, batch_size)

        accs: Dict[str, list] = {name: [] for name in names}
        everything = []
        for k in range(int(n_samples)):
            s = chip_seed(seed, k)
            chip = sample_weights(model, nonideality, s)
            if mode == "recovery":
                everything.append(chip_accuracy(chip, s, names))
            for name in names:
                accs[name].append(chip_accuracy(chip, s, [name] if mode == "alone" else
                                                [n for n in names if n != name]))
        if mode == "alone":
            clean = accuracy(model, images, labels, batch_size)
            out = {name: clean - float(np.mean(a)) for name, a in accs.items()}
        else:
            out = {name: float(np.mean(a)) - float(np.mean(everything)) for name, a in accs.items()}
    finally:
        model.train(was)
    return out
