"""Pulse-response traces: what a device characterisation measures.

``pulse_response`` applies ``n_up`` potentiating pulses then ``n_down`` depressing
pulses to every cell and records the weight after each pulse, the standard
"conductance vs. pulse number" measurement of RRAM papers.
"""
from __future__ import annotations

import numpy as np

from .kernels import C_B_MIN, apply_pulse_counts
from .base import DeviceConfig
from .population import sample_cells
from .validation import require_number


def pulse_response(device: DeviceConfig, n_up: int = 500, n_down: int = 500, n_cells: int = 1,
                   seed: int = 0, w0: float | None = None) -> np.ndarray:
    """Weight after each pulse, shape ``(n_up + n_down + 1, n_cells)``.

    Row 0 is the start (``w0``, default each cell's lower bound ``b_min``); rows
    ``1..n_up`` follow up pulses, the rest down pulses.  Cells are sampled with
    d2d variation from ``seed``; c2c noise is drawn per pulse.
    """
    if not device.pulsed:
        raise ValueError(f"{device.name} is not pulsed; pulse_response needs a pulsed device")
    require_number("pulse_response", "n_up", n_up, 0, None, integer=True)
    require_number("pulse_response", "n_down", n_down, 0, None, integer=True)
    require_number("pulse_response", "n_cells", n_cells, 1, None, integer=True)
    cell = sample_cells(device, (1, n_cells), seed)
    w = (cell[..., C_B_MIN].copy() if w0 is None else np.full((1, n_cells), w0, np.float32)).astype(np.float32)
    w_read = w.copy()
    counts = np.zeros((1, n_cells), dtype=np.int64)
    trace = np.empty((n_up + n_down + 1, n_cells), dtype=np.float32)
    trace[0] = w[0]
    ones = np.ones((1, n_cells), dtype=np.int32)
    for k in range(n_up + n_down):
        n = ones if k < n_up else -ones
        apply_pulse_counts(device, w, w_read, n, cell, counts, (seed, k + 1, 0, 0, n_cells))
        trace[k + 1] = w[0]
    return trace
