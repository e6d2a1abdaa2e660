r"""Device-to-device variation: sample every cell's own parameters from a seed.

``sample_cells(device, shape, seed)`` returns the ``(rows, cols, N_CELL)``
float32 per-cell parameters used by the kernels (layout in :mod:`xbarsim.devices.kernels`).
The equations are those of :mod:`xbarsim.devices.models`; sampling uses NumPy's PCG64
seeded with ``seed`` (construction is not thread-parallel, so it is reproducible).
"""
from __future__ import annotations

import math

import numpy as np

from .kernels import (C_B_MAX, C_B_MIN, C_DECAY, C_DIFFUSION, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN,
                      C_SLOPE_UP, N_CELL)
from .models import DeviceConfig, IdealDevice, LinearStep, PowStep, PulsedDevice, SoftBounds


def sample_cells(device: DeviceConfig, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Per-cell parameters of a ``shape = (rows, cols)`` array of ``device`` cells.

    Returns float32 ``(rows, cols, N_CELL)`` (C-contiguous, parameters of a cell adjacent).  For :class:`IdealDevice` the bounds
    are infinite and the steps zero (its updates are exact, not pulsed).
    """
    planes = _sample_planes(device, tuple(shape), seed)
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1))


def _sample_planes(device: DeviceConfig, shape: tuple[int, int], seed: int) -> np.ndarray:
    rows, cols = shape
    cell = np.zeros((N_CELL, rows, cols), dtype=np.float32)
    rng = np.random.Generator(np.random.PCG64(seed))
    if isinstance(device, IdealDevice):
        cell[C_B_MAX] = np.inf
        cell[C_B_MIN] = -np.inf
        cell[C_DECAY] = 1.0 - 1.0 / device.lifetime if device.lifetime > 0 else 1.0
        cell[C_DIFFUSION] = device.diffusion
        return cell
    if not isinstance(device, PulsedDevice):  # pragma: no cover - registry guards this
        raise ValueError(f"unsupported device {device!r}")
    p = device
    size = (rows, cols)
    b_max = p.w_max * (1.0 + p.w_max_dtod * rng.standard_normal(size))
    b_min = p.w_min * (1.0 + p.w_min_dtod * rng.standard_normal(size))
    xi = rng.standard_normal(size)
    gain = np.exp(p.dw_min_dtod * xi) if p.dw_min_dtod_log_normal else 1.0 + p.dw_min_dtod * xi
    r = p.up_down_dtod * rng.standard_normal(size)
    up_bias = min(p.up_down, 0.0)
    down_bias = -max(p.up_down, 0.0)
    scale_up = (up_bias + gain + r) * p.dw_min
    scale_down = (down_bias + gain - r) * p.dw_min
    if p.enforce_consistency:
        scale_up, scale_down = np.abs(scale_up), np.abs(scale_down)
        lo, hi = np.minimum(b_min, b_max), np.maximum(b_min, b_max)
        b_max, b_min = np.abs(hi), -np.abs(lo)
    else:  # "turn off" cells whose bounds crossed, as aihwkit does
        crossed = b_min > b_max
        mid = 0.5 * (b_min + b_max)
        b_max = np.where(crossed, mid, b_max)
        b_min = np.where(crossed, mid, b_min)

    slope_up = np.zeros(size)
    slope_down = np.zeros(size)
    if isinstance(p, SoftBounds):
        slope_up = -scale_up / np.where(b_max != 0, b_max, np.inf)
        slope_down = -scale_down / np.where(b_min != 0, b_min, -np.inf)
    elif isinstance(p, LinearStep):
        g_up = p.gamma_up + p.gamma_up_dtod * rng.standard_normal(size)
        g_dn = p.gamma_down + p.gamma_down_dtod * rng.standard_normal(size)
        if not p.allow_increasing:
            g_up, g_dn = np.abs(g_up), np.abs(g_dn)
        ref_up = p.w_max if p.mean_bound_reference else b_max
        ref_dn = p.w_min if p.mean_bound_reference else b_min
        with np.errstate(divide="ignore", invalid="ignore"):
            slope_up = np.where(ref_up != 0, -g_up * scale_up / ref_up, 0.0)
            slope_down = np.where(ref_dn != 0, -g_dn * scale_down / ref_dn, 0.0)
    elif isinstance(p, PowStep):
        gxi = rng.standard_normal(size)
        beta = p.pow_up_down + p.pow_up_down_dtod * rng.standard_normal(size)
        slope_up = np.maximum(p.pow_gamma * (1.0 + beta + p.pow_gamma_dtod * gxi), 0.0)
        slope_down = np.maximum(p.pow_gamma * (1.0 - beta + p.pow_gamma_dtod * gxi), 0.0)

    if p.corrupt_devices_prob > 0:
        stuck = rng.random(size) < p.corrupt_devices_prob
        mn = np.maximum(np.minimum(b_max, b_min), -p.corrupt_devices_range)
        mx = np.minimum(np.maximum(b_max, b_min), p.corrupt_devices_range)
        value = mn + (mx - mn) * rng.random(size)
        b_max = np.where(stuck, value, b_max)
        b_min = np.where(stuck, value, b_min)
        scale_up = np.where(stuck, 0.0, scale_up)
        scale_down = np.where(stuck, 0.0, scale_down)
        slope_up = np.where(stuck, 0.0, slope_up)
        slope_down = np.where(stuck, 0.0, slope_down)

    if p.lifetime > 0:
        life = p.lifetime * (1.0 + p.lifetime_dtod * rng.standard_normal(size))
        life = np.maximum(life, 1.0)
        cell[C_DECAY] = 1.0 - 1.0 / life
    else:
        cell[C_DECAY] = 1.0
    if p.diffusion > 0:
        cell[C_DIFFUSION] = np.abs(p.diffusion * (1.0 + p.diffusion_dtod * rng.standard_normal(size)))

    cell[C_SCALE_UP], cell[C_SCALE_DOWN] = scale_up, scale_down
    cell[C_B_MAX], cell[C_B_MIN] = b_max, b_min
    cell[C_SLOPE_UP], cell[C_SLOPE_DOWN] = slope_up, slope_down
    return cell


def stuck_mask(cell: np.ndarray) -> np.ndarray:
    """True where a cell cannot move (both steps zero)."""
    return (cell[..., C_SCALE_UP] == 0) & (cell[..., C_SCALE_DOWN] == 0)


def nominal_num_states(device: DeviceConfig) -> float:
    """``(w_max - w_min)/dw_min`` of the nominal device (inf for ideal)."""
    return math.inf if isinstance(device, IdealDevice) else device.num_states
