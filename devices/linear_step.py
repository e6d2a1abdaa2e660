r"""Step size linear in the weight (aihwkit ``LinearStepDevice``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from .base import PulsedDevice, cell_planes
from .layout import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN, C_SLOPE_UP
from .validation import require_bool, require_number


@numba.njit(cache=True, inline="always")
def linear_step(w, up, cellf, base, g):
    """``alpha_± + s_± w`` (model planes: the slopes ``s_±``)."""
    o = np.uint64(0) if up else np.uint64(1)
    return np.float64(cellf[base + np.uint64(C_SCALE_UP) + o]) + np.float64(cellf[base + np.uint64(C_SLOPE_UP) + o]) * w


def linear_symmetry_point(cell: np.ndarray) -> np.ndarray:
    r"""Per-cell ``w* = (alpha_- - alpha_+)/(s_+ - s_-)`` of a step ``alpha_± + s_± w``, clipped to the bounds.

    Under zero-mean random pulsing ``E[dw] ∝ (w* - w)`` (Kim et al., arXiv:1907.10228).
    """
    c = cell_planes(cell)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = (c[C_SCALE_DOWN] - c[C_SCALE_UP]) / (c[C_SLOPE_UP] - c[C_SLOPE_DOWN])
    return np.clip(w, c[C_B_MIN], c[C_B_MAX])


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
    Symmetry point ``w* = (alpha_- - alpha_+)/(s_+ - s_-)``.  Model planes: ``s_±``.
    """

    pulse_step: ClassVar[Any] = linear_step
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

    @property
    def mult_noise_on(self) -> bool:
        return self.mult_noise

    def _model_planes(self, rng, size, scale_up, scale_down, b_max, b_min):
        g_up = self.gamma_up + self.gamma_up_dtod * rng.standard_normal(size)
        g_dn = self.gamma_down + self.gamma_down_dtod * rng.standard_normal(size)
        if not self.allow_increasing:
            g_up, g_dn = np.abs(g_up), np.abs(g_dn)
        ref_up = self.w_max if self.mean_bound_reference else b_max
        ref_dn = self.w_min if self.mean_bound_reference else b_min
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.where(ref_up != 0, -g_up * scale_up / ref_up, 0.0),
                    np.where(ref_dn != 0, -g_dn * scale_down / ref_dn, 0.0))

    def symmetry_point(self, cell: np.ndarray | None = None):
        if cell is not None:
            return linear_symmetry_point(cell)
        a_up, a_dn = self.nominal_scales()
        s_up = -self.gamma_up * a_up / self.w_max
        s_dn = -self.gamma_down * a_dn / self.w_min
        if s_up == s_dn:
            raise ValueError("LinearStep with equal slopes has no isolated symmetry point")
        return (a_dn - a_up) / (s_up - s_dn)
