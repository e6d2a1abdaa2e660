"""BasisN-style sensitivity analyses, from the op counts the cost points stored (or the schedules).

* :func:`cost_breakdown`: cycles per inference split into reads, programming and digital steps;
* :func:`write_sensitivity`: the worst ratio against the write pulse, verify iterations and
  programming granularity, and the iterations each needs for 1 %;
* :func:`batch_sensitivity`: the same when a batch shares each reprogramming;
* :func:`array_size_sensitivity` and :func:`paper_scale_check`: other array sizes and
  ResNet-18/ImageNet, from the schedules (nothing simulated).
"""
from __future__ import annotations

import dataclasses
import json
import math

from xbarsim.crossbar.costs import PROGRAMMING, HardwareParams, estimate
from xbarsim.experiments.repro.basisn.spec import k_values
from xbarsim.experiments.repro.basisn_hardware import (VERIFY_ITERATIONS, WRITE_PULSES_S, amortised,
                                                       break_even_iterations, inventory_from_json, largest_batch,
                                                       ops_from_json, preset_hardware, ratios, resnet18_imagenet)
from xbarsim.mapping.basis_schedule import (basisn_schedule, conventional_schedule, schedule_inventory,
                                            schedule_op_counts)

__all__ = ["rounded", "stored_cases", "stored_hw", "stored_over_capacity", "cost_breakdown", "write_sensitivity",
           "batch_sensitivity", "array_size_sensitivity", "paper_scale_check", "ARRAY_SIZES", "BATCHES"]


def rounded(v, nd=4):
    return None if v is None else float(f"{v:.{nd}g}")


#: array sizes of the (schedule-only) array-size sensitivity, and its K: floor(W / (f R^2)) for these f, and 1


ARRAY_SIZES = (32, 64, 128)


ARRAY_SIZE_OVER_CAPACITY = (10, 30, 100)


def stored_cases(c: dict) -> dict:
    """``{case: (OpCounts, Inventory)}`` of a cost row (cases ``reprog``, ``fit``, ``basisn``)."""
    return {case: (ops_from_json(c[f"{case}_ops"]), inventory_from_json(c[f"{case}_inventory"]))
            for case in ("reprog", "fit", "basisn")}


def stored_hw(c: dict) -> HardwareParams:
    """The hardware figures a cost row was costed with."""
    return HardwareParams.from_dict(json.loads(c["hardware"]))


def stored_over_capacity(e: dict) -> tuple | None:
    """``(rows, hw)``: a model's cost rows with weights >= 10x on-chip capacity, and their
    hardware figures; ``None`` when there are none."""
    over = [c for c in e["cost"] if c["over_capacity"] >= 10]
    return (over, stored_hw(over[0])) if over else None


def cost_breakdown(ops, inventory, hw) -> dict:
    """Cycles per inference split into array reads, programming and digital steps, and energy per component.

    Each part is :func:`xbarsim.crossbar.costs.estimate` of ``ops`` with the other
    steps zeroed, so the parts add up to the total.
    """
    parts = {"array_reads": dict(program_steps=0, digital_steps=0),
             "programming": dict(read_steps=0, digital_steps=0),
             "digital": dict(read_steps=0, program_steps=0)}
    path = ops.on_critical_path(hw)  # the busiest arrays under hw, before any part is zeroed
    cycles = {k: estimate(dataclasses.replace(path, **zero), inventory, hw).cycles for k, zero in parts.items()}
    rep = estimate(ops, inventory, hw)
    return {"cycles": {k: rounded(v) for k, v in cycles.items()}, "total_cycles": rounded(rep.cycles),
            "energy_j": {k: rounded(v) for k, v in rep.energy_j.items() if v}, "total_energy_j": rounded(rep.total_energy_j)}


def write_sensitivity(rows: list, hw) -> dict:
    """Worst BasisN/reprogramming ratios over ``rows`` (cost rows with stored op counts) against
    the write pulse, the verify iterations and the programming granularity, and the
    iterations each needs for <= 1 % (:mod:`.basisn_hardware`)."""
    cases = [stored_cases(c) for c in rows]
    grid, need = [], {}
    for prog in PROGRAMMING:
        for tp in WRITE_PULSES_S:
            for v in VERIFY_ITERATIONS:
                h = hw.replace(write_pulse_s=tp, verify_iterations=v, programming=prog)
                rs = [ratios(cs["basisn"], cs["reprog"], h) for cs in cases]
                grid.append({"programming": prog, "write_pulse_ns": round(tp * 1e9, 3), "verify_iterations": v,
                             "step_us": rounded(v * (tp + h.read_latency_s) * 1e6),
                             "cycles_ratio": rounded(max(r["cycles"] for r in rs)),
                             "edp_ratio": rounded(max(r["edp"] for r in rs))})
            h = hw.replace(write_pulse_s=tp, programming=prog)
            need[f"{prog}, {round(tp * 1e9)} ns"] = {
                m: rounded(max(break_even_iterations(cs["basisn"], cs["reprog"], h, 0.01, m) for cs in cases))
                for m in ("cycles", "edp")}
    return {"grid": grid, "verify_iterations_for_1_percent": need}


