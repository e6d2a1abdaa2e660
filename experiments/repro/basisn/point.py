"""One BasisN-style point: a ``baseline`` network, a ``basis`` decomposition, or the ``cost`` of ``K`` arrays.

A cost point simulates batch-1 inferences of three mappings on ``K`` arrays
(conventional with reprogramming through an :class:`~xbarsim.mapping.ArrayBank`,
conventional with the weights resident, BasisN-style), checks the arrays' counters
against the explicit schedules, and stores each case's op counts and inventory
(:mod:`xbarsim.crossbar.costs`) so the analysis can re-cost them from the file alone.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any

import numpy as np

from xbarsim.crossbar import IOConfig
from xbarsim.crossbar.costs import estimate
from xbarsim.devices import IdealDevice
from xbarsim.experiments.repro.basisn.spec import PARAMS
from xbarsim.experiments.repro.basisn.training import accuracy, basis_net, baseline, load_data
from xbarsim.experiments.repro.basisn_hardware import inventory_to_json, ops_to_json, preset_hardware
from xbarsim.experiments.sweeps.tasks import Task
from xbarsim.mapping import AnalogConfig, ArrayBank, convert_to_analog
from xbarsim.mapping.basis import BasisNModel, relative_error
from xbarsim.mapping.basis_schedule import (basisn_schedule, conventional_schedule, layer_shapes, schedule_inventory,
                                            schedule_op_counts)

__all__ = ["TASK", "run_point", "io_config", "adc_bits", "preset_hw"]


def io_config(params: dict):
    return IOConfig(out_noise=params["out_noise"])


def adc_bits(io) -> int:
    return int(math.ceil(math.log2(1.0 / io.out_res + 1.0))) if io.out_res > 0 else 16


def preset_hw(params: dict):
    """The preset's hardware figures, each named with its source (:mod:`.basisn_hardware`)."""
    return preset_hardware(params["array_size"])


def _baseline_point(params: dict, seed: int) -> dict:
    data = load_data(params)
    model = baseline(params, seed, data)
    shapes = layer_shapes(model, (1, 28, 28))
    return {"acc_fp": accuracy(model, data[2], data[3], params["test_subset"]),
            "n_weights": sum(s.out_features * s.fan_in for s in shapes),
            "digital_macs_per_inference": sum(s.out_features * s.fan_in * s.positions for s in shapes),
            "data_source": str(data[4])}


def _basis_point(params: dict, seed: int) -> dict:
    data = load_data(params)
    model = baseline(params, seed, data)
    net = basis_net(params, seed, data, model)
    groups = math.ceil(params["n_bases"] / params["array_size"])
    out = {"acc_digital": accuracy(net, data[2], data[3], params["test_subset"])}
    analog = BasisNModel(net, n_arrays=groups, array_rows=params["array_size"], device=IdealDevice(),
                         io=io_config(params), seed=seed)
    analog.program()
    out["acc_analog"] = accuracy(analog, data[2], data[3], params["analog_test_subset"], batch=100)
    out["acc_fp_analog_subset"] = accuracy(model, data[2], data[3], params["analog_test_subset"])
    analog.detach()
    errs = relative_error(net, model)
    out["relative_weight_error"] = float(np.mean(list(errs.values())))
    return out


def _cost_of(schedule, counters: dict, n: int, params: dict, mac_units: int, part: str = "inference") -> dict:
    io, hw = io_config(params), preset_hw(params)
    per = None if counters is None else {k: int(round(v / n)) for k, v in counters.items()}
    ops = schedule_op_counts(schedule, adc_bits(io), mac_units, mac_units, part=part, counters=per)
    inventory = schedule_inventory(schedule, adc_bits(io), mac_units, mac_units)
    rep = estimate(ops, inventory, hw)
    # the op counts and inventory (critical-path steps included) let summarize() re-cost this point under
    # other hardware figures (the write-time sensitivity) from the HDF5 file alone
    return {"cycles": rep.cycles, "latency_s": rep.latency_s, "energy_j": rep.total_energy_j, "edp": rep.edp,
            "programming_energy_j": rep.energy_j["programming"], "area_mm2": rep.total_area_mm2,
            "mvm": ops.mvm, "cells_programmed": ops.cells_programmed, "digital_macs": ops.digital_macs,
            "ops": ops_to_json(ops), "inventory": inventory_to_json(inventory)}


