"""The ``pulse_response`` sweep task: ``n_up`` up then ``n_down`` down pulses on cells of one device model.

Params: ``device`` (model name), ``n_up``, ``n_down``, ``n_cells``, ``symmetry``, and
the model's own fields (aihwkit names).  The point stores the mean and spread of the
cells' trace and, with ``symmetry``, the cells' symmetry point measured by
alternating pulses and, where the model has one, its closed form.  The physics is in
:mod:`xbarsim.devices`; this is only the adapter.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema, Task, did_you_mean
from xbarsim.experiments.tasks.device_fields import pulsed_device_fields

__all__ = ["TASK", "PULSE_RESPONSE_PARAMS", "PulseResponseSchema", "run_pulse_response"]


PULSE_RESPONSE_PARAMS = {
    "device": Param(str, default="SoftBounds", doc="device model name (xbarsim.devices.device_names())"),
    "n_up": Param(int, 0, 1_000_000, default=200, doc="potentiating pulses"),
    "n_down": Param(int, 0, 1_000_000, default=200, doc="depressing pulses after the up pulses"),
    "n_cells": Param(int, 1, 100_000, default=16, doc="cells (d2d samples) measured"),
    "symmetry": Param(bool, default=True, doc="also measure the symmetry point"),
}


class PulseResponseSchema:
    """Task params of :data:`PULSE_RESPONSE_PARAMS` plus the chosen model's own fields."""

    def __init__(self):
        self.task = ParamSchema(PULSE_RESPONSE_PARAMS)
        self.device_fields = pulsed_device_fields()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted({*self.task.keys, *self.device_fields}))

    def is_nested(self, name: str) -> bool:
        return False

    def check_value(self, name: str, value: Any) -> Any:
        if name in self.task.params:
            return self.task.check_value(name, value)
        if name not in self.device_fields:
            raise ValueError(f"unknown parameter {name!r}{did_you_mean(name, self.keys)}; allowed: "
                             f"{', '.join(self.task.keys)} and device-model fields ({', '.join(sorted(self.device_fields))})")
        t = self.device_fields[name]  # type only here; the model checks its ranges
        if t is bool:
            return Param(bool).check(name, value)
        return Param(float).check(name, value) if t in (int, float) else value

    def split(self, params: Mapping[str, Any]) -> tuple[dict, Any]:
        import xbarsim.devices

        task = self.task.validate({k: v for k, v in params.items() if k in self.task.params})
        overrides = {k: self.check_value(k, v) for k, v in params.items() if k not in self.task.params}
        device = xbarsim.devices.device_from_name(task["device"], **overrides)
        if not isinstance(device, xbarsim.devices.PulsedDevice):
            raise ValueError(f"parameter 'device' = {task['device']!r} is not a pulsed device model")
        return task, device

    def validate(self, params: Mapping[str, Any]) -> dict:
        self.split(params)
        return dict(params)


def run_pulse_response(params: dict, seed: int) -> dict:
    """Pulse-response trace (mean and std over cells) and symmetry point of one device model."""
    import xbarsim.devices

    task, device = PulseResponseSchema().split(params)
    n_up, n_cells = task["n_up"], task["n_cells"]
    trace = xbarsim.devices.pulse_response(device, n_up, task["n_down"], n_cells, seed=seed)  # (pulses + 1, cells)
    out = {
        "weight_mean": trace.mean(axis=1),
        "weight_std": trace.std(axis=1),
        "w_start": float(trace[0].mean()),
        "w_after_up": float(trace[n_up].mean()),
        "w_final": float(trace[-1].mean()),
        "num_states": float(device.num_states),
    }
    if task["symmetry"]:
        cell = xbarsim.devices.sample_cells(device, (1, n_cells), seed)  # the cells pulse_response used
        out["symmetry_point"] = float(np.mean(xbarsim.devices.measure_symmetry_point(device, cell, seed=seed)))
        try:
            out["symmetry_point_closed_form"] = float(np.mean(xbarsim.devices.symmetry_point(device, cell)))
        except ValueError:  # the model has no closed form
            out["symmetry_point_closed_form"] = float("nan")
    return out


TASK = Task("pulse_response", run_pulse_response, PulseResponseSchema())
