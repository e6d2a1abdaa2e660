r"""Device models: what one resistive cell does when it receives a programming pulse.

All models share aihwkit's ``PulsedDevice`` parametrisation so that users can
carry configurations over.  Weights are in normalised *weight units*; a
conductance ``G`` maps to ``w = (G - G_0) / G_scale``.

Device-to-device (d2d) variation, drawn once per cell from the array seed
(``xbarsim.devices.population``), with :math:`\xi \sim N(0,1)` independent per cell and
per parameter:

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
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .validation import Serialisable, require_bool, require_number

# model identifiers understood by xbarsim.devices.kernels.pulse_once
MODEL_IDEAL = 0
MODEL_CONSTANT = 1
MODEL_LINEAR = 2
MODEL_EXP = 3
MODEL_POW = 4
MODEL_PIECEWISE = 5

# layout of the per-model scalar vector handed to the kernels
G_MODEL, G_DW_MIN_STD, G_MULT_NOISE, G_WRITE_NOISE = 0, 1, 2, 3
G_ES_A, G_ES_B, G_ES_A_UP, G_ES_A_DOWN, G_ES_GAMMA_UP, G_ES_GAMMA_DOWN = 4, 5, 6, 7, 8, 9
N_GLOBAL = 10

_REGISTRY: dict[str, type["DeviceConfig"]] = {}


@dataclass(frozen=True)
class DeviceConfig(Serialisable):
    """Base of every device configuration (frozen, validated, serialisable).

    ``to_dict`` adds a ``type`` key and ``from_dict`` dispatches on it, so a stored
    device comes back as the same model; unknown fields raise, naming them.
    """

    model_id: ClassVar[int] = -1
    pulsed: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict with a ``type`` key; inverse of :meth:`from_dict`."""
        d = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @staticmethod
    def from_dict(d: dict) -> "DeviceConfig":
        d = dict(d)
        name = d.pop("type", None)
        if name not in _REGISTRY:
            raise ValueError(f"device type {name!r} is unknown; choose one of {sorted(_REGISTRY)}")
        _REGISTRY[name].check_keys(d)
        return _REGISTRY[name](**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # -- kernel interface ------------------------------------------------
    def global_params(self) -> np.ndarray:
        """Scalar parameters for the numba kernels (float64, layout ``G_*``)."""
        g = np.zeros(N_GLOBAL, dtype=np.float64)
        g[G_MODEL] = self.model_id
        return g

    def piecewise_tables(self) -> tuple[np.ndarray, np.ndarray]:
        one = np.ones(1, dtype=np.float64)
        return one, one

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
class IdealDevice(DeviceConfig):
    """A floating-point weight: updates are exact, ``W <- W - lr d^T x``, no bounds.

    Use it as the reference against which pulsed devices are compared
    (aihwkit ``IdealDevice``).  ``lifetime`` and ``diffusion`` still apply.
    """

    model_id: ClassVar[int] = MODEL_IDEAL
    pulsed: ClassVar[bool] = False
    lifetime: float = 0.0
    diffusion: float = 0.0

    def __post_init__(self) -> None:
        require_number(self.name, "lifetime", self.lifetime, 0.0, None)
        require_number(self.name, "diffusion", self.diffusion, 0.0, None)

    @property
    def dw_min(self) -> float:
        return 0.0

    @property
    def w_max(self) -> float:
        return math.inf

    @property
    def w_min(self) -> float:
        return -math.inf


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

    def global_params(self) -> np.ndarray:
        g = super().global_params()
        g[G_DW_MIN_STD] = self.dw_min_std
        g[G_MULT_NOISE] = 1.0 if getattr(self, "mult_noise", True) else 0.0
        g[G_WRITE_NOISE] = self.write_noise_std * self.dw_min
        return g


@dataclass(frozen=True)
class ConstantStep(PulsedDevice):
    r"""Constant step, hard bounds.

    .. math:: w \leftarrow \mathrm{clip}_{[b_{min}, b_{max}]}\big(w \pm \alpha_\pm (1 + \sigma\xi)\big)

    ``n`` noise-free up pulses from ``w_0`` give ``min(w_0 + n alpha_+, b_max)``.
    (aihwkit ``ConstantStepDevice``.)
    """

    model_id: ClassVar[int] = MODEL_CONSTANT


@dataclass(frozen=True)
class LinearStep(PulsedDevice):
    r"""Step size linear in the weight (aihwkit ``LinearStepDevice``).

    .. math::
        \Delta w_+ = (\alpha_+ + s_+ w)(1+\sigma\xi), \quad s_+ = -\gamma_+ \alpha_+ / w_{max}\\
        \Delta w_- = (\alpha_- + s_- w)(1+\sigma\xi), \quad s_- = -\gamma_- \alpha_- / w_{min}

    with per-cell ``gamma_{+,-} = gamma_{up,down} + gamma_{*}_dtod xi`` (forced >= 0
    unless ``allow_increasing``).  With ``mean_bound_reference`` the slope uses
    the nominal bounds ``w_max``/``w_min``, else each cell's own ``b_max``/``b_min``.
    ``mult_noise=False`` applies the c2c noise to the constant part only.
    """

    model_id: ClassVar[int] = MODEL_LINEAR
    gamma_up: float = 0.0
    gamma_down: float = 0.0
    gamma_up_dtod: float = 0.05
    gamma_down_dtod: float = 0.05
    allow_increasing: bool = False
    mean_bound_reference: bool = True
    mult_noise: bool = True

    def _validate_model(self) -> None:
        for f in ("gamma_up", "gamma_down"):
            require_number(self.name, f, getattr(self, f), None, None)
        for f in ("gamma_up_dtod", "gamma_down_dtod"):
            require_number(self.name, f, getattr(self, f), 0.0, None)
        require_bool(self.name, "allow_increasing", self.allow_increasing)
        require_bool(self.name, "mean_bound_reference", self.mean_bound_reference)
        require_bool(self.name, "mult_noise", self.mult_noise)


@dataclass(frozen=True)
class SoftBounds(PulsedDevice):
    r"""Soft-bound RRAM: the step shrinks linearly to zero at each cell's bound.

    .. math::
        \text{up:}\quad w \leftarrow w + \alpha_+ \left(1 - \frac{w}{b_{max}}\right)(1+\sigma\xi)\\
        \text{down:}\quad w \leftarrow w - \alpha_- \left(1 - \frac{w}{b_{min}}\right)(1+\sigma\xi)

    then clip to ``[b_min, b_max]`` (``mult_noise=False``: ``+ alpha sigma xi`` instead).
    Without noise, ``n`` up pulses from ``w_0`` give
    ``b_max - (b_max - w_0)(1 - alpha_+/b_max)^n``.  The symmetry point, where an up
    and a down pulse cancel, is ``w* = (alpha_+ - alpha_-)/(alpha_+/b_max - alpha_-/b_min)``
    (Kim et al., arXiv:1907.10228; aihwkit ``SoftBoundsDevice``).
    """

    model_id: ClassVar[int] = MODEL_LINEAR
    mult_noise: bool = True

    def _validate_model(self) -> None:
        require_bool(self.name, "mult_noise", self.mult_noise)


@dataclass(frozen=True)
class ExpStep(PulsedDevice):
    r"""Exponential step, a fit to CMOS-like / RRAM responses (aihwkit ``ExpStepDevice``).

    .. math::
        z = \frac{2 a\, w}{b_{max} - b_{min}} + b,\qquad
        y_\pm = \max\!\left(1 - A_\pm e^{\pm\gamma_\pm z}, 0\right),\qquad
        w \leftarrow w \pm y_\pm\,\alpha_\pm (1+\sigma\xi)

    ``A_*``, ``gamma_*``, ``a``, ``b`` are array-wide fit parameters (no d2d).
    """

    model_id: ClassVar[int] = MODEL_EXP
    A_up: float = 0.00081
    A_down: float = 0.36833
    gamma_up: float = 12.44625
    gamma_down: float = 12.78785
    a: float = 0.244
    b: float = 0.2425

    def _validate_model(self) -> None:
        for f in ("A_up", "A_down", "gamma_up", "gamma_down"):
            require_number(self.name, f, getattr(self, f), 0.0, None)
        require_number(self.name, "a", self.a, None, None)
        require_number(self.name, "b", self.b, None, None)

    def global_params(self) -> np.ndarray:
        g = super().global_params()
        g[G_ES_A], g[G_ES_B] = self.a, self.b
        g[G_ES_A_UP], g[G_ES_A_DOWN] = self.A_up, self.A_down
        g[G_ES_GAMMA_UP], g[G_ES_GAMMA_DOWN] = self.gamma_up, self.gamma_down
        return g


@dataclass(frozen=True)
class PowStep(PulsedDevice):
    r"""Power-law step (Fusi & Abbott 2007; aihwkit ``PowStepDevice``).

    With :math:`\omega = (b_{max} - w)/(b_{max} - b_{min})`:

    .. math::
        \text{up: } w \leftarrow w + \alpha_+ \omega^{\gamma_+}(1+\sigma\xi),\qquad
        \text{down: } w \leftarrow w - \alpha_- (1-\omega)^{\gamma_-}(1+\sigma\xi)

    per cell ``gamma_± = pow_gamma (1 ± beta + pow_gamma_dtod xi)``, with
    ``beta = pow_up_down + pow_up_down_dtod xi``.  ``pow_gamma = 1`` is a soft bound
    referenced to the full range.
    """

    model_id: ClassVar[int] = MODEL_POW
    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0

    def _validate_model(self) -> None:
        require_number(self.name, "pow_gamma", self.pow_gamma, 0.0, None, lo_open=True)
        require_number(self.name, "pow_gamma_dtod", self.pow_gamma_dtod, 0.0, None)
        require_number(self.name, "pow_up_down", self.pow_up_down, -1.0, 1.0, lo_open=True, hi_open=True)
        require_number(self.name, "pow_up_down_dtod", self.pow_up_down_dtod, 0.0, None)


@dataclass(frozen=True)
class PiecewiseStep(PulsedDevice):
    r"""Step size interpolated from measured nodes (aihwkit ``PiecewiseStepDevice``).

    ``piecewise_up``/``piecewise_down`` hold the step, relative to ``dw_min``, at
    ``n`` nodes equally spaced over each cell's ``[b_min, b_max]``.  With
    :math:`i, q` the node index and position of ``w`` between nodes:

    .. math:: w \leftarrow w \pm \alpha_\pm\big((1-q) v_\pm[i] + q\, v_\pm[i+1]\big)(1+\sigma\xi)

    Build one from a measured pulse response with :meth:`from_pulse_response`.
    """

    model_id: ClassVar[int] = MODEL_PIECEWISE
    piecewise_up: tuple = (1.0,)
    piecewise_down: tuple = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "piecewise_up", tuple(float(v) for v in self.piecewise_up))
        object.__setattr__(self, "piecewise_down", tuple(float(v) for v in self.piecewise_down))
        super().__post_init__()

    def _validate_model(self) -> None:
        n = self.name
        if len(self.piecewise_up) == 0 or len(self.piecewise_up) != len(self.piecewise_down):
            raise ValueError(f"{n}.piecewise_up and piecewise_down must be non-empty and of equal length, "
                             f"got {len(self.piecewise_up)} and {len(self.piecewise_down)}")
        for f in ("piecewise_up", "piecewise_down"):
            for k, v in enumerate(getattr(self, f)):
                require_number(n, f"{f}[{k}]", v, 0.0, None)

    def piecewise_tables(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(self.piecewise_up, dtype=np.float64),
                np.asarray(self.piecewise_down, dtype=np.float64))

    @classmethod
    def from_pulse_response(cls, up_trace, down_trace, n_nodes: int = 16, **overrides: Any) -> "PiecewiseStep":
        """Fit a piecewise step model to a measured pulse response.

        Args:
            up_trace: weights (normalised conductance) after 0, 1, 2, ... up pulses.
            down_trace: the same for down pulses.
            n_nodes: number of interpolation nodes over ``[w_min, w_max]``.
            overrides: other fields (e.g. ``dw_min_dtod=0``); ``w_min``, ``w_max``
                default to the extremes of the traces and ``dw_min`` to the
                mean step magnitude at the node nearest ``w = 0``.

        The step ``|w[k+1] - w[k]|`` is attributed to ``w[k]`` and averaged per
        node bin; empty bins are filled by linear interpolation.
        """
        up = np.asarray(up_trace, dtype=np.float64)
        dn = np.asarray(down_trace, dtype=np.float64)
        if up.ndim != 1 or dn.ndim != 1 or up.size < 3 or dn.size < 3:
            raise ValueError("PiecewiseStep.from_pulse_response: up_trace and down_trace must be 1-D with >= 3 points")
        if not (np.all(np.isfinite(up)) and np.all(np.isfinite(dn))):
            raise ValueError("PiecewiseStep.from_pulse_response: traces contain NaN or inf")
        require_number(cls.__name__, "n_nodes", n_nodes, 2, 64, integer=True)
        w_min = float(overrides.pop("w_min", min(up.min(), dn.min())))
        w_max = float(overrides.pop("w_max", max(up.max(), dn.max())))
        nodes = np.linspace(w_min, w_max, n_nodes)

        def per_node(trace: np.ndarray) -> np.ndarray:
            steps = np.abs(np.diff(trace))
            pos = trace[:-1]
            idx = np.clip(np.rint((pos - w_min) / (w_max - w_min) * (n_nodes - 1)).astype(int), 0, n_nodes - 1)
            sums = np.bincount(idx, weights=steps, minlength=n_nodes)
            counts = np.bincount(idx, minlength=n_nodes)
            have = counts > 0
            vals = np.zeros(n_nodes)
            vals[have] = sums[have] / counts[have]
            return np.interp(nodes, nodes[have], vals[have])

        v_up, v_dn = per_node(up), per_node(dn)
        zero = int(np.argmin(np.abs(nodes)))
        dw_min = float(overrides.pop("dw_min", 0.5 * (v_up[zero] + v_dn[zero])))
        if not dw_min > 0:
            raise ValueError("PiecewiseStep.from_pulse_response: the traces show no step near w = 0")
        return cls(dw_min=dw_min, w_min=w_min, w_max=w_max,
                   piecewise_up=tuple(v_up / dw_min), piecewise_down=tuple(v_dn / dw_min), **overrides)
