r"""What every device model shares: the registry, serialisation, and the pulsed-device base.

A device model is one class in one module (:mod:`xbarsim.devices.soft_bounds`, ...).  It
registers itself by subclassing :class:`DeviceConfig`, and brings

* ``pulse_step``: its compiled step, ``step(w, up, cellf, base, g) -> |dw|``, the
  deterministic magnitude of one pulse at weight ``w`` for the cell whose parameters
  start at ``cellf[base]`` (layout :mod:`xbarsim.devices.layout`); the kernels add the
  cycle-to-cycle noise and clip to the cell's bounds;
* ``_model_planes``: its device-to-device sampler of the two model planes;
* ``symmetry_point``: its closed-form symmetry point, where one exists;
* ``kernel_params``: its model-wide scalars.

Nothing central lists the models: the kernels are compiled for a device's
``pulse_step`` (:func:`xbarsim.devices.kernels.specialise`).

Device-to-device (d2d) variation of :class:`PulsedDevice`, drawn once per cell from the
array seed, with :math:`\xi \sim N(0,1)` independent per cell and per parameter:

.. math::
    g      &= 1 + \sigma_{dw,d2d}\,\xi \quad(\text{or } e^{\sigma_{dw,d2d}\xi}\text{ if dw_min_dtod_log_normal})\\
    \rho   &= \sigma_{ud,d2d}\,\xi\\
    \alpha_+ &= dw_{min}\,(g + \min(\text{up\_down}, 0) + \rho)\\
    \alpha_- &= dw_{min}\,(g - \max(\text{up\_down}, 0) - \rho)\\
    b_{max} &= w_{max}(1 + \sigma_{w_{max},d2d}\xi), \quad b_{min} = w_{min}(1 + \sigma_{w_{min},d2d}\xi)

so ``up_down > 0`` makes down steps smaller than up steps (weights drift up),
exactly as aihwkit's ``PulsedDevice`` (Gokmen & Vlasov, *Front. Neurosci.* 10:333,
2016; Rasch et al., AICAS 2021).  With ``enforce_consistency`` the step sizes are
made positive and the bounds are forced to contain 0.

Cycle-to-cycle (c2c) noise is drawn fresh for every pulse:
multiplicative ``dw -> dw (1 + dw_min_std xi)`` or additive
``dw -> dw + alpha dw_min_std xi`` (``mult_noise=False``).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .layout import (C_B_MAX, C_B_MIN, C_DECAY, C_DIFFUSION, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN, C_SLOPE_UP,
                     G_DW_MIN_STD, G_MODEL_PARAMS, G_MULT_NOISE, G_WRITE_NOISE, N_CELL)
from .validation import Serialisable, from_tagged_dict, require_bool, require_number, tagged_dict

_REGISTRY: dict[str, type["DeviceConfig"]] = {}


@dataclass(frozen=True)
class DeviceConfig(Serialisable):
    """Base of every device configuration (frozen, validated, serialisable).

    ``to_dict`` adds a ``type`` key and ``from_dict`` dispatches on it, so a stored
    device comes back as the same model; unknown fields raise, naming them.
    """

    #: False for a floating-point weight whose updates are exact, not pulsed
    pulsed: ClassVar[bool] = True
    #: the model's compiled step (see the module docstring); None where not pulsed
    pulse_step: ClassVar[Any] = None
    #: how many model-wide scalars follow the common ones in ``kernel_params``
    n_model_params: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict with a ``type`` key; inverse of :meth:`from_dict`."""
        return tagged_dict(self)

    @staticmethod
    def from_dict(d: dict) -> "DeviceConfig":
        return from_tagged_dict(_REGISTRY, d, "device")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # -- kernel interface ------------------------------------------------
    def kernel_params(self) -> np.ndarray:
        """Model-wide scalars for the compiled kernels (float64, layout :mod:`xbarsim.devices.layout`)."""
        return np.zeros(G_MODEL_PARAMS + self.n_model_params, dtype=np.float64)

    def sample_planes(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Per-cell parameters ``(N_CELL, rows, cols)`` drawn from ``rng`` (see :func:`xbarsim.devices.sample_cells`)."""
        raise NotImplementedError

    def symmetry_point(self, cell: np.ndarray | None = None) -> np.ndarray | float:
        """Closed-form symmetry point, per cell of ``cell`` or of the nominal device; raises where none exists."""
        raise ValueError(f"{self.name} has no closed-form symmetry point; use measure_symmetry_point()")

    @property
    def name(self) -> str:
        return type(self).__name__


def device_names() -> list[str]:
    """Names accepted by :func:`device_from_name`."""
    return sorted(n for n in _REGISTRY if n not in ("DeviceConfig", "PulsedDevice"))


def device_from_name(name: str, **overrides: Any) -> DeviceConfig:
    """Build a device config by class name (case-insensitive), e.g. ``"SoftBounds"``."""
    lookup = {n.lower(): c for n, c in _REGISTRY.items() if n in device_names()}
    key = name.lower().replace("-", "").replace("_", "")
    if key not in lookup:
        raise ValueError(f"device {name!r} is unknown; choose one of {device_names()}")
    cls = lookup[key]
    known = {f.name for f in dataclasses.fields(cls)}
    for k in overrides:
        if k not in known:
            raise ValueError(f"{cls.__name__} has no parameter {k!r}; known: {sorted(known)}")
    return cls(**overrides)


@dataclass(frozen=True)
class PulsedDevice(DeviceConfig):
    """Parameters shared by every pulsed model (aihwkit ``PulsedDevice`` names).

    Attributes:
        dw_min: mean step size at ``w = 0`` (weight units per pulse).
        dw_min_dtod: d2d spread of the step size (relative).
        dw_min_dtod_log_normal: draw the d2d gain as ``exp(dw_min_dtod xi)``.
        dw_min_std: c2c step noise (relative to the step).
        up_down: up/down asymmetry; ``> 0`` makes down steps smaller.
        up_down_dtod: d2d spread of the asymmetry.
        w_max, w_max_dtod, w_min, w_min_dtod: saturation bounds and their d2d spread.
        corrupt_devices_prob: probability that a cell is stuck at a random value.
        corrupt_devices_range: stuck values are drawn in ``[-range, range]`` within the bounds.
        lifetime, lifetime_dtod: decay ``w <- w (1 - 1/lifetime)`` per decay call (0 = off).
        diffusion, diffusion_dtod: random walk ``w <- w + diffusion xi`` per call (0 = off).
        write_noise_std: write noise in units of ``dw_min``: the read sees
            ``w + write_noise_std dw_min xi``, drawn anew whenever the cell is written.
        enforce_consistency: force positive steps and ``b_min <= 0 <= b_max``.
    """

    dw_min: float = 0.001
    dw_min_dtod: float = 0.3
    dw_min_dtod_log_normal: bool = False
    dw_min_std: float = 0.3
    up_down: float = 0.0
    up_down_dtod: float = 0.01
    w_max: float = 0.6
    w_max_dtod: float = 0.3
    w_min: float = -0.6
    w_min_dtod: float = 0.3
    corrupt_devices_prob: float = 0.0
    corrupt_devices_range: float = 0.1
    lifetime: float = 0.0
    lifetime_dtod: float = 0.0
    diffusion: float = 0.0
    diffusion_dtod: float = 0.0
    write_noise_std: float = 0.0
    enforce_consistency: bool = True

    def __post_init__(self) -> None:
        n = self.name
        require_number(n, "dw_min", self.dw_min, 0.0, None, lo_open=True)
        require_number(n, "dw_min_dtod", self.dw_min_dtod, 0.0, None)
        require_bool(n, "dw_min_dtod_log_normal", self.dw_min_dtod_log_normal)
        require_number(n, "dw_min_std", self.dw_min_std, 0.0, None)
        require_number(n, "up_down", self.up_down, -1.0, 1.0, lo_open=True, hi_open=True)
        require_number(n, "up_down_dtod", self.up_down_dtod, 0.0, None)
        require_number(n, "w_max", self.w_max, 0.0, None)
        require_number(n, "w_min", self.w_min, None, 0.0)
        if not self.w_min < self.w_max:
            raise ValueError(f"{n}.w_min = {self.w_min!r} must be < w_max = {self.w_max!r} "
                             f"(allowed: w_min <= 0 <= w_max, w_min < w_max)")
        for f in ("w_max_dtod", "w_min_dtod", "lifetime_dtod", "diffusion_dtod", "diffusion",
                  "write_noise_std", "corrupt_devices_range"):
            require_number(n, f, getattr(self, f), 0.0, None)
        require_number(n, "corrupt_devices_prob", self.corrupt_devices_prob, 0.0, 1.0)
        require_number(n, "lifetime", self.lifetime, 0.0, None)
        if 0.0 < self.lifetime < 1.0:
            raise ValueError(f"{n}.lifetime = {self.lifetime!r} must be 0 (off) or >= 1 (decay calls)")
        require_bool(n, "enforce_consistency", self.enforce_consistency)
        self._validate_model()

    def _validate_model(self) -> None:
        pass

    @property
    def num_states(self) -> float:
        """Nominal number of states ``(w_max - w_min) / dw_min``."""
        return (self.w_max - self.w_min) / self.dw_min

    @property
    def mult_noise_on(self) -> bool:
        """Whether the c2c noise multiplies the step (models with a ``mult_noise`` field choose)."""
        return True

    def nominal_scales(self) -> tuple[float, float]:
        """``(alpha_+, alpha_-)`` of the nominal cell (no d2d variation)."""
        return (self.dw_min * (1 + min(self.up_down, 0.0)), self.dw_min * (1 - max(self.up_down, 0.0)))

    def kernel_params(self) -> np.ndarray:
        g = super().kernel_params()
        g[G_DW_MIN_STD] = self.dw_min_std
        g[G_MULT_NOISE] = 1.0 if self.mult_noise_on else 0.0
        g[G_WRITE_NOISE] = self.write_noise_std * self.dw_min
        return g

    def _model_planes(self, rng: np.random.Generator, size: tuple[int, int], scale_up: np.ndarray,
                      scale_down: np.ndarray, b_max: np.ndarray, b_min: np.ndarray) -> tuple[Any, Any]:
        """The model's two per-cell planes (``C_SLOPE_UP``, ``C_SLOPE_DOWN``), drawn after the common ones."""
        return np.zeros(size), np.zeros(size)

    def sample_planes(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        p = self
        size = tuple(shape)
        cell = np.zeros((N_CELL, *size), dtype=np.float32)
        b_max = p.w_max * (1.0 + p.w_max_dtod * rng.standard_normal(size))
        b_min = p.w_min * (1.0 + p.w_min_dtod * rng.standard_normal(size))
        xi = rng.standard_normal(size)
        gain = np.exp(p.dw_min_dtod * xi) if p.dw_min_dtod_log_normal else 1.0 + p.dw_min_dtod * xi
        r = p.up_down_dtod * rng.standard_normal(size)
        up_bias = min(p.up_down, 0.0)
        down_bias = -max(p.up_down, 0.0)
        scale_up = (up_bias + gain + r) * p.dw_min
        scale_down = (down_bias + gain - r) * p.dw_min
        if p.enforce_consistency:
            scale_up, scale_down = np.abs(scale_up), np.abs(scale_down)
            lo, hi = np.minimum(b_min, b_max), np.maximum(b_min, b_max)
            b_max, b_min = np.abs(hi), -np.abs(lo)
        else:  # "turn off" cells whose bounds crossed, as aihwkit does
            crossed = b_min > b_max
            mid = 0.5 * (b_min + b_max)
            b_max = np.where(crossed, mid, b_max)
            b_min = np.where(crossed, mid, b_min)

        slope_up, slope_down = self._model_planes(rng, size, scale_up, scale_down, b_max, b_min)

        if p.corrupt_devices_prob > 0:
            stuck = rng.random(size) < p.corrupt_devices_prob
            mn = np.maximum(np.minimum(b_max, b_min), -p.corrupt_devices_range)
            mx = np.minimum(np.maximum(b_max, b_min), p.corrupt_devices_range)
            value = mn + (mx - mn) * rng.random(size)
            b_max = np.where(stuck, value, b_max)
            b_min = np.where(stuck, value, b_min)
            scale_up = np.where(stuck, 0.0, scale_up)
            scale_down = np.where(stuck, 0.0, scale_down)
            slope_up = np.where(stuck, 0.0, slope_up)
            slope_down = np.where(stuck, 0.0, slope_down)

        if p.lifetime > 0:
            life = p.lifetime * (1.0 + p.lifetime_dtod * rng.standard_normal(size))
            life = np.maximum(life, 1.0)
            cell[C_DECAY] = 1.0 - 1.0 / life
        else:
            cell[C_DECAY] = 1.0
        if p.diffusion > 0:
            cell[C_DIFFUSION] = np.abs(p.diffusion * (1.0 + p.diffusion_dtod * rng.standard_normal(size)))

        cell[C_SCALE_UP], cell[C_SCALE_DOWN] = scale_up, scale_down
        cell[C_B_MAX], cell[C_B_MIN] = b_max, b_min
        cell[C_SLOPE_UP], cell[C_SLOPE_DOWN] = slope_up, slope_down
        return cell


def cell_planes(cell: np.ndarray) -> np.ndarray:
    """``cell`` (rows, cols, N_CELL) as float64 planes ``(N_CELL, rows, cols)``."""
    return np.moveaxis(cell.astype(np.float64), -1, 0)
