"""Test-only sweep tasks (they test the sweep machinery, not physics).

Specs name them by import path, e.g. ``task = "tests.sweep_tasks:toy_task"``,
so worker processes and ``xbarsim sweep`` subprocesses can import them.
"""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from xbarsim.experiments.sweeps.tasks import Param, ParamSchema, Task


def _check_lo_hi(params: dict) -> None:
    if not params["lo"] < params["hi"]:
        raise ValueError(f"parameters lo = {params['lo']!r} and hi = {params['hi']!r}: need lo < hi")


TOY_SCHEMA = ParamSchema(
    {
        "a": Param(float, 0.0, 10.0, default=1.0, doc="curve rate"),
        "b": Param(int, 1, 50, default=5, doc="curve length"),
        "mode": Param(str, choices=("x", "y"), default="x"),
        "lo": Param(float, default=0.0),
        "hi": Param(float, default=1.0),
        "sleep": Param(float, 0.0, 10.0, default=0.0, doc="seconds to sleep (to make runs overlap)"),
        "fail_above": Param(float, default=1e9, doc="raise if a > fail_above"),
        "counter_file": Param(str, default="", doc="append one line per run to this file"),
    },
    check_all=_check_lo_hi,
)


def run_toy(params: dict, seed: int) -> dict:
    """A deterministic function of (params, seed): a noisy saturating curve."""
    if params["counter_file"]:
        with open(params["counter_file"], "a") as f:
            f.write(f"{params['a']!r} {params['mode']} {seed} {os.getpid()}\n")
    if params["sleep"]:
        time.sleep(params["sleep"])
    if params["a"] > params["fail_above"]:
        raise RuntimeError(f"toy task refuses a = {params['a']} > {params['fail_above']}")
    rng = np.random.default_rng(seed)
    k = np.arange(1, params["b"] + 1)
    curve = params["lo"] + (params["hi"] - params["lo"]) * (1 - np.exp(-params["a"] * k / params["b"]))
    curve = curve + 0.01 * rng.standard_normal(k.size)
    return {
        "test_acc": curve,
        "final_test_acc": float(curve[-1]),
        "steps": int(params["b"]),
        "mode_used": params["mode"],
        "converged": bool(curve[-1] > 0.5),
    }


toy_task = Task("toy", run_toy, TOY_SCHEMA)


@dataclasses.dataclass(frozen=True)
class NestedConfig:
    """A config with a table-valued field, to test dotted parameter names."""

    scale: float = 1.0
    inner: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"NestedConfig.scale = {self.scale!r} must be > 0")
        for k, v in self.inner.items():
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"NestedConfig.inner.{k} = {v!r} must be a number >= 0")


def run_nested(params: dict, seed: int) -> dict:
    cfg = NestedConfig(**params)
    return {"total": cfg.scale * sum(cfg.inner.values()) + seed % 7}


nested_task = Task("nested", run_nested, NestedConfig)
