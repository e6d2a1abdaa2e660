r"""``AnalogLinear`` and ``AnalogConv2d``: drop-in ``nn.Linear`` / ``nn.Conv2d`` on a crossbar.

Each layer owns one :class:`xbarsim.crossbar.CrossbarArray` (``.array``) with
``rows = out_features`` (or ``out_channels``) and ``cols = in_features`` (or
``in_channels * kh * kw``), plus one column when the bias is analog.  Tiling
is done inside the array.

Forward (linear, input ``x`` of shape ``(..., in)``):

.. math::
    y = \mathrm{array.forward}([x, 1]) \;(+\, b_{digital})

Convolution unfolds its input (``F.unfold``) so every output position is one
row of a matrix ``X`` of shape ``(B L, C_{in} k_h k_w)``, runs ``X`` through the
array and folds the result back to ``(B, C_{out}, H_{out}, W_{out})``.  The
column order is torch's ``weight.view(C_out, -1)`` order, so weights copy over
unchanged.

Training: see :mod:`xbarsim.mapping.analog_function` -- the input gradient is the
transposed analog read, the weight update is stashed for
:class:`xbarsim.training.AnalogSGD`.  The digital bias (default) is an ordinary
``nn.Parameter``.

Checkpoints: ``state_dict()`` holds, under ``<prefix>_extra_state``, the layer's
:class:`AnalogConfig` and the array's complete state (weights, per-cell device
parameters, counters, RNG position) with every numpy array stored as a torch
tensor, so ``torch.load(..., weights_only=True)`` can read it and a resumed run
is bit-identical.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import CrossbarArray, TransferCompound, update_arrays

from .analog_function import AnalogMVM
from .config import AnalogConfig

__all__ = ["AnalogLayer", "AnalogLinear", "AnalogConv2d", "unfold_input", "fold_output", "apply_pending_updates"]

log = logging.getLogger(__name__)

_EXTRA_STATE_FORMAT = 1
_NP_SCALAR_TAG = "__numpy_scalar__"


# ---------------------------------------------------------------------------
# numpy <-> torch conversion of the array state (so weights_only loading works)
def _numpy_tree_to_torch(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        try:
            return torch.from_numpy(np.ascontiguousarray(obj).copy())
        except TypeError:  # dtype torch cannot hold (e.g. strings): keep numpy
            return obj.copy()
    if isinstance(obj, np.generic):
        try:
            return {_NP_SCALAR_TAG: torch.from_numpy(np.asarray(obj).copy())}
        except TypeError:
            return obj.item()
    if isinstance(obj, dict):
        return {k: _numpy_tree_to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_numpy_tree_to_torch(v) for v in obj)
    return obj


def _torch_tree_to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        if set(obj) == {_NP_SCALAR_TAG}:
            return obj[_NP_SCALAR_TAG].numpy()[()]
        return {k: _torch_tree_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_torch_tree_to_numpy(v) for v in obj)
    return obj


def _pair(v: Union[int, Tuple[int, int]], name: str) -> Tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    v = tuple(v)
    if len(v) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return v  # type: ignore[return-value]


def unfold_input(x: torch.Tensor, kernel_size: Tuple[int, int], stride: Tuple[int, int],
                 padding: Union[Tuple[int, int], str], dilation: Tuple[int, int]):
    """im2col: ``(B, C, H, W) -> (B*L, C*kh*kw)`` rows in torch's ``weight.view(C_out, -1)`` order.

    ``padding`` may be a pair, ``'valid'`` or ``'same'`` (possibly asymmetric,
    as torch pads: the extra element goes right/bottom).  Returns the matrix
    and the geometry ``(B, L, H_out, W_out)`` for :func:`fold_output`.
    """
    if padding == "valid":
        padding = (0, 0)
    elif padding == "same":
        pads = []
        for k, d in zip(reversed(kernel_size), reversed(dilation)):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads)
        padding = (0, 0)
    b, c, h, w = x.shape
    kh, kw = kernel_size
    h_out = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    w_out = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    cols = F.unfold(x, kernel_size, dilation=dilation, padding=padding, stride=stride)  # (B, C*kh*kw, L)
    n_pos = cols.shape[-1]
    return cols.transpose(1, 2).reshape(b * n_pos, c * kh * kw), (b, n_pos, h_out, w_out)


def fold_output(y2: torch.Tensor, geometry) -> torch.Tensor:
    """``(B*L, C_out) -> (B, C_out, H_out, W_out)``, inverse layout of :func:`unfold_input`."""
    b, n_pos, h_out, w_out = geometry
    c_out = y2.shape[1]
    return y2.reshape(b, n_pos, c_out).transpose(1, 2).reshape(b, c_out, h_out, w_out)


# ---------------------------------------------------------------------------
class AnalogLayer(nn.Module):
    """Common machinery of analog layers: the array, the ghost parameter, state, counters.

    Attributes
    ----------
    array : xbarsim.crossbar.CrossbarArray
        ``rows = out``, ``cols = fan_in (+1 with analog bias)``.
    analog_ctx : nn.Parameter
        Empty ghost parameter; it lets optimizers find the layer (see
        :mod:`xbarsim.mapping.analog_function`).  It carries no data.
    config : AnalogConfig
    seed : int
        Seed of the array (device-to-device draws, read noise, pulse trains).
    """

    def _init_analog(self, out_size: int, fan_in: int, bias: bool, config: Optional[AnalogConfig],
                     seed: int) -> None:
        config = AnalogConfig() if config is None else config
        if not isinstance(config, AnalogConfig):
            raise ValueError(f"config must be a xbarsim.mapping.AnalogConfig, got {config!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        self.config = config
        self.seed = int(seed)
        self.fan_in = fan_in
        self.out_size = out_size
        self.analog_bias = bool(bias and config.analog_bias)
        self.analog_ctx = nn.Parameter(torch.empty(0))
        self.array = config.provider.array_for(out_size, fan_in + int(self.analog_bias), self.seed,
                                               config.array_kwargs())
        if bias and not self.analog_bias:
            self.bias = nn.Parameter(torch.empty(out_size))
        else:
            self.register_parameter("bias", None)

    # -- weights -----------------------------------------------------------
    def reset_parameters(self) -> None:
        """torch's default init (kaiming-uniform, a=sqrt(5); bias U(±1/sqrt(fan_in))), then program."""
        w = torch.empty(self.out_size, self.fan_in)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        b = None
        if self.has_bias:
            bound = 1.0 / math.sqrt(self.fan_in) if self.fan_in > 0 else 0.0
            b = torch.empty(self.out_size).uniform_(-bound, bound)
        self._set_matrix(w, b)

    @property
    def has_bias(self) -> bool:
        return self.analog_bias or self.bias is not None

    def _set_matrix(self, w: torch.Tensor, b: Optional[torch.Tensor]) -> int:
        w = torch.as_tensor(w).detach().to(torch.float32).reshape(self.out_size, self.fan_in)
        if self.analog_bias:  # bias=None keeps the programmed bias column, as for a digital bias
            col = (torch.from_numpy(self.array.get_weights()[:, -1].copy()) if b is None
                   else torch.as_tensor(b).detach().float())
            w = torch.cat([w, col.reshape(-1, 1)], dim=1)
        elif b is not None:
            if self.bias is None:
                raise ValueError("this layer has no bias (bias=False); pass bias=None")
            with torch.no_grad():
                self.bias.copy_(torch.as_tensor(b).reshape(-1))
        n_clipped = int(self.array.set_weights(np.ascontiguousarray(w.numpy(), dtype=np.float32)))
        return n_clipped

    def _copy_from(self, module: nn.Module) -> None:
        """Program a digital module's weight and bias; count (``clipped_at_programming``) and log clipped cells.

        Below 0.1 % of the cells, clipping is the expected effect of the bounds' d2d
        spread and is logged at INFO; from 0.1 % on it is a WARNING.
        """
        n = self.clipped_at_programming = self.set_weights(module.weight.detach(),
                                                           None if module.bias is None else module.bias.detach())
        if n:
            cells = self.array.rows * self.array.cols
            log.log(logging.INFO if n < 1e-3 * cells else logging.WARNING,
                    "%d of %d weights of %s were clipped to the device bounds of %s",
                    n, cells, module, type(self.config.device).__name__)

    def _get_matrix(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        w = torch.from_numpy(np.array(self.array.get_weights(), dtype=np.float32))
        if self.analog_bias:
            return w[:, :-1].contiguous(), w[:, -1].contiguous()
        return w, (None if self.bias is None else self.bias.detach().clone())

    # -- analog matmul -----------------------------------------------------
    def _analog_mvm(self, x2: torch.Tensor) -> torch.Tensor:
        """``(N, fan_in) -> (N, out)`` through the array (bias column appended if analog)."""
        if x2.dtype != torch.float32:
            x2 = x2.to(torch.float32)
        if self.analog_bias:
            x2 = torch.cat([x2, x2.new_ones(x2.shape[0], 1)], dim=1)
        return AnalogMVM.apply(x2, self.analog_ctx, self)

    def apply_update(self, x: np.ndarray, d: np.ndarray, lr: float) -> None:
        """Pulsed update ``E[dW] = -lr * d^T x`` (``x`` includes the bias column if analog)."""
        self.array.update(x, d, lr)

    # -- introspection -----------------------------------------------------
    @property
    def counters(self) -> dict:
        """The array's operation counters (``forward_mvm``, ``backward_mvm``, ``dac``, ``adc``, ``updates``, ``pulses``)."""
        return self.array.counters

    @property
    def tile_grid(self) -> Tuple[int, int]:
        """Number of physical tiles along rows and columns."""
        return (math.ceil(self.array.rows / self.config.tile_rows),
                math.ceil(self.array.cols / self.config.tile_cols))

    def _analog_repr(self) -> str:
        bias = "analog" if self.analog_bias else ("digital" if self.bias is not None else False)
        io = "perfect" if getattr(self.config.io, "perfect", False) else "noisy"
        return (f"bias={bias}, device={type(self.config.device).__name__}, io={io}, "
                f"tiles={self.tile_grid[0]}x{self.tile_grid[1]}")

    # -- checkpoint --------------------------------------------------------
    def get_extra_state(self) -> dict:
        return {"format": _EXTRA_STATE_FORMAT,
                "config": self.config.to_dict(),
                "seed": self.seed,
                "analog_bias": self.analog_bias,
                "array": _numpy_tree_to_torch(self.array.state_dict())}

    def set_extra_state(self, state: dict) -> None:
        if not isinstance(state, dict) or state.get("format") != _EXTRA_STATE_FORMAT:
            raise ValueError(f"unrecognised analog layer state (expected format {_EXTRA_STATE_FORMAT})")
        if bool(state["analog_bias"]) != self.analog_bias:
            raise ValueError(f"checkpoint has analog_bias={state['analog_bias']} but this layer has "
                             f"analog_bias={self.analog_bias}")
        array_state = _torch_tree_to_numpy(state["array"])
        if not isinstance(self.array, (CrossbarArray, TransferCompound)):  # e.g. a BankedMatrix loads itself
            self.array.load_state_dict(array_state)
            return
        kind = TransferCompound if array_state.get("kind") == "transfer_compound" else CrossbarArray
        array = kind.from_state_dict(array_state)
        if (array.rows, array.cols) != (self.array.rows, self.array.cols):
            raise ValueError(f"checkpoint array is {array.rows}x{array.cols}, this layer's is "
                             f"{self.array.rows}x{self.array.cols}")
        self.array = array
        self.config = AnalogConfig.from_dict(state["config"])
        self.seed = int(state["seed"])


# ---------------------------------------------------------------------------
class AnalogLinear(AnalogLayer):
    """``nn.Linear`` on a crossbar array: ``y = x W^T + b`` read through DAC/ADC/noise.

    Parameters
    ----------
    in_features, out_features, bias:
        As ``nn.Linear``.
    config:
        :class:`AnalogConfig` (default ``AnalogConfig()``).
    seed:
        Array seed.  Give every layer its own seed (``convert_to_analog``
        does), otherwise same-shaped layers share noise streams.

    Weights are initialised like ``nn.Linear`` (torch's global RNG) and then
    programmed into the array; values outside a cell's bounds are clipped.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 config: Optional[AnalogConfig] = None, seed: int = 0) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.in_features = in_features
        self.out_features = out_features
        self._init_analog(out_features, in_features, bias, config, seed)
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == self.in_features and x.dtype == torch.float32 and not self.analog_bias:
            return AnalogMVM.apply(x, self.analog_ctx, self, self.bias)  # the common case, one autograd node
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input with last dimension {self.in_features}, got shape {tuple(x.shape)}")
        lead = x.shape[:-1]
        y = self._analog_mvm(x.reshape(-1, self.in_features))
        y = y.reshape(*lead, self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y

    def set_weights(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> int:
        """Program ``weight`` ``(out, in)`` and ``bias`` (``None``: keep the current bias); returns #cells clipped."""
        return self._set_matrix(torch.as_tensor(weight).reshape(self.out_features, self.in_features), bias)

    def get_weights(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(weight (out, in), bias or None)`` as read back from the array (a copy)."""
        return self._get_matrix()

    @classmethod
    def from_digital(cls, module: nn.Linear, config: Optional[AnalogConfig] = None, seed: int = 0) -> "AnalogLinear":
        """An analog copy of ``module`` (weights and bias programmed in)."""
        layer = cls(module.in_features, module.out_features, bias=module.bias is not None, config=config, seed=seed)
        layer._copy_from(module)
        return layer

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self._analog_repr()}"


# ---------------------------------------------------------------------------
class AnalogConv2d(AnalogLayer):
    """``nn.Conv2d`` on a crossbar array via ``F.unfold`` (im2col).

    ``rows = out_channels``, ``cols = in_channels * kh * kw``; each output
    position is one array read, so a batch of ``B`` images with ``L`` output
    positions is ``B*L`` reads (and ``B*L`` sequential pulsed updates).

    Parameters are those of ``nn.Conv2d``; ``groups`` must be 1 and
    ``padding_mode`` ``'zeros'``.  ``padding`` may be an int, a pair, ``'valid'``
    or ``'same'`` (stride 1 only, as in torch).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int, int]],
                 stride: Union[int, Tuple[int, int]] = 1, padding: Union[int, Tuple[int, int], str] = 0,
                 dilation: Union[int, Tuple[int, int]] = 1, groups: int = 1, bias: bool = True,
                 config: Optional[AnalogConfig] = None, seed: int = 0, padding_mode: str = "zeros") -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if groups != 1:
            raise ValueError(f"AnalogConv2d supports only groups=1, got groups={groups!r}; "
                             f"keep grouped/depthwise convolutions digital "
                             f"(convert_to_analog(..., overrides={{'<name>': None}}))")
        if padding_mode != "zeros":
            raise ValueError(f"AnalogConv2d supports only padding_mode='zeros', got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(f"kernel_size, stride and dilation must be >= 1, got {self.kernel_size}, "
                             f"{self.stride}, {self.dilation}")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions (as in torch)")
        else:
            padding = _pair(padding, "padding")
            if min(padding) < 0:
                raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = padding
        self.groups = 1
        self.padding_mode = "zeros"
        kh, kw = self.kernel_size
        self._init_analog(out_channels, in_channels * kh * kw, bias, config, seed)
        self.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        x2, geometry = unfold_input(x, self.kernel_size, self.stride, self.padding, self.dilation)
        y = fold_output(self._analog_mvm(x2), geometry)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y.squeeze(0) if unbatched else y

    def set_weights(self, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> int:
        """Program ``weight`` ``(C_out, C_in, kh, kw)`` and ``bias`` (``None``: keep it); returns #cells clipped."""
        return self._set_matrix(torch.as_tensor(weight).reshape(self.out_channels, self.fan_in), bias)

    def get_weights(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(weight (C_out, C_in, kh, kw), bias or None)`` as read back from the array (a copy)."""
        w, b = self._get_matrix()
        return w.reshape(self.out_channels, self.in_channels, *self.kernel_size), b

    @classmethod
    def from_digital(cls, module: nn.Conv2d, config: Optional[AnalogConfig] = None, seed: int = 0) -> "AnalogConv2d":
        """An analog copy of ``module`` (weights and bias programmed in)."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                    padding=module.padding, dilation=module.dilation, groups=module.groups,
                    bias=module.bias is not None, config=config, seed=seed, padding_mode=module.padding_mode)
        layer._copy_from(module)
        return layer

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        return f"{s}, {self._analog_repr()}"


def apply_pending_updates(updates: list, overlap: bool = False) -> None:
    """Apply several ``(PendingUpdate, lr)`` at once; the arrays' pulses run concurrently.

    Same result, bit for bit, as ``pending.apply(lr)`` on each in turn
    (:func:`xbarsim.crossbar.update_arrays`).  A layer that overrides ``apply_update``
    is updated through its override, a layer whose storage is not a ``CrossbarArray``
    (a :class:`xbarsim.crossbar.TransferCompound`) through its own ``update``.  With ``overlap`` the plain layers' pulses
    are left in flight (``update_arrays(..., defer=True)``): each array finishes
    its own update when it is next used, so the first layers' next reads
    overlap with the pulses of the deeper ones.
    """
    plain, custom = [], []
    for pending, lr in updates:
        overridden = type(pending.layer).apply_update is not AnalogLayer.apply_update
        compound = not isinstance(pending.layer.array, CrossbarArray)  # e.g. a TransferCompound: its own update
        (custom if overridden or compound else plain).append((pending, lr))
    update_arrays([(p.layer.array, p.x, p.d, float(lr)) for p, lr in plain], defer=overlap)
    for pending, lr in custom:
        pending.apply(lr)
