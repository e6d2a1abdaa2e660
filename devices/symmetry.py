r"""The symmetry point of a device: the weight where an up and a down pulse cancel.

Under zero-mean random pulsing ``E[dw] ∝ (w* - w)``, so an asymmetric device
decays toward ``w*`` rather than 0 (Kim et al., "Zero-shifting technique for
deep neural network training on resistive cross-point arrays",
arXiv:1907.10228, 2019).

Closed forms (per cell):

* LinearStep / SoftBounds, step ``alpha_± + s_± w``:
  ``w* = (alpha_- - alpha_+)/(s_+ - s_-)``; for SoftBounds
  ``s_+ = -alpha_+/b_max``, ``s_- = -alpha_-/b_min``, giving
  ``w* = (alpha_+ - alpha_-)/(alpha_+/b_max - alpha_-/b_min)``.
* PowStep with ``gamma_+ = gamma_- = gamma``: ``alpha_+ omega^gamma = alpha_-(1-omega)^gamma``
  gives ``omega = 1/(1 + (alpha_+/alpha_-)^{1/gamma})`` and ``w* = b_max - omega (b_max - b_min)``.
* ConstantStep has none unless ``alpha_+ = alpha_-`` (then every weight is one);
  ExpStep and PiecewiseStep have none in general: use :func:`measure_symmetry_point`.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceConfig
from .kernels import alternating_pulses
from .layout import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP
from .validation import require_number


def symmetry_point(device: DeviceConfig, cell: np.ndarray | None = None) -> np.ndarray | float:
    """Closed-form symmetry point (the model's ``symmetry_point``).

    With ``cell`` (per-cell parameters from :func:`xbarsim.devices.sample_cells`) it returns
    one value per cell; without, the nominal device's value (a float).
    Raises ``ValueError`` for models without a closed form.
    """
    return device.symmetry_point(cell)


def convergence_pairs(cell: np.ndarray, tolerance_steps: float = 0.5, max_pairs: int = 200_000) -> int:
    """Pairs needed for the slowest cell to converge from a bound to within ``tolerance_steps`` steps.

    Uses the soft-bound contraction rate per (up, down) pair,
    ``rate = alpha_+/b_max + alpha_-/|b_min|`` (exact for SoftBounds, a scale estimate
    for other models): the distance shrinks as ``exp(-rate n)``, so
    ``n = ln(range / (tolerance alpha)) / rate``.
    """
    c = np.moveaxis(cell.astype(np.float64), -1, 0)
    alpha = 0.5 * (c[C_SCALE_UP] + c[C_SCALE_DOWN])
    moving = alpha > 0
    if not np.any(moving):
        return 1
    with np.errstate(divide="ignore"):
        rate = c[C_SCALE_UP] / np.abs(c[C_B_MAX]) + c[C_SCALE_DOWN] / np.abs(c[C_B_MIN])
    rate, alpha = rate[moving], alpha[moving]
    span = (c[C_B_MAX] - c[C_B_MIN])[moving]
    n = np.log(np.maximum(span / (tolerance_steps * alpha), np.e)) / rate
    return int(min(max_pairs, np.ceil(np.max(n))))


def measure_symmetry_point(device: DeviceConfig, cell: np.ndarray, w0: np.ndarray | None = None,
                           n_pairs: int | None = None, n_average: int | None = None, seed: int = 0) -> np.ndarray:
    """Measure each cell's symmetry point with alternating up/down pulses.

    Starting from ``w0`` (default: each cell's upper bound ``b_max``), applies
    ``n_pairs`` (up, down) pairs with the device's c2c noise and returns the mean
    weight over the last ``n_average`` pairs.  Works for any pulsed model.

    Defaults: ``n_average = 1000`` pairs after a convergence phase of
    :func:`convergence_pairs` (the slowest cell's settling time).  Without noise the
    result is within ``O(alpha)`` of the closed form once converged; with c2c noise
    ``sigma`` its standard error is about ``sigma alpha sqrt(2) / (rate sqrt(n_average))``.
    """
    if not device.pulsed:
        raise ValueError(f"{device.name} is not pulsed and has no symmetry point")
    if n_average is None:
        n_average = 1000 if n_pairs is None else max(1, n_pairs // 2)
    require_number("measure_symmetry_point", "n_average", n_average, 1, None, integer=True)
    if n_pairs is None:
        n_pairs = convergence_pairs(cell) + n_average
    require_number("measure_symmetry_point", "n_pairs", n_pairs, 1, None, integer=True)
    if n_average > n_pairs:
        raise ValueError(f"measure_symmetry_point.n_average = {n_average} must be <= n_pairs = {n_pairs}")
    w = (cell[..., C_B_MAX] if w0 is None else w0).astype(np.float32).copy()
    return alternating_pulses(device, w, cell, int(n_pairs), int(n_average), int(seed))
