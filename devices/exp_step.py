r"""Exponential step, a fit to CMOS-like / RRAM responses (aihwkit ``ExpStepDevice``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from .base import PulsedDevice
from .layout import C_B_MAX, C_B_MIN, C_SCALE_UP, G_MODEL_PARAMS
from .validation import require_number

# the model's scalars in the kernel parameter vector
G_ES_A, G_ES_B, G_ES_A_UP, G_ES_A_DOWN, G_ES_GAMMA_UP, G_ES_GAMMA_DOWN = range(G_MODEL_PARAMS, G_MODEL_PARAMS + 6)


@numba.njit(cache=True, inline="always")
def exp_step(w, up, cellf, base, g):
    """``alpha_± max(1 - A_± exp(±gamma_± z), 0)``, ``z = 2 a w / (b_max - b_min) + b``."""
    o = np.uint64(0) if up else np.uint64(1)
    scale = np.float64(cellf[base + np.uint64(C_SCALE_UP) + o])
    b_diff = np.float64(cellf[base + np.uint64(C_B_MAX)]) - np.float64(cellf[base + np.uint64(C_B_MIN)])
    if b_diff <= 0.0:
        return 0.0
    z = 2.0 * w / b_diff * g[G_ES_A] + g[G_ES_B]
    if up:
        y = 1.0 - g[G_ES_A_UP] * math.exp(g[G_ES_GAMMA_UP] * z)
    else:
        y = 1.0 - g[G_ES_A_DOWN] * math.exp(-g[G_ES_GAMMA_DOWN] * z)
    return scale * y if y > 0.0 else 0.0


@dataclass(frozen=True)
class ExpStep(PulsedDevice):
    r"""Exponential step, a fit to CMOS-like / RRAM responses (aihwkit ``ExpStepDevice``).

    .. math::
        z = \frac{2 a\, w}{b_{max} - b_{min}} + b,\qquad
        y_\pm = \max\!\left(1 - A_\pm e^{\pm\gamma_\pm z}, 0\right),\qquad
        w \leftarrow w \pm y_\pm\,\alpha_\pm (1+\sigma\xi)

    ``A_*``, ``gamma_*``, ``a``, ``b`` are array-wide fit parameters (no d2d).  No closed-form
    symmetry point: use :func:`xbarsim.devices.measure_symmetry_point`.  Model planes unused.
    """

    pulse_step: ClassVar[Any] = exp_step
    n_model_params: ClassVar[int] = 6
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

    def kernel_params(self) -> np.ndarray:
        g = super().kernel_params()
        g[G_ES_A], g[G_ES_B] = self.a, self.b
        g[G_ES_A_UP], g[G_ES_A_DOWN] = self.A_up, self.A_down
        g[G_ES_GAMMA_UP], g[G_ES_GAMMA_DOWN] = self.gamma_up, self.gamma_down
        return g
