r"""The digital transfer buffer of Tiki-Taka v2 and c-TTv2: accumulate a read column, fire whole pulses.

For one column ``j`` of the buffer ``H`` (dimensionless, in units of the firing
threshold) and the scaled, de-chopped read ``u`` of the fast array's column:

.. math::
    h \leftarrow H_{:,j} + u \quad(\text{or } h \leftarrow u \text{ with } no\_buffer)\\
    n_i = \begin{cases} \mathrm{clip}(\mathrm{trunc}(h_i), -n_{max}, n_{max}) & |h_i| \ge 1\\
                        0 & \text{otherwise}\end{cases}\\
    H_{ij} \leftarrow \begin{cases} \mu\, h_i & n_i \ne 0,\ forget\_buffer\\
                                    h_i - (1-\mu)\, n_i & n_i \ne 0,\ \text{not } forget\_buffer\\
                                    h_i & n_i = 0\end{cases}

``n_max`` is ``transfer_update.desired_bl`` and ``mu`` the ``momentum``; ``n_i`` pulses
(up for ``n_i > 0``) then go into the slow array's cell ``(i, j)``.  This is aihwkit's
``ChoppedTransferRPUDevice::readAndUpdate`` loop (and, with ``H`` in threshold units,
``BufferedTransferRPUDevice::readAndUpdate``), in float32 as there.
"""
from __future__ import annotations

import numpy as np

__all__ = ["accumulate_and_fire"]


def accumulate_and_fire(buffer_col: np.ndarray, u: np.ndarray, max_steps: int, momentum: float,
                        forget_buffer: bool, no_buffer: bool = False, cap: float = 0.0) -> np.ndarray:
    """Add ``u`` to ``buffer_col`` (float32, in place), fire, return the pulse counts ``n`` (int64).

    See the module docstring for the equations.  ``cap > 0`` (dynamic transfer, without
    ``forget_buffer`` only) clips a buffer value that fired to ``[-cap, cap]``.
    """
    u = np.asarray(u, dtype=np.float32)
    h = u.copy() if no_buffer else (buffer_col + u).astype(np.float32)
    fires = np.abs(h) >= np.float32(1.0)
    n = np.where(fires, np.clip(np.trunc(h), -max_steps, max_steps), np.float32(0.0)).astype(np.float32)
    mu = np.float32(min(max(momentum, 0.0), 1.0))
    if forget_buffer:
        kept = h * mu
    else:
        kept = h - (np.float32(1.0) - mu) * n
        if cap > 0:
            kept = np.clip(kept, np.float32(-cap), np.float32(cap))
    buffer_col[...] = np.where(fires, kept, h)
    return n.astype(np.int64)