#: batch sizes of the batch sensitivity (inputs that share each reprogramming)


BATCHES = (1, 2, 5, 10, 100, 1000)


def batch_sensitivity(rows: list, hw) -> dict:
    """Worst BasisN/reprogramming ratios over ``rows`` (cost rows with stored op counts) when
    a batch of ``B`` inputs shares each reprogramming (:func:`.basisn_hardware.amortised`),
    and the largest batch that keeps each ratio <= 1 % (``None``: every batch does)."""
    cases = [stored_cases(c) for c in rows]
    grid = []
    for b in BATCHES:
        rs = [ratios(cs["basisn"], (amortised(cs["reprog"][0], b), cs["reprog"][1]), hw) for cs in cases]
        grid.append({"batch": b, "cycles_ratio": rounded(max(r["cycles"] for r in rs)),
                     "edp_ratio": rounded(max(r["edp"] for r in rs))})
    largest = {}
    for m in ("cycles", "edp"):
        v = min(largest_batch(cs["basisn"], cs["reprog"], hw, 0.01, m) for cs in cases)
        largest[m] = rounded(v) if math.isfinite(v) else None
    return {"grid": grid, "largest_batch_for_1_percent": largest}


def array_size_sensitivity(shapes: list, main_bases: int, array_size: int, adc_bits: int,
                           sizes=ARRAY_SIZES, over_capacity=ARRAY_SIZE_OVER_CAPACITY,
                           programming: str = "cell") -> list:
    """Worst BasisN/reprogramming ratios (>= 10x over capacity) for other array sizes, from the schedules.

    Not simulated: the explicit schedules of :mod:`xbarsim.mapping.basis_schedule`
    (whose counts the simulated counters match at the preset's size) on the layer
    shapes (:class:`~xbarsim.mapping.basis_schedule.LayerShape` s), with ``M = main_bases R / array_size`` bases (the same fraction of
    the segment) and the preset's other figures, programmed ``programming``.
    """
    n_weights = sum(s.out_features * s.fan_in for s in shapes)
    out = []
    for r in sizes:
        hw, m = preset_hardware(r, programming), max(1, main_bases * r // array_size)
        n_blocks = len(conventional_schedule(shapes, 10 ** 9, r, r).setup)
        worst = None
        for k in k_values(n_weights, n_blocks, r, list(over_capacity)):
            if n_weights / (k * r * r) < 10:
                continue
            reps = []
            for sched in (conventional_schedule(shapes, k, r, r),
                          basisn_schedule(shapes, m, r, k, r, replicas=max(1, k // math.ceil(m / r)))):
                ops = schedule_op_counts(sched, adc_bits, k * r, k * r)
                reps.append(estimate(ops, schedule_inventory(sched, adc_bits, k * r, k * r), hw))
            row = {"array_size": r, "programming": programming, "n_bases": m, "K": k,
                   "weights_over_capacity": rounded(n_weights / (k * r * r)),
                   "cycles_ratio": rounded(reps[1].cycles / reps[0].cycles), "edp_ratio": rounded(reps[1].edp / reps[0].edp)}
            worst = row if worst is None or row["cycles_ratio"] > worst["cycles_ratio"] else worst
        out.append(worst or {"array_size": r, "n_bases": m, "K": None,
                             "note": "no K with weights >= 10x on-chip capacity"})
    return out


def paper_scale_check(main_bases: int, array_size: int, adc_bits: int) -> list:
    """Worst BasisN/reprogramming ratios of ResNet-18 on ImageNet (weights >= 10x capacity, 128 x 128
    arrays), per programming granularity, from the schedules (layer shapes only: nothing trained
    or simulated).  It shows which write figures the paper's < 1 % on ImageNet networks implies."""
    return [dict(array_size_sensitivity(resnet18_imagenet(), main_bases, array_size, adc_bits, sizes=(128,),
                                        over_capacity=(10, 100), programming=prog)[0],
                 network="ResNet-18, ImageNet 224x224") for prog in PROGRAMMING]
