r"""Device-to-device variation: sample every cell's own parameters from a seed.

``sample_cells(device, shape, seed)`` returns the ``(rows, cols, N_CELL)``
float32 per-cell parameters used by the kernels (layout in :mod:`xbarsim.devices.layout`).
Each model draws them (``DeviceConfig.sample_planes``, equations in :mod:`xbarsim.devices.base`
and the model's module) from NumPy's PCG64 seeded with ``seed``; construction is not
thread-parallel, so it is reproducible.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceConfig
from .layout import C_SCALE_DOWN, C_SCALE_UP


def sample_cells(device: DeviceConfig, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Per-cell parameters of a ``shape = (rows, cols)`` array of ``device`` cells.

    Returns float32 ``(rows, cols, N_CELL)`` (C-contiguous, parameters of a cell adjacent).  For
    :class:`~xbarsim.devices.IdealDevice` the bounds are infinite and the steps zero (its updates
    are exact, not pulsed).
    """
    planes = device.sample_planes(tuple(shape), np.random.Generator(np.random.PCG64(seed)))
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1))


def stuck_mask(cell: np.ndarray) -> np.ndarray:
    """True where a cell cannot move (both steps zero)."""
    return (cell[..., C_SCALE_UP] == 0) & (cell[..., C_SCALE_DOWN] == 0)


def nominal_num_states(device: DeviceConfig) -> float:
    """``(w_max - w_min)/dw_min`` of the nominal device (inf for ideal)."""
    return device.num_states
