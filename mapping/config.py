r"""``AnalogConfig``: how one torch layer is placed on a crossbar array.

One frozen, validated dataclass gathers everything a layer needs to build its
:class:`xbarsim.crossbar.CrossbarArray` (device, forward/backward periphery, pulsed
update, tile size, bias placement) plus the few fields that only matter for
hardware-aware training for inference (``xbarsim.training.hwa``):

``hwa_weight_noise`` (:math:`\sigma_w`)
    During hardware-aware training every forward pass uses
    :math:`\tilde W = W + \sigma_w \max|W|\,\xi`, :math:`\xi\sim N(0,1)` fresh
    per weight and per pass (additive noise relative to the layer's largest
    weight; aihwkit calls this a *weight modifier*).
``programming_noise`` (:math:`\sigma_p`)
    When trained weights are written into arrays (``xbarsim.training.program``) each
    cell receives :math:`W_{prog} = W + \sigma_p \max|W|\,\xi` once
    (write-verify residual of the programming step).

It round-trips through :meth:`AnalogConfig.to_dict` / :meth:`AnalogConfig.from_dict`
(plain JSON-able values), which is how it is stored in checkpoints and HDF5
attributes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from xbarsim.crossbar import IOConfig, UpdateConfig
from xbarsim.devices import ConstantStep, DeviceConfig
from xbarsim.devices.validation import Serialisable

from .provider import ArrayProvider, OwnArray, provider_from_dict

__all__ = ["AnalogConfig"]


def _require_nonnegative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"AnalogConfig.{name} must be a finite number >= 0, got {value!r}")


def _require_tile(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"AnalogConfig.{name} must be an int >= 1, got {value!r}")


@dataclass(frozen=True)
class AnalogConfig(Serialisable):
    """Placement of one layer on a crossbar array.

    Parameters
    ----------
    device:
        Cell model (any :class:`xbarsim.devices.DeviceConfig`), default
        :class:`xbarsim.devices.ConstantStep` as aihwkit's ``SingleRPUConfig``.
    io:
        Forward-read periphery (DAC, ADC, noise, bound management).
    backward_io:
        Periphery of the transposed read used for the input gradient;
        ``None`` means "same as ``io``" (aihwkit's default).
    update:
        Pulsed-update settings (``desired_bl``, update management, ...).
    tile_rows, tile_cols:
        Physical tile size; the array tiles itself and sums partial
        results digitally.
    analog_bias:
        ``False`` (default): the bias is a digital ``nn.Parameter`` trained by
        plain SGD.  ``True``: the bias is one extra array column driven by a
        constant input 1, so it sees the same device and periphery as the
        weights and is trained by pulses.
    hwa_weight_noise:
        Hardware-aware training only: relative std :math:`\\sigma_w` of the
        additive weight noise injected in every training forward pass
        (see module docstring).  ``0`` disables it.
    programming_noise:
        Hardware-aware training only: relative std :math:`\\sigma_p` of the
        one-off programming error applied by ``xbarsim.training.program``.
    array_provider:
        Where the layer's matrix is stored (:mod:`xbarsim.mapping.provider`).
        ``None`` (default): one :class:`xbarsim.crossbar.CrossbarArray` per layer,
        built from this config.  :class:`xbarsim.mapping.TransferArrays`: one Tiki-Taka
        :class:`xbarsim.crossbar.TransferCompound` per layer (trained by ``AnalogSGD``).
        An :class:`xbarsim.mapping.ArrayBank`: every layer
        whose config holds the same bank draws its weights from its shared physical
        arrays (inference only).  ``to_dict`` stores the bank's description;
        ``from_dict`` builds a fresh, empty bank from it.
    """

    device: DeviceConfig = field(default_factory=ConstantStep)
    io: IOConfig = field(default_factory=IOConfig)
    backward_io: Optional[IOConfig] = None
    update: UpdateConfig = field(default_factory=UpdateConfig)
    tile_rows: int = 512
    tile_cols: int = 512
    analog_bias: bool = False
    hwa_weight_noise: float = 0.0
    programming_noise: float = 0.0
    array_provider: Optional[ArrayProvider] = None

    def __post_init__(self) -> None:
        if not isinstance(self.device, DeviceConfig):
            raise ValueError(f"AnalogConfig.device must be a xbarsim.devices.DeviceConfig (e.g. SoftBounds()), "
                             f"got {self.device!r}")
        if not isinstance(self.io, IOConfig):
            raise ValueError(f"AnalogConfig.io must be a xbarsim.crossbar.IOConfig, got {self.io!r}")
        if self.backward_io is not None and not isinstance(self.backward_io, IOConfig):
            raise ValueError(f"AnalogConfig.backward_io must be None or a xbarsim.crossbar.IOConfig, "
                             f"got {self.backward_io!r}")
        if not isinstance(self.update, UpdateConfig):
            raise ValueError(f"AnalogConfig.update must be a xbarsim.crossbar.UpdateConfig, got {self.update!r}")
        _require_tile("tile_rows", self.tile_rows)
        _require_tile("tile_cols", self.tile_cols)
        if not isinstance(self.analog_bias, bool):
            raise ValueError(f"AnalogConfig.analog_bias must be True or False, got {self.analog_bias!r}")
        _require_nonnegative("hwa_weight_noise", self.hwa_weight_noise)
        _require_nonnegative("programming_noise", self.programming_noise)
        if self.array_provider is not None and not isinstance(self.array_provider, ArrayProvider):
            raise ValueError(f"AnalogConfig.array_provider must be None or a xbarsim.mapping.ArrayProvider "
                             f"(OwnArray, TransferArrays, ArrayBank), got {self.array_provider!r}")

    # ------------------------------------------------------------------
    @property
    def effective_backward_io(self) -> IOConfig:
        """The periphery actually used by the backward read."""
        return self.io if self.backward_io is None else self.backward_io

    def array_kwargs(self) -> dict:
        """Keyword arguments for :class:`xbarsim.crossbar.CrossbarArray` (all but shape and seed)."""
        return dict(device=self.device, io=self.io, update=self.update, backward_io=self.backward_io,
                    tile_rows=self.tile_rows, tile_cols=self.tile_cols)

    @property
    def provider(self) -> ArrayProvider:
        """The provider actually used (``OwnArray()`` when ``array_provider`` is ``None``)."""
        return OwnArray() if self.array_provider is None else self.array_provider

    def to_dict(self) -> dict:
        """Plain (JSON-able) dict; inverse of :meth:`from_dict`."""
        out = {
            "device": self.device.to_dict(),
            "io": self.io.to_dict(),
            "backward_io": None if self.backward_io is None else self.backward_io.to_dict(),
            "update": self.update.to_dict(),
            "tile_rows": self.tile_rows,
            "tile_cols": self.tile_cols,
            "analog_bias": self.analog_bias,
            "hwa_weight_noise": self.hwa_weight_noise,
            "programming_noise": self.programming_noise,
        }
        if self.array_provider is not None:  # absent key = default, so older dicts stay identical
            out["array_provider"] = self.array_provider.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "AnalogConfig":
        d = dict(d)
        cls.check_keys(d)
        if isinstance(d.get("device"), dict):
            d["device"] = DeviceConfig.from_dict(d["device"])
        if isinstance(d.get("io"), dict):
            d["io"] = IOConfig.from_dict(d["io"])
        if isinstance(d.get("backward_io"), dict):
            d["backward_io"] = IOConfig.from_dict(d["backward_io"])
        if isinstance(d.get("update"), dict):
            d["update"] = UpdateConfig.from_dict(d["update"])
        if isinstance(d.get("array_provider"), dict):
            d["array_provider"] = provider_from_dict(d["array_provider"])
        return cls(**d)
