r"""Hardware-aware training (HWA) for analog inference.

Train in floating point with the hardware's nonidealities in the forward pass,
then program the weights into crossbar arrays once (Joshi et al., *Nat.
Commun.* 11:2473, 2020; aihwkit's ``InferenceRPUConfig``).

Workflow::

    model = convert_to_hwa(model, AnalogConfig(io=IOConfig(), hwa_weight_noise=0.02))
    ... train with any torch optimizer (weights are ordinary nn.Parameters) ...
    model = program(model, seed=1)          # -> AnalogLinear / AnalogConv2d with programming noise
    model.eval(); evaluate(model)

Forward model of an HWA layer (``x``: one sample of the unfolded input,
:math:`W` the weight matrix, with the bias as an extra column driven by a
constant 1 when ``analog_bias``), mirroring the engine's
:class:`xbarsim.crossbar.IOConfig` read step by step:

1. weight noise, training mode only, fresh per forward pass:
   :math:`\tilde W = W + \sigma_w\,\max|W|\,\xi`, :math:`\xi\sim N(0,1)` per weight
   (:math:`\sigma_w` = ``hwa_weight_noise``; :math:`\max|W|` is not differentiated);
2. noise management: :math:`s = \max_j |x_j|` over the finite inputs (``abs_max``, capped at
   ``nm_thres`` if that is > 0), ``nm_thres`` (``constant``) or 1 (``none``);
3. DAC: :math:`x_q = \mathrm{clip}(\mathrm{round}(x/(s f)/\delta_x)\,\delta_x, \pm b_{in}) + \sigma_{in}\xi`,
   :math:`\delta_x` = ``inp_res * 2 * inp_bound``;
4. MVM and read noise: :math:`y = \tilde W x_q + \sigma_{out}\xi`
   (plus the engine's ``w_noise`` term if configured);
5. ADC: :math:`y_q = \mathrm{clip}(\mathrm{round}(y/\delta_y)\,\delta_y, \pm b_{out})`,
   :math:`\delta_y` = ``out_res * 2 * out_bound``;
6. bound management (``iterative``): a sample whose output exceeded
   :math:`b_{out}` is read again with :math:`f \leftarrow 2f` (see the engine for
   the stopping rule);
7. result :math:`s f\, y_q` (+ digital bias).

Rounding is straight-through (forward: rounded value; backward: identity),
clipping passes no gradient beyond its bounds, :math:`s` and :math:`f` are
treated as constants.  Steps 2-7 are :func:`xbarsim.crossbar.periphery_torch.read`, the
engine's periphery in torch (its docstring also states the policy for NaN and inf inputs).
``io.perfect`` skips steps 2-7.  Steps 2-7 (the
periphery) act in train and eval mode; step 1 only in train mode.

:func:`program` then writes :math:`W_{prog} = W + \sigma_p\,\max|W|\,\xi`
(:math:`\sigma_p` = ``programming_noise``, one draw per cell) into
:class:`xbarsim.mapping.AnalogLinear` / :class:`xbarsim.mapping.AnalogConv2d` layers with the
same :class:`xbarsim.mapping.AnalogConfig`; values outside a cell's bounds are
clipped (and a warning logged).
"""
from __future__ import annotations

import logging
from typing import Mapping, Optional, Union

import torch
from torch import nn

from xbarsim.crossbar import IOConfig, periphery_torch
from xbarsim.mapping import AnalogConfig, AnalogConv2d, AnalogLinear, replace_layers
from xbarsim.mapping.layers import fold_output, unfold_input
from xbarsim.mapping.nonideal import additive_programming_noise

__all__ = ["HWALinear", "HWAConv2d", "convert_to_hwa", "program", "hwa_read"]

log = logging.getLogger(__name__)


