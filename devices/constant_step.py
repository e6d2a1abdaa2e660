r"""Constant step, hard bounds (aihwkit ``ConstantStepDevice``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from .base import PulsedDevice
from .layout import C_SCALE_UP


@numba.njit(cache=True, inline="always")
def constant_step(w, up, cellf, base, g):
    """``alpha_±`` whatever the weight."""
    o = np.uint64(0) if up else np.uint64(1)
    return np.float64(cellf[base + np.uint64(C_SCALE_UP) + o])


@dataclass(frozen=True)
class ConstantStep(PulsedDevice):
    r"""Constant step, hard bounds.

    .. math:: w \leftarrow \mathrm{clip}_{[b_{min}, b_{max}]}\big(w \pm \alpha_\pm (1 + \sigma\xi)\big)

    ``n`` noise-free up pulses from ``w_0`` give ``min(w_0 + n alpha_+, b_max)``.
    (aihwkit ``ConstantStepDevice``.)  The model planes are unused (zero).
    """

    pulse_step: ClassVar[Any] = constant_step

    def symmetry_point(self, cell: np.ndarray | None = None):
        raise ValueError(f"{self.name} has no symmetry point unless alpha_+ = alpha_- (then every weight is one); "
                         f"use measure_symmetry_point()")