def _agrees(counters: dict, schedule, n: int) -> bool:
    c = schedule.counts()
    return (counters["forward_mvm"] == n * c["mvm"] and counters["dac"] == n * c["dac"]
            and counters["cells_programmed"] == n * c["cells_programmed"]
            and counters["program_calls"] == n * c["program_calls"] and counters["adc"] >= n * c["adc"])


def _simulate(run, bank, images) -> dict:
    """One warm-up inference (first programming), then the counters of ``len(images) - 1`` more."""
    import torch
    with torch.no_grad():
        run(images[0:1])
        bank.reset_counters()
        for i in range(1, len(images)):
            run(images[i:i + 1])
    return bank.counters()


def _cost_point(params: dict, seed: int) -> dict:
    data = load_data(params)
    model = baseline(params, seed, data)
    net = basis_net(params, seed, data, model)
    a, k, n = params["array_size"], params["n_arrays"], params["n_infer"]
    io = io_config(params)
    images = data[2][:n + 1]
    sets = {name: net.set_of[name] for name in net.layer_names}
    shapes = layer_shapes(model, (1, 28, 28), sets)
    n_weights = sum(s.out_features * s.fan_in for s in shapes)
    n_blocks = len(conventional_schedule(shapes, 10 ** 9, a, a).setup)
    out: dict[str, Any] = {"n_weights": n_weights, "n_blocks": n_blocks, "over_capacity": n_weights / (k * a * a),
                           "layers": json.dumps([dataclasses.asdict(s) for s in shapes]),
                           "hardware": json.dumps(preset_hw(params).to_dict(), sort_keys=True)}

    def conventional(n_arrays: int, prefix: str) -> None:
        bank = ArrayBank(n_arrays, a, a, device=IdealDevice(), io=io, seed=seed)
        analog = convert_to_analog(copy.deepcopy(model), AnalogConfig(device=IdealDevice(), io=io,
                                                                      array_provider=bank))
        counters = _simulate(analog, bank, images)
        sched = conventional_schedule(shapes, n_arrays, a, a)
        for key, v in _cost_of(sched, counters, n, params, n_arrays * a).items():
            out[f"{prefix}_{key}"] = v
        out[f"{prefix}_writes_per_inference"] = counters["program_calls"] / n
        out[f"{prefix}_counters_agree"] = _agrees(counters, sched, n)

    conventional(k, "reprog")
    conventional(n_blocks, "fit")
    groups = math.ceil(params["n_bases"] / a)
    replicas = max(1, k // groups)
    analog = BasisNModel(net, n_arrays=k, array_rows=a, device=IdealDevice(), io=io, seed=seed, replicas=replicas)
    analog.program()
    counters = _simulate(analog, analog.bank, images)
    sched = basisn_schedule(shapes, params["n_bases"], a, k, a, replicas=replicas)
    for key, v in _cost_of(sched, counters, n, params, k * a).items():
        out[f"basisn_{key}"] = v
    for key, v in _cost_of(sched, None, 1, params, k * a, part="setup").items():
        out[f"basisn_setup_{key}"] = v
    out["basisn_replicas"] = replicas
    out["basisn_writes_per_inference"] = counters["program_calls"] / n
    out["basisn_schedule_writes"] = sched.writes_in_inference()
    out["basisn_counters_agree"] = _agrees(counters, sched, n)
    for key in ("cycles", "energy_j", "edp"):
        out[f"ratio_{key}"] = out[f"basisn_{key}"] / out[f"reprog_{key}"]
    return out


def run_point(params: dict, seed: int) -> dict:
    """One point: ``baseline`` training, a ``basis`` decomposition, or the ``cost`` of one K."""
    import torch
    # one torch thread: on the shared 2-core host a second intra-op thread made the small
    # (positions x 32) @ (32 x 32) array reads ~60x slower (spin-waiting), and training gains little
    torch.set_num_threads(1)
    return {"baseline": _baseline_point, "basis": _basis_point, "cost": _cost_point}[params["kind"]](params, seed)


TASK = Task("basisn", run_point, PARAMS)