def hwa_read(x: torch.Tensor, w: torch.Tensor, io: IOConfig,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Differentiable emulation of one analog read ``x (N, cols) -> (N, rows)`` through ``io``.

    Steps 2-7 of the module docstring (weight noise, step 1, is the caller's): the
    engine's read periphery in torch, :func:`xbarsim.crossbar.periphery_torch.read`, whose
    docstring states each stage.  With the noise switched off the result equals
    ``CrossbarArray.forward`` up to float32 summation order.  Random numbers come from
    ``generator`` (torch's, not the engine's streams).
    """
    return periphery_torch.read(x, w, io, generator)


def _hwa_matmul(x2: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], config: AnalogConfig,
                generator: torch.Generator, training: bool) -> torch.Tensor:
    """``(N, fan_in) -> (N, out)``: weight noise (training), then :func:`hwa_read`, then digital bias."""
    w = weight.reshape(weight.shape[0], -1)
    analog_bias = config.analog_bias and bias is not None
    if analog_bias:
        w = torch.cat([w, bias.reshape(-1, 1)], dim=1)
        x2 = torch.cat([x2, x2.new_ones(x2.shape[0], 1)], dim=1)
    if training and config.hwa_weight_noise > 0:
        scale = config.hwa_weight_noise * w.detach().abs().max()
        w = w + scale * torch.randn(w.shape, generator=generator, dtype=w.dtype)
    y = hwa_read(x2, w, config.io, generator)
    if bias is not None and not analog_bias:
        y = y + bias
    return y


class _HWAMixin:
    """Config, noise generator and its checkpoint state, shared by the HWA layers."""

    def _init_hwa(self, config: Optional[AnalogConfig], seed: int) -> None:
        config = AnalogConfig() if config is None else config
        if not isinstance(config, AnalogConfig):
            raise ValueError(f"config must be a xbarsim.mapping.AnalogConfig, got {config!r}")
        self.config = config
        self.seed = int(seed)
        self.noise_generator = torch.Generator().manual_seed(self.seed)

    def get_extra_state(self) -> dict:
        return {"config": self.config.to_dict(), "seed": self.seed, "rng": self.noise_generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self.config = AnalogConfig.from_dict(state["config"])
        self.seed = int(state["seed"])
        self.noise_generator.set_state(state["rng"])

    def _hwa_repr(self) -> str:
        io = "perfect" if self.config.io.perfect else "noisy"
        return (f"hwa_weight_noise={self.config.hwa_weight_noise}, io={io}, "
                f"device={type(self.config.device).__name__}")


class HWALinear(_HWAMixin, nn.Linear):
    """``nn.Linear`` trained with the analog forward model of the module docstring.

    ``weight``/``bias`` are ordinary parameters (train them with any optimizer);
    :func:`program` turns the layer into an :class:`xbarsim.mapping.AnalogLinear`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 config: Optional[AnalogConfig] = None, seed: int = 0) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_hwa(config, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        y = _hwa_matmul(x.reshape(-1, self.in_features), self.weight, self.bias, self.config,
                        self.noise_generator, self.training)
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"{nn.Linear.extra_repr(self)}, {self._hwa_repr()}"


class HWAConv2d(_HWAMixin, nn.Conv2d):
    """``nn.Conv2d`` (groups=1, zero padding) trained with the analog forward model, via im2col."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, config: Optional[AnalogConfig] = None, seed: int = 0,
                 padding_mode: str = "zeros") -> None:
        if groups != 1 or padding_mode != "zeros":
            raise ValueError(f"HWAConv2d supports groups=1 and padding_mode='zeros' only, got groups={groups!r}, "
                             f"padding_mode={padding_mode!r}")
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                           dilation=dilation, groups=groups, bias=bias, padding_mode=padding_mode)
        self._init_hwa(config, seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        x2, geometry = unfold_input(x, self.kernel_size, self.stride, self.padding, self.dilation)
        analog_bias = self.config.analog_bias and self.bias is not None
        y = fold_output(_hwa_matmul(x2, self.weight, self.bias if analog_bias else None, self.config,
                                    self.noise_generator, self.training), geometry)
        if self.bias is not None and not analog_bias:
            y = y + self.bias.view(1, -1, 1, 1)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return f"{nn.Conv2d.extra_repr(self)}, {self._hwa_repr()}"


# ---------------------------------------------------------------------------
def _build_hwa_linear(m: nn.Linear, config: AnalogConfig, seed: int) -> HWALinear:
    layer = HWALinear(m.in_features, m.out_features, bias=m.bias is not None, config=config, seed=seed)
    with torch.no_grad():
        layer.weight.copy_(m.weight)
        if m.bias is not None:
            layer.bias.copy_(m.bias)
    return layer


def _build_hwa_conv(m: nn.Conv2d, config: AnalogConfig, seed: int) -> HWAConv2d:
    if m.groups != 1:
        raise ValueError(f"convert_to_hwa: {m} has groups={m.groups}; only groups=1 is supported -- keep it "
                         f"digital with overrides={{'<its name>': None}}")
    layer = HWAConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                      dilation=m.dilation, groups=m.groups, bias=m.bias is not None, config=config, seed=seed,
                      padding_mode=m.padding_mode)
    with torch.no_grad():
        layer.weight.copy_(m.weight)
        if m.bias is not None:
            layer.bias.copy_(m.bias)
    return layer


def convert_to_hwa(model: nn.Module, config: Optional[AnalogConfig] = None,
                   overrides: Optional[Mapping[Union[str, type], Optional[AnalogConfig]]] = None,
                   seed: int = 0) -> nn.Module:
    """Replace ``nn.Linear``/``nn.Conv2d`` (exact types) by :class:`HWALinear`/:class:`HWAConv2d`, in place.

    Same rules as :func:`xbarsim.mapping.convert_to_analog` (overrides by name > type >
    default, ``None`` keeps a module digital, layer k gets noise seed
    ``seed + k``).  Returns the model (or the new layer if ``model`` is one).
    """
    config = AnalogConfig() if config is None else config
    return replace_layers(model, {nn.Linear: _build_hwa_linear, nn.Conv2d: _build_hwa_conv}, config,
                          overrides, seed)


def _programmed(layer: Union[HWALinear, HWAConv2d], config: AnalogConfig, seed: int):
    """Weights and bias with programming noise ``sigma_p * max|W| * xi`` (bias included if analog)."""
    w = layer.weight.detach().clone()
    b = None if layer.bias is None else layer.bias.detach().clone()
    if config.programming_noise > 0:
        gen = torch.Generator().manual_seed(seed)
        analog_b = config.analog_bias and b is not None
        wmax = w.abs().max()
        if analog_b:
            wmax = torch.maximum(wmax, b.abs().max())
        w = additive_programming_noise(w, config.programming_noise, wmax, gen)
        if analog_b:
            b = additive_programming_noise(b, config.programming_noise, wmax, gen)
    return w, b


def _program_linear(m: HWALinear, config: Optional[AnalogConfig], seed: int) -> AnalogLinear:
    config = m.config if config is None else config
    layer = AnalogLinear(m.in_features, m.out_features, bias=m.bias is not None, config=config, seed=seed)
    _write(layer, m, *_programmed(m, config, seed))
    return layer


def _program_conv(m: HWAConv2d, config: Optional[AnalogConfig], seed: int) -> AnalogConv2d:
    config = m.config if config is None else config
    layer = AnalogConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                         dilation=m.dilation, bias=m.bias is not None, config=config, seed=seed)
    _write(layer, m, *_programmed(m, config, seed))
    return layer


def _write(layer, source: nn.Module, w: torch.Tensor, b: Optional[torch.Tensor]) -> None:
    n = layer.clipped_at_programming = layer.set_weights(w, b)
    if n:  # below 0.1 % of the cells: the expected effect of the bounds' d2d spread
        cells = layer.array.rows * layer.array.cols
        log.log(logging.INFO if n < 1e-3 * cells else logging.WARNING,
                "program: %d of %d weights of %s were clipped to the device bounds of %s",
                n, cells, source, type(layer.config.device).__name__)


def program(model: nn.Module, config: Optional[AnalogConfig] = None, seed: int = 0) -> nn.Module:
    """Write every HWA layer's weights into a crossbar array, in place.

    Each :class:`HWALinear`/:class:`HWAConv2d` becomes an
    :class:`xbarsim.mapping.AnalogLinear`/:class:`xbarsim.mapping.AnalogConv2d` using ``config``
    (or, if ``None``, the layer's own training config), with programming
    noise :math:`\\sigma_p \\max|W| \\xi` (``config.programming_noise``).  The
    k-th layer gets seed ``seed + k`` for both its array and its programming
    noise.  Other modules are left alone.  Returns the model (or the new layer
    if ``model`` is an HWA layer).
    """
    if config is not None and not isinstance(config, AnalogConfig):
        raise ValueError(f"config must be None or a xbarsim.mapping.AnalogConfig, got {config!r}")
    return replace_layers(model, {HWALinear: _program_linear, HWAConv2d: _program_conv}, config, None, seed)
