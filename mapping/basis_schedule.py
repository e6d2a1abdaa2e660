r"""Explicit K-array schedules: conventional mapping (with or without reprogramming) and BasisN-style.

A :class:`Schedule` is a list of operations, split into a one-time ``setup`` (the
programming done before the first inference) and one steady-state ``inference``
(batch 1).  Operations are

* :class:`Program` -- one program-and-verify pass over a whole array (``cells`` cells);
* :class:`Read` -- ``vectors`` input vectors read through one array (one MVM each,
  ``array_cols`` DAC and ``array_rows`` ADC conversions per vector, the counting of
  :class:`xbarsim.crossbar.CrossbarArray` without bound-management repeats);
* :class:`Digital` -- the digital work of a layer (coefficient MACs, partial-sum adds).

Placement replays :class:`xbarsim.mapping.provider.LRUPlacement`, the policy of
:class:`xbarsim.mapping.ArrayBank`, so a simulated run through a bank programs
exactly the blocks its schedule programs (a test checks the counters agree).

Conventional (:func:`conventional_schedule`).  Layer ``l`` of ``C_out x F`` weights is
tiled into ``ceil(C_out / array_rows) ceil(F / array_cols)`` blocks; each inference
visits the layers in order, and a block is programmed whenever it is not resident.
If all blocks fit (``n_blocks <= K``) only ``setup`` programs; otherwise LRU evicts
every block before its next use and each inference programs all of them, the
issue's :math:`\sum_l \lceil \text{cells}_l / \text{capacity} \rceil` array writes
(with blocks of a tiled layer counted whole).

BasisN (:func:`basisn_schedule`).  A basis set of ``M`` bases is ``ceil(M / array_rows)``
groups, one array each (``replicas`` copies each for parallel reads).  A layer reads
all its input segments through every group of its set.  When all groups fit
(``B <= K array_rows`` bases) the only writes are in ``setup``: the inference part has
none.  When they do not fit the groups are time-multiplexed: a group is programmed
when a layer needs it and it is not resident, so the cost is counted once per group
switch and a layer whose groups are resident costs nothing (with per-stage bases
that fit, one switch per stage).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np
from torch import nn

from .introspect import trace_modules
from .provider import LRUPlacement

__all__ = ["LayerShape", "Program", "Read", "Digital", "Schedule", "conventional_schedule", "basisn_schedule",
           "layer_shapes", "schedule_op_counts", "schedule_inventory"]


@dataclass(frozen=True)
class LayerShape:
    """One conv/linear layer as the hardware sees it.

    ``out_features``: outputs (C_out); ``fan_in``: inputs per output (C_in k_h k_w);
    ``positions``: input vectors per inference (conv: output pixels; linear: 1);
    ``basis_set``: the basis set a BasisN layer draws from.
    """

    name: str
    out_features: int
    fan_in: int
    positions: int
    basis_set: str = "global"


@dataclass(frozen=True)
class Program:
    array: int
    block: Hashable
    cells: int


@dataclass(frozen=True)
class Read:
    layer: str
    array: int
    block: Hashable
    vectors: int
    dac: int
    adc: int


@dataclass(frozen=True)
class Digital:
    layer: str
    macs: int
    adds: int


@dataclass(frozen=True)
class Schedule:
    """``setup`` (one-time programming) and one steady-state ``inference``, as operation tuples."""

    name: str
    n_arrays: int
    array_rows: int
    array_cols: int
    setup: tuple
    inference: tuple

    def counts(self, part: str = "inference") -> dict:
        """Totals of one part: ``mvm``, ``dac``, ``adc``, ``cells_programmed``, ``program_calls``,
        ``digital_macs``, ``digital_adds``."""
        ops = {"inference": self.inference, "setup": self.setup}[part]
        c = dict.fromkeys(("mvm", "dac", "adc", "cells_programmed", "program_calls", "digital_macs",
                           "digital_adds"), 0)
        for op in ops:
            if isinstance(op, Program):
                c["cells_programmed"] += op.cells
                c["program_calls"] += 1
            elif isinstance(op, Read):
                c["mvm"] += op.vectors
                c["dac"] += op.dac
                c["adc"] += op.adc
            else:
                c["digital_macs"] += op.macs
                c["digital_adds"] += op.adds
        return c

    def writes_in_inference(self) -> int:
        """Number of :class:`Program` operations in the steady-state inference."""
        return sum(isinstance(op, Program) for op in self.inference)

    def per_array(self, part: str = "inference") -> tuple[np.ndarray, np.ndarray]:
        """``(mvms, programs)`` per array: how busy each array is (the parallel critical path)."""
        ops = {"inference": self.inference, "setup": self.setup}[part]
        mvm = np.zeros(self.n_arrays, dtype=np.int64)
        prog = np.zeros(self.n_arrays, dtype=np.int64)
        for op in ops:
            if isinstance(op, Program):
                prog[op.array] += 1
            elif isinstance(op, Read):
                mvm[op.array] += op.vectors
        return mvm, prog


def _replay(passes: list, placement: LRUPlacement, cells: int) -> list:
    """Run access lists through ``placement``; ``passes`` entries are callables yielding ops."""
    out = []
    for make in passes:
        ops = []
        for item in make():
            if isinstance(item, tuple) and item[0] == "use":
                _, key, read = item
                k, programmed = placement.access(key)
                if programmed:
                    ops.append(Program(k, key, cells))
                if read is not None:
                    ops.append(Read(read[0], k, key, read[1], read[2], read[3]))
            else:
                ops.append(item)
        out.append(tuple(ops))
    return out


def conventional_schedule(layers: Sequence[LayerShape], n_arrays: int, array_rows: int,
                          array_cols: int) -> Schedule:
    """Conventional weight-stationary mapping on ``n_arrays`` arrays of ``array_rows x array_cols``.

    Block keys are ``(layer index, block index)`` in the order of
    :class:`xbarsim.mapping.BankedMatrix` (row blocks outer, column blocks inner), so
    ``convert_to_analog(model, AnalogConfig(array_provider=bank))`` runs the same schedule.
    """
    def one_inference():
        for li, layer in enumerate(layers):
            rb = math.ceil(layer.out_features / array_rows)
            cb = math.ceil(layer.fan_in / array_cols)
            for b in range(rb * cb):
                yield ("use", (li, b), (layer.name, layer.positions, layer.positions * array_cols,
                                        layer.positions * array_rows))
            yield Digital(layer.name, 0, layer.positions * layer.out_features * (cb - 1))

    setup_ops, steady = _replay([one_inference, one_inference], LRUPlacement(n_arrays), array_rows * array_cols)
    setup = tuple(op for op in setup_ops if isinstance(op, Program))
    return Schedule("conventional", n_arrays, array_rows, array_cols, setup, steady)


def basisn_schedule(layers: Sequence[LayerShape], n_bases: int | dict, segment_rows: int, n_arrays: int,
                    array_rows: int, replicas: int = 1) -> Schedule:
    """BasisN-style schedule: bases programmed once, layers read them, coefficients digital.

    ``n_bases``: ``M`` per set (an int for every set, or ``{set: M}``).  Each array has
    ``array_rows`` outputs (one basis each) and ``segment_rows`` inputs.  Block keys are
    ``(set, group, replica)`` as in :class:`xbarsim.mapping.basis.BasisNModel`, whose
    ``program()`` is the setup and whose forward pass is the inference.
    """
    sets = list(dict.fromkeys(layer.basis_set for layer in layers))
    m_of = {s: (n_bases if isinstance(n_bases, int) else n_bases[s]) for s in sets}
    groups = {s: math.ceil(m_of[s] / array_rows) for s in sets}

    def setup():
        for s in sets:
            for g in range(groups[s]):
                for k in range(replicas):
                    yield ("use", (s, g, k), None)

    def one_inference():
        for layer in layers:
            s = layer.basis_set
            n_seg = math.ceil(layer.fan_in / segment_rows)
            vectors = layer.positions * n_seg
            chunks = [len(c) for c in np.array_split(np.arange(vectors), replicas)]
            for g in range(groups[s]):
                for k in range(replicas):
                    if chunks[k]:
                        yield ("use", (s, g, k), (layer.name, chunks[k], chunks[k] * segment_rows,
                                                  chunks[k] * array_rows))
            yield Digital(layer.name, vectors * m_of[s] * layer.out_features, 0)

    setup_ops, _, steady = _replay([setup, one_inference, one_inference], LRUPlacement(n_arrays),
                                   array_rows * segment_rows)
    return Schedule("basisn", n_arrays, array_rows, segment_rows, setup_ops, steady)


def layer_shapes(model: nn.Module, input_shape: tuple, basis_set_of: dict | None = None) -> list[LayerShape]:
    """The :class:`LayerShape` of every ``nn.Conv2d`` / ``nn.Linear`` of ``model``, in call order.

    One forward pass of a zero batch-1 input of ``input_shape`` (without the batch
    dimension) records each layer's output positions.  ``basis_set_of`` maps layer
    names to basis sets (default ``"global"``).
    """
    def record(name, mod, inp, out) -> LayerShape:
        if isinstance(mod, nn.Conv2d):
            positions = out.shape[-1] * out.shape[-2]
            fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
            out_f = mod.out_channels
        else:
            positions = int(np.prod(out.shape[:-1]))
            fan_in, out_f = mod.in_features, mod.out_features
        return LayerShape(name, out_f, fan_in, int(positions), (basis_set_of or {}).get(name, "global"))

    return trace_modules(model, input_shape, lambda m: type(m) in (nn.Conv2d, nn.Linear), record)


def schedule_op_counts(schedule: Schedule, adc_bits: int, mac_units: int, adder_units: int,
                       part: str = "inference", counters: dict | None = None):
    r"""The :class:`xbarsim.crossbar.costs.OpCounts` of one part of a schedule, critical path included.

    Totals come from ``counters`` (a simulated run's summed array counters:
    ``forward_mvm``, ``dac``, ``adc``, ``cells_programmed``) when given, else from
    the schedule; the digital work always comes from the schedule.  Critical path:
    layers run one after another; inside a layer the arrays work in parallel, so
    the layer's array time is that of its busiest array,
    :math:`\max_a (n^{read}_a t_{read} + n^{prog}_a\,\mathrm{rows}\,t_{row})`.  Which
    array that is depends on the write figures, so the counts keep every layer's
    per-array ``(reads, programmed rows)`` (``OpCounts.stages``) and the cost model
    picks the busiest under the :class:`~xbarsim.crossbar.costs.HardwareParams` it
    costs them with: counting takes no cost figures, and stored counts re-cost
    exactly under any.  The digital MACs (``mac_units`` per digital cycle) and
    partial-sum adds (``adder_units``) of a layer follow its reads: ``ceil(macs /
    mac_units) + ceil(adds / adder_units)`` digital steps (no overlap with the reads:
    a pessimistic choice for the side with the most digital work, BasisN).
    """
    from xbarsim.crossbar.costs import OpCounts

    ops = {"inference": schedule.inference, "setup": schedule.setup}[part]
    digital_steps = 0
    stages = []
    layer_ops: dict = {}
    order: list = []
    pending_programs: list = []
    for op in ops:  # a Program belongs to the layer whose read follows it
        if isinstance(op, Program):
            pending_programs.append(op)
            continue
        name = op.layer
        if name not in layer_ops:
            layer_ops[name] = []
            order.append(name)
        layer_ops[name].extend(pending_programs)
        pending_programs = []
        layer_ops[name].append(op)
    if pending_programs:  # setup: programming only
        order.append(None)
        layer_ops[None] = pending_programs
    total = dict.fromkeys(("mvm", "dac", "adc", "cells", "macs", "adds"), 0)
    for name in order:
        reads = np.zeros(schedule.n_arrays, dtype=np.int64)
        rows = np.zeros(schedule.n_arrays, dtype=np.int64)
        macs = adds = 0
        for op in layer_ops[name]:
            if isinstance(op, Program):
                rows[op.array] += op.cells // schedule.array_cols
                total["cells"] += op.cells
            elif isinstance(op, Read):
                reads[op.array] += op.vectors
                total["mvm"] += op.vectors
                total["dac"] += op.dac
                total["adc"] += op.adc
            else:
                macs += op.macs
                adds += op.adds
        stages.append([(int(r), int(p)) for r, p in zip(reads, rows)])
        digital_steps += -(-macs // mac_units) + -(-adds // adder_units)
        total["macs"] += macs
        total["adds"] += adds
    if counters is not None:
        total["mvm"] = int(counters["forward_mvm"])
        total["dac"] = int(counters["dac"])
        total["adc"] = int(counters["adc"])
        total["cells"] = int(counters["cells_programmed"])
    return OpCounts(mvm=total["mvm"], cells_per_mvm=schedule.array_rows * schedule.array_cols,
                    cells_per_row=schedule.array_cols,
                    dac_conversions=total["dac"], adc_conversions={int(adc_bits): total["adc"]} if total["adc"] else {},
                    digital_adds=total["adds"], digital_macs=total["macs"], cells_programmed=total["cells"],
                    digital_steps=digital_steps, stages=tuple(stages))


def schedule_inventory(schedule: Schedule, adc_bits: int, mac_units: int = 0, adder_units: int = 0):
    """The :class:`xbarsim.crossbar.costs.Inventory` of a schedule's chip: its arrays, one ADC per
    bit line and one DAC per word line of each array, and the digital units."""
    from xbarsim.crossbar.costs import Inventory

    k = schedule.n_arrays
    return Inventory(n_arrays=k, n_adcs={int(adc_bits): k * schedule.array_rows}, n_dacs=k * schedule.array_cols,
                     n_adders=int(adder_units), n_macs=int(mac_units))
