r"""Soft-bound RRAM parametrised by its saturation point (aihwkit ``SoftBoundsPmaxDevice``)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .soft_bounds import SoftBounds
from .validation import require_number


@dataclass(frozen=True)
class SoftBoundsPmax(SoftBounds):
    r"""Soft bounds fitted by the pulses ``p_max`` that take a cell from ``range_min`` to ``range_max``.

    The same cell as :class:`SoftBounds` (same compiled step, d2d sampling and symmetry
    point), with ``w_min``, ``w_max``, ``dw_min`` and ``up_down`` derived from the fit
    parameters as aihwkit 1.2's code derives them (``SoftBoundsPmaxDevice.as_bindings``):

    .. math::
        B = \frac{r_{max} - r_{min}}{1 - e^{-\alpha p_{max}}},\quad
        w_{min} = r_{min},\quad w_{max} = r_{min} + B,\quad
        dw_{min} = B\alpha,\quad \text{up\_down} = 1 + 2 r_{min}/B

    so that, noise-free and without d2d spread, ``alpha_+ = B alpha`` and
    ``alpha_- = -2 alpha r_min``, and a pulse moves the weight by

    .. math::
        \Delta w_+ = B\alpha\,\frac{r_{min} + B - w}{r_{min} + B},\qquad
        \Delta w_- = 2\alpha\,(w - r_{min}).

    aihwkit's documentation states the response ``w(p) = B(1 - e^{-\alpha p}) + r_{min}``
    (up) and ``w(p) = -B(1 - e^{-\alpha(p_{max} - p)}) + r_{max}`` (down), i.e.
    ``dw_+ = alpha (r_min + B - w)`` and ``dw_- = alpha (w - r_max + B)``.  Its code,
    above, gives those only for ``r_min = 0``; xbarsim follows the code (with aihwkit's
    defaults, ``p_max = 1000`` up pulses from ``r_min = -1`` end at 1.356 in both programs, not
    at ``r_max = 1``; the noise-free responses agree to 2.4e-7, one or two float32 steps, over
    1000 up and 1000 down pulses).  The derived
    ``up_down`` must lie in (-1, 1), which needs ``r_min < 0 < r_min + B``.

    Attributes:
        p_max: pulses from ``range_min`` to ``range_max`` (dimensionless, >= 1).
        alpha: the soft-bound slope per pulse (> 0).
        range_min, range_max: the weights at the start and the end of the ``p_max`` up pulses.
        w_min, w_max, dw_min, up_down: derived; leave them unset (a stored config passes them back).
    """

    p_max: int = 1000
    alpha: float = 0.001 / 2
    range_min: float = -1.0
    range_max: float = 1.0
    w_min: float = None  # type: ignore[assignment]
    w_max: float = None  # type: ignore[assignment]
    dw_min: float = None  # type: ignore[assignment]
    up_down: float = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = self.name
        require_number(n, "p_max", self.p_max, 1, None, integer=True)
        require_number(n, "alpha", self.alpha, 0.0, None, lo_open=True)
        require_number(n, "range_min", self.range_min, None, 0.0, hi_open=True)
        require_number(n, "range_max", self.range_max, self.range_min, None, lo_open=True)
        b = (self.range_max - self.range_min) / (1.0 - math.exp(-self.p_max * self.alpha))
        derived = {"w_min": self.range_min, "w_max": self.range_min + b, "dw_min": b * self.alpha,
                   "up_down": 1.0 + 2.0 * self.range_min / b}
        for field, value in derived.items():
            given = getattr(self, field)
            if given is not None and not math.isclose(given, value, rel_tol=1e-12, abs_tol=1e-15):
                raise ValueError(f"{n}.{field} = {given!r} is derived from p_max, alpha, range_min and range_max "
                                 f"(here {value!r}); leave it unset")
            object.__setattr__(self, field, value)
        if not -1.0 < derived["up_down"] < 1.0:
            raise ValueError(f"{n}: the derived up_down = 1 + 2 range_min / B = {derived['up_down']!r} must lie in "
                             f"(-1, 1); it needs range_min < 0 < range_min + B (B = {b!r})")
        super().__post_init__()
