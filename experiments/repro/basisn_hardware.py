r"""BasisN-style costs: the preset's hardware figures (sourced), re-costing, closed forms, sensitivity.

Where the cycles ratio comes from
---------------------------------
Layers ``l`` have ``C_l`` outputs, fan-in ``F_l`` and ``P_l`` input positions per
inference (output pixels; 1 for a linear layer).  Arrays are ``R x R`` (segment length
``R``), so a layer has ``S_l = ceil(F_l / R)`` segments and ``n_l = ceil(C_l / R) S_l``
conventional blocks, ``N = sum_l n_l``.  ``t_r`` is the array read cycle, ``t_d`` the
digital cycle (``tau = t_d / t_r``), ``v`` the program-and-verify iterations, ``t_p``
the write pulse; one programming step (a row, or a cell) costs ``v (t_p + t_r)``.
With ``K = 1`` array (every case ``K <`` the blocks is the same up to the division of
each layer over the arrays), in read cycles:

.. math::

    T_{rep} = \sum_l n_l P_l + N\,R\,g\,\frac{v (t_p + t_r)}{t_r}
              + \tau \sum_l \lceil P_l C_l (S_l - 1) / R \rceil, \qquad
    T_{B}   = \sum_l P_l S_l \lceil M/R \rceil + \tau \sum_l \lceil P_l S_l M C_l / R \rceil,

with ``g = 1`` when a row's cells are programmed at once (row-parallel, NeuroSim) and
``g = R`` when they are programmed one after another (cell-serial).  The ratio
``T_B / T_rep`` falls as ``1 / (v (t_p + t_r))`` once the writes dominate:

.. math::

    \frac{T_B}{T_{rep}} \approx \frac{\sum_l P_l S_l (1 + \tau M C_l / R)}{\sum_l C_l S_l}
    \cdot \frac{t_r}{g\,v\,(t_p + t_r)},

i.e. (positions per written row) x (read cycle / row programming time).  Row-parallel
(``g = 1``), ``R`` drops out to first order (BasisN reads and conventional writes both
scale as ``1/R``); cell-serial (``g = R``) the ratio falls as ``1/R``.  Energy:
``E_rep = E_0 + N_cells v (e_w + e_r)`` against ``E_B`` (reads, conversions, coefficient
MACs), so the EDP ratio is the cycles ratio times ``E_B / E_rep`` (0.5-0.85 here: the
ADCs dominate both).

Which write figures the paper's claim implies.  Its < 1 % is for DenseNets and ResNets
on ImageNet and CIFAR-100.  ResNet-18 at 224 x 224 (:func:`resnet18_imagenet`, 11.7 M
weights) on one 128 x 128 array with 64 bases and the preset's other figures gives, from
the schedules, 9.7 % of reprogramming row-parallel and 0.08 % cell-serial
(``paper_scale_check`` in ``summary.json``): ImageNet layers have even more positions per
written row than these Fashion-MNIST ones.  Row-parallel writes would need 105
iterations per row (60 for EDP) for the paper's figure.  So the reconstruction programs
cells one at a time, which is also how conventional 1T1R arrays are written [Farias].

:func:`xbarsim.crossbar.costs.estimate` of the op counts a cost point stored re-costs them
under any :class:`~xbarsim.crossbar.costs.HardwareParams`, programming granularity included:
the counts keep each layer's per-array reads and programmed rows (``OpCounts.stages``), and
the busiest array is picked under the figures costed with.  Counts stored before ``stages``
existed hold the critical path of the preset's figures; re-costing them is still exact,
because in the reprogramming regime each array of a layer holds as many reprogrammed
blocks as it reads, so the busiest array does not depend on the write
figures.  :func:`cycles_ratio_k1` is the closed form above, for tests.

Hardware figures (:func:`preset_hardware`): each figure the ratio depends on is named with
its source in :data:`HARDWARE_SOURCES` (``summary.json`` ``hardware``); their literature
ranges (NeuroSim, ISAAC, MNSIM 2.0, Wong, Alibart, Farias & Kung, NeuRRAM) and why the
preset programs cell by cell are in ``experiments/figures/basisn/NOTES.md``.  The
sensitivity sweep (:data:`WRITE_PULSES_S`, :data:`VERIFY_ITERATIONS`, :data:`PROGRAMMING`)
covers those ranges.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Sequence

from xbarsim.crossbar.costs import PROGRAMMING, CostReport, HardwareParams, Inventory, OpCounts, estimate

__all__ = ["PROGRAMMING", "WRITE_PULSES_S", "VERIFY_ITERATIONS", "HARDWARE_SOURCES", "preset_hardware",
           "ops_to_json", "ops_from_json", "inventory_to_json", "inventory_from_json",
           "ratios", "break_even_iterations", "amortised", "largest_batch", "cycles_ratio_k1",
           "resnet18_imagenet"]

#: write pulse widths of the sensitivity sweep [s]: MNSIM 2.0 (10 ns), DNN+NeuroSim V2.1 (50 ns), Wong/preset (100 ns)
WRITE_PULSES_S = (10e-9, 50e-9, 100e-9)
#: program-and-verify iterations of the sensitivity sweep: 1 (no verify) .. 100 (Alibart-style fine tuning)
VERIFY_ITERATIONS = (1, 2, 5, 10, 20, 50, 100)

#: the preset's figures that the cycles/EDP ratio depends on, with their sources (summary.json shows them)
HARDWARE_SOURCES = {
    "array_rows": "preset array_size (32): scaled down from NeuroSim/ISAAC 128x128 (MNSIM 2.0: 256x256) so that "
                  "the Fashion-MNIST networks span 1x-170x over capacity; the ratio hardly depends on it",
    "read_latency_s": "ISAAC (Shafiee et al., ISCA 2016): 100 ns array read cycle; also the verify read "
                      "(NeuroSim readPulseWidth 10 ns, MNSIM 2.0 3.16 ns)",
    "write_pulse_s": "Wong et al., Proc. IEEE 2012: RRAM switching in 10-100 ns (DNN+NeuroSim V2.1 "
                     "writePulseWidth 50 ns, MNSIM 2.0 Write_Latency 10 ns)",
    "verify_iterations": "Alibart et al., Nanotechnology 2012: program-and-verify iterations to tune a cell "
                         "(NeuroSim open-loop updates: up to 32 pulses per polarity)",
    "programming": "cell-serial: conventional 1T1R programming writes each cell on its own (Farias & Kung, "
                   "arXiv 2410.21730, and its refs 8-14; NeuRRAM, Wan et al. Nature 2022, whose control code "
                   "runs write-verify one (row, column) cell at a time); row-parallel (NeuroSim's "
                   "on-chip-training update, row by row) divides the write time by the columns: "
                   "write_sensitivity shows it",
    "write_energy_pj": "Wong et al. 2012: pJ-scale switching energy per pulse",
    "adc_ref_energy_pj": "ISAAC 8-bit SAR ADC, 16 mW at 1.28 GS/s, scaled 2^(bits-8) (Walden/Murmann)",
    "digital_mac_energy_pj": "Horowitz ISSCC 2014: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ",
    "digital_cycle_s": "ISAAC: 1.2 GHz digital units",
}


def preset_hardware(array_size: int, programming: str = "cell") -> HardwareParams:
    """The preset's :class:`HardwareParams`, every figure the ratio depends on named (module docstring).

    The values equal the shared defaults of :mod:`xbarsim.crossbar.costs` except the
    array size (its area follows from ISAAC's area per cell);
    ``programming="row"`` gives the row-parallel variant of the sensitivity study.
    """
    a = int(array_size)
    return HardwareParams(
        programming=programming,
        array_rows=a, array_cols=a,
        read_latency_s=100e-9,                        # ISAAC read cycle (also the verify read)
        write_pulse_s=100e-9,                         # Wong 2012: 10-100 ns
        write_energy_pj=1.0,                          # Wong 2012: pJ scale
        verify_iterations=10,                         # Alibart 2012
        digital_mac_energy_pj=0.3,                    # Horowitz 2014
        digital_cycle_s=1.0 / 1.2e9,                  # ISAAC
    )


# --------------------------------------------------------------------------- stored op counts
def ops_to_json(ops: OpCounts) -> str:
    """An :class:`OpCounts` as JSON (stored per cost point and case in the HDF5 file)."""
    return json.dumps(ops.to_dict(), sort_keys=True)


def ops_from_json(text: str) -> OpCounts:
    """The :class:`OpCounts` of :func:`ops_to_json` (older files too: :meth:`OpCounts.from_dict`)."""
    return OpCounts.from_dict(json.loads(text))


def inventory_to_json(inv: Inventory) -> str:
    return json.dumps(inv.to_dict(), sort_keys=True)


def inventory_from_json(text: str) -> Inventory:
    return Inventory.from_dict(json.loads(text))


def ratios(basisn: tuple, reprog: tuple, hw: HardwareParams) -> dict:
    """``{"cycles", "energy", "edp"}``: BasisN over reprogramming; ``basisn``/``reprog`` are (ops, inventory)."""
    b, r = estimate(*basisn, hw), estimate(*reprog, hw)
    return {"cycles": b.cycles / r.cycles, "energy": b.total_energy_j / r.total_energy_j, "edp": b.edp / r.edp}


def _affine_crossing(basisn: CostReport, t0: float, t1: float, e0: float, e1: float, target: float,
                     metric: str) -> float:
    r"""The ``x`` at which BasisN/reprogramming reaches ``target`` when reprogramming's latency
    and energy are affine in ``x`` (``T = t_0 + t_1 x``, ``E = e_0 + e_1 x``, ``t_1 > 0``) and
    BasisN's are fixed: ``x = (T_B / target - t_0) / t_1`` for cycles, the positive root of
    ``(e_0 + e_1 x)(t_0 + t_1 x) = E_B T_B / target`` for EDP.  ``x <= 0``: met for every ``x >= 0``.
    """
    if metric == "cycles":
        return (basisn.latency_s / target - t0) / t1
    if metric != "edp":
        raise ValueError(f"metric = {metric!r} must be 'cycles' or 'edp'")
    qa, qb, qc = e1 * t1, e0 * t1 + e1 * t0, e0 * t0 - basisn.total_energy_j * basisn.latency_s / target
    return -qc / qb if qa == 0 else (-qb + math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)


def break_even_iterations(basisn: tuple, reprog: tuple, hw: HardwareParams, target: float = 0.01,
                          metric: str = "cycles") -> float | None:
    r"""Smallest (real) number of verify iterations ``v`` with BasisN/reprogramming ``<= target``.

    Reprogramming's latency and energy are affine in ``v`` (``T = a + b v``,
    ``E = e_0 + e_1 v``), BasisN's do not depend on it (no writes): :func:`_affine_crossing`.
    ``None`` when reprogramming writes nothing (the ratio does not depend on ``v``); 0 when
    ``v -> 0`` already meets it.
    """
    r1 = estimate(*reprog, hw.replace(verify_iterations=1))
    r2 = estimate(*reprog, hw.replace(verify_iterations=2))
    slope_t, slope_e = r2.latency_s - r1.latency_s, r2.total_energy_j - r1.total_energy_j
    if slope_t <= 0:
        return None
    v = _affine_crossing(estimate(*basisn, hw), r1.latency_s - slope_t, slope_t, r1.total_energy_j - slope_e,
                         slope_e, target, metric)
    return max(0.0, v)


def amortised(ops: OpCounts, batch: float) -> OpCounts:
    """Per-input op counts when the ``batch`` inputs of a batch share every programming.

    A layer-by-layer chip programs a block once and runs the whole batch through it
    before moving on (its activations buffered), so writes per input (programmed cells
    and programming steps) fall as ``1/batch``; reads and digital work per input do not
    change.  ``batch = inf`` drops the writes.
    """
    if not batch >= 1:
        raise ValueError(f"batch = {batch!r} must be >= 1")
    stages = tuple(tuple((reads, rows / batch) for reads, rows in stage) for stage in ops.stages)
    return dataclasses.replace(ops, cells_programmed=ops.cells_programmed / batch,
                               program_steps=ops.program_steps / batch, stages=stages)


def largest_batch(basisn: tuple, reprog: tuple, hw: HardwareParams, target: float = 0.01,
                  metric: str = "cycles") -> float | None:
    r"""Largest batch ``B`` with BasisN/reprogramming ``<= target`` when a batch shares each programming.

    Per input, reprogramming takes ``T_r + T_p u`` and ``E_r + E_p u`` with ``u = 1/B``
    (:func:`amortised`); BasisN writes nothing, so its cost does not depend on ``B``.
    ``B = 1/u`` at the crossing of :func:`_affine_crossing` (cycles:
    ``B = T_p / (T_B/target - T_r)``).  ``inf`` when every batch meets the target,
    ``None`` when reprogramming writes nothing; below 1 when even ``B = 1`` misses it.
    """
    full = estimate(*reprog, hw)
    reads = estimate(amortised(reprog[0], math.inf), reprog[1], hw)
    t_p, e_p = full.latency_s - reads.latency_s, full.total_energy_j - reads.total_energy_j
    if t_p <= 0:
        return None
    u = _affine_crossing(estimate(*basisn, hw), reads.latency_s, t_p, reads.total_energy_j, e_p, target, metric)
    return math.inf if u <= 0 else 1.0 / u


def cycles_ratio_k1(layers: Sequence, n_bases: int, array_size: int, hw: HardwareParams) -> float:
    """The closed form (module docstring) of BasisN/reprogramming cycles on ``K = 1`` array.

    ``layers``: :class:`xbarsim.mapping.basis_schedule.LayerShape` s; one MAC unit and one
    adder per bit line (``array_size`` of each), as in the reproduction.
    """
    r, m = int(array_size), int(n_bases)
    tau = hw.digital_cycle_s / hw.read_latency_s
    g = 1 if hw.programming == "row" else r
    step = hw.verify_iterations * (hw.write_pulse_s + hw.read_latency_s) / hw.read_latency_s
    t_rep = t_b = 0.0
    for s in layers:
        seg = math.ceil(s.fan_in / r)
        blocks = math.ceil(s.out_features / r) * seg
        t_rep += blocks * (s.positions + r * g * step) + tau * math.ceil(s.positions * s.out_features * (seg - 1) / r)
        t_b += s.positions * seg * math.ceil(m / r) + tau * math.ceil(s.positions * seg * m * s.out_features / r)
    return t_b / t_rep


def resnet18_imagenet() -> list:
    """ResNet-18's conv and linear layers at 224 x 224 (He et al., CVPR 2016, Table 1), as
    :class:`~xbarsim.mapping.basis_schedule.LayerShape` s: a network of the paper's scale, for
    the schedule-only check of which write figures its < 1 % implies (11.7 M weights)."""
    from xbarsim.mapping.basis_schedule import LayerShape
    layers = [LayerShape("conv1", 64, 3 * 7 * 7, 112 * 112)]
    layers += [LayerShape(f"layer1.{i}", 64, 64 * 9, 56 * 56) for i in range(4)]
    for stage, (c, side) in enumerate(((128, 28), (256, 14), (512, 7)), start=2):
        p = side * side
        layers += [LayerShape(f"layer{stage}.0", c, c // 2 * 9, p), LayerShape(f"layer{stage}.down", c, c // 2, p)]
        layers += [LayerShape(f"layer{stage}.{i}", c, c * 9, p) for i in range(1, 4)]
    return layers + [LayerShape("fc", 1000, 512, 1)]
