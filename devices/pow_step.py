r"""Power-law step (Fusi & Abbott 2007; aihwkit ``PowStepDevice``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from .base import PulsedDevice, cell_planes
from .layout import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN, C_SLOPE_UP
from .validation import require_number


@numba.njit(cache=True, inline="always")
def pow_step(w, up, cellf, base, g):
    """``alpha_+ omega^gamma_+`` up, ``alpha_- (1 - omega)^gamma_-`` down (model planes: ``gamma_±``)."""
    o = np.uint64(0) if up else np.uint64(1)
    scale = np.float64(cellf[base + np.uint64(C_SCALE_UP) + o])
    b_max = np.float64(cellf[base + np.uint64(C_B_MAX)])
    b_min = np.float64(cellf[base + np.uint64(C_B_MIN)])
    rng = b_max - b_min
    if rng <= 0.0:
        return 0.0
    omega = (b_max - w) / rng if up else (w - b_min) / rng
    if omega <= 0.0:
        return 0.0
    return scale * omega ** np.float64(cellf[base + np.uint64(C_SLOPE_UP) + o])


@dataclass(frozen=True)
class PowStep(PulsedDevice):
    r"""Power-law step (Fusi & Abbott 2007; aihwkit ``PowStepDevice``).

    With :math:`\omega = (b_{max} - w)/(b_{max} - b_{min})`:

    .. math::
        \text{up: } w \leftarrow w + \alpha_+ \omega^{\gamma_+}(1+\sigma\xi),\qquad
        \text{down: } w \leftarrow w - \alpha_- (1-\omega)^{\gamma_-}(1+\sigma\xi)

    per cell ``gamma_± = pow_gamma (1 ± beta + pow_gamma_dtod xi)``, with
    ``beta = pow_up_down + pow_up_down_dtod xi`` (the model planes).  ``pow_gamma = 1`` is a
    soft bound referenced to the full range.  With ``gamma_+ = gamma_- = gamma`` the symmetry
    point solves ``alpha_+ omega^gamma = alpha_-(1-omega)^gamma``:
    ``omega = 1/(1 + (alpha_+/alpha_-)^{1/gamma})``, ``w* = b_max - omega (b_max - b_min)``.
    """

    pulse_step: ClassVar[Any] = pow_step
    pow_gamma: float = 1.0
    pow_gamma_dtod: float = 0.1
    pow_up_down: float = 0.0
    pow_up_down_dtod: float = 0.0

    def _validate_model(self) -> None:
        require_number(self.name, "pow_gamma", self.pow_gamma, 0.0, None, lo_open=True)
        require_number(self.name, "pow_gamma_dtod", self.pow_gamma_dtod, 0.0, None)
        require_number(self.name, "pow_up_down", self.pow_up_down, -1.0, 1.0, lo_open=True, hi_open=True)
        require_number(self.name, "pow_up_down_dtod", self.pow_up_down_dtod, 0.0, None)

    def _model_planes(self, rng, size, scale_up, scale_down, b_max, b_min):
        gxi = rng.standard_normal(size)
        beta = self.pow_up_down + self.pow_up_down_dtod * rng.standard_normal(size)
        return (np.maximum(self.pow_gamma * (1.0 + beta + self.pow_gamma_dtod * gxi), 0.0),
                np.maximum(self.pow_gamma * (1.0 - beta + self.pow_gamma_dtod * gxi), 0.0))

    def symmetry_point(self, cell: np.ndarray | None = None):
        if cell is None:
            a_up, a_dn = self.nominal_scales()
            if self.pow_up_down != 0:
                raise ValueError("PowStep symmetry point has a closed form only for pow_up_down = 0")
            omega = 1.0 / (1.0 + (a_up / a_dn) ** (1.0 / self.pow_gamma))
            return self.w_max - omega * (self.w_max - self.w_min)
        c = cell_planes(cell)
        if not np.allclose(c[C_SLOPE_UP], c[C_SLOPE_DOWN]):
            raise ValueError("PowStep symmetry point has a closed form only for equal up/down exponents")
        omega = 1.0 / (1.0 + (c[C_SCALE_UP] / c[C_SCALE_DOWN]) ** (1.0 / c[C_SLOPE_UP]))
        return c[C_B_MAX] - omega * (c[C_B_MAX] - c[C_B_MIN])
