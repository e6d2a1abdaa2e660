"""The ``train`` sweep task: one in-situ training run of :mod:`xbarsim.experiments.train` per point.

Params are ``TrainConfig`` fields, plus ``preset`` (a named base config of
:mod:`xbarsim.experiments.train_presets`) and, like ``xbarsim train --set``, bare
device-model fields (``dw_min``, ``up_down``, ...), which go into ``device_params``.
A preset's tables are merged with the point's, not replaced (``dw_min`` from the
preset survives a sweep of ``up_down``).  Validated by building the config.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from xbarsim.experiments.sweeps.tasks import Task, check_param_name
from xbarsim.experiments.tasks.device_fields import pulsed_device_fields

__all__ = ["TASK", "TrainSchema", "run_train_point"]


class TrainSchema:
    """Train params: TrainConfig fields, ``preset``, and bare device fields (see module docstring).

    ``train_module`` provides ``TrainConfig``, ``PRESETS`` and ``preset_config``
    (tests pass a stand-in).
    """

    def __init__(self, train_module):
        self.train = train_module
        self.config_fields = {f.name: f for f in dataclasses.fields(train_module.TrainConfig)}
        self.device_fields = pulsed_device_fields()
        self.known = {**self.config_fields, **dict.fromkeys(self.device_fields), "preset": None}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.known))

    def is_nested(self, name: str) -> bool:
        f = self.config_fields.get(name)
        return f is not None and "dict" in str(f.type).lower()

    def check_value(self, name: str, value: Any) -> Any:
        check_param_name(name, self.known, self.is_nested)
        return value

    def config(self, params: Mapping[str, Any]):
        p = dict(params)
        preset = p.pop("preset", None)
        device = {k: p.pop(k) for k in list(p) if k not in self.config_fields and k in self.device_fields}
        if device:
            p["device_params"] = {**p.get("device_params", {}), **device}
        for k in p:
            self.check_value(k, p[k])
        if preset is None:
            return self.train.TrainConfig.from_dict(p)
        for name, value in getattr(self.train, "PRESETS", {}).get(preset, {}).items():
            if isinstance(value, dict) and isinstance(p.get(name), dict):
                p[name] = {**value, **p[name]}
        return self.train.preset_config(preset, **p)

    def validate(self, params: Mapping[str, Any]) -> dict:
        self.config(params)
        return dict(params)


def run_train_point(params: dict, seed: int) -> dict:
    """The ``train`` task's run function: build the config (preset, device fields), train."""
    from xbarsim.experiments import train

    return train.run_train_task(TrainSchema(train).config(params), seed)


def _task() -> Task:
    from xbarsim.experiments import train

    return Task("train", run_train_point, TrainSchema(train))


TASK = _task()
