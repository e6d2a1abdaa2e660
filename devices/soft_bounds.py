r"""Soft-bound RRAM: the step shrinks linearly to zero at each cell's bound (aihwkit ``SoftBoundsDevice``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import PulsedDevice
from .linear_step import linear_step, linear_symmetry_point
from .validation import require_bool


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
    (Kim et al., arXiv:1907.10228; aihwkit ``SoftBoundsDevice``).  It is a linear step
    with slopes ``s_+ = -alpha_+/b_max``, ``s_- = -alpha_-/b_min`` (the model planes).
    """

    pulse_step: ClassVar[Any] = linear_step
    mult_noise: bool = True

    def _validate_model(self) -> None:
        require_bool(self.name, "mult_noise", self.mult_noise)

    @property
    def mult_noise_on(self) -> bool:
        return self.mult_noise

    def _model_planes(self, rng, size, scale_up, scale_down, b_max, b_min):
        return (-scale_up / np.where(b_max != 0, b_max, np.inf), -scale_down / np.where(b_min != 0, b_min, -np.inf))

    def symmetry_point(self, cell: np.ndarray | None = None):
        if cell is not None:
            return linear_symmetry_point(cell)
        a_up, a_dn = self.nominal_scales()
        return (a_up - a_dn) / (a_up / self.w_max - a_dn / self.w_min)
