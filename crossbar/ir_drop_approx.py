r"""aihwkit's simple IR-drop model (``IOParameters.ir_drop``), for parity with aihwkit.

For a read ``y = W x`` of an ``(n_out, n)`` weight matrix ``W`` (weights in units of
``g_max``, so ``|W| <= 1``) and inputs ``x`` (``n`` per sample), aihwkit's
``ForwardBackwardPassIOManaged::applyIrDrop`` (``rpu_forward_backward_pass.cpp``)
subtracts a position-weighted, current-dependent correction::

    a_i  = (n / g_ratio) * sum_j |W_ij| |x_j|
    c_i  = a_i (a_i (0.05 a_i - 0.2) + 0.5)
    x'_j = x_j (1 - (1 - j/n)^2)                                    j = 0 .. n-1
    y_i  = sum_j W_ij x_j - ir_drop * c_i * sum_j W_ij x'_j

``ir_drop`` is a dimensionless scale (0 = off) and ``g_ratio`` (aihwkit's
``ir_drop_g_ratio``, default 5.7143e5) the ratio of a wire segment's conductance
to the cell's ``g_max``.  Input ``j = 0`` sits next to the driver and feels no
drop; the correction grows quadratically towards ``j = n - 1``.  The cubic
``c_i`` is aihwkit's fit to circuit simulations of the drop along one line; the
model is not derived from the network, and :mod:`xbarsim.crossbar.ir_drop`
solves the network itself.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ir_drop_approx", "AIHWKIT_IR_DROP_G_RATIO"]

#: aihwkit's default ``ir_drop_g_ratio``: wire-segment conductance over the cell's ``g_max``
AIHWKIT_IR_DROP_G_RATIO = 5.7143e5


def ir_drop_approx(weights, x, ir_drop: float, g_ratio: float = AIHWKIT_IR_DROP_G_RATIO) -> np.ndarray:
    """``y = W x`` with aihwkit's approximate IR-drop correction (module docstring); ``x`` is ``(batch, n)``."""
    w = np.asarray(weights)
    x = np.asarray(x)
    if ir_drop < 0 or g_ratio <= 0:
        raise ValueError(f"ir_drop must be >= 0 and g_ratio > 0, got ir_drop={ir_drop!r}, g_ratio={g_ratio!r}")
    y = x @ w.T
    if ir_drop == 0:
        return y
    n = w.shape[1]
    a = (n / g_ratio) * (np.abs(x) @ np.abs(w).T)
    c = a * (a * (0.05 * a - 0.2) + 0.5)
    p = 1.0 - np.arange(n) / n
    return y - ir_drop * c * ((x * (1.0 - p * p)) @ w.T)
