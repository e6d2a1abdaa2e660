r"""The hardware cost model: cycles, energy, area and energy-delay product.

Every mapping (one array per layer, the BNN input split, BasisN, ...) reports
its cost here, from two things it produces:

* :class:`OpCounts`: what one inference *did* (array activations, conversions,
  digital operations, programmed cells) and how many of those steps lie on the
  critical path.  :meth:`OpCounts.from_counters` reads a simulated
  :class:`~xbarsim.crossbar.CrossbarArray`'s op counters, so the numbers come from
  the run itself.
* :class:`Inventory`: what the chip *has* (arrays, ADCs by resolution, sense
  amplifiers, DACs, digital units), which sets the area.

and one :class:`HardwareParams`: a named figure per component, each with its
source.  The model is first-order, in the style of NeuroSim and ISAAC:

.. math::

    E = \sum_c n_c\,e_c, \qquad
    T = s_{read}\,t_{read} + s_{prog}\,g\,v\,(t_{pulse} + t_{read}) + s_{dig}\,t_{dig}, \qquad
    A = \sum_u N_u\,a_u, \qquad \mathrm{EDP} = E\,T,

with ``n_c`` operations of kind ``c`` at energy ``e_c`` each, ``s`` the
sequential steps of each kind (``s_prog``: programmed array rows; where arrays
work in parallel, those of the busiest array under the figures costed with:
:meth:`OpCounts.critical_steps`), ``N_u`` units
of area ``a_u``, ``v`` program-and-verify iterations per cell, and ``g`` the cells
of a row written one after another: ``g`` = the row's cells when every 1T1R cell is
programmed on its own (``programming = "cell"``, the default [Farias]), ``g = 1``
when a row's cells are pulsed at once (``"row"``, NeuroSim's row-by-row update
[NeuroSim]).  Programming energy does not depend on ``g``.  ADC energy and
area scale as ``2^bits`` from a reference design (Walden figure of merit: energy
per conversion step is constant, Murmann's ADC survey); a 1-bit sense amplifier
is that scaling at one bit (a clocked comparator).  ``cycles`` is ``T`` in units
of the array read cycle.

References
----------
* [ISAAC] A. Shafiee et al., "ISAAC: A convolutional neural network accelerator
  with in-situ analog arithmetic in crossbars", ISCA 2016, Table 6 (32 nm):
  128x128 array 0.3 mW and 25 um^2 per array at a 100 ns read cycle; 8-bit
  1.28 GS/s SAR ADC 16 mW, 0.0012 mm^2; 1-bit DAC 3.9 uW, 0.17 um^2 each.
* [Murmann] B. Murmann, "ADC Performance Survey 1997-2023"; R. H. Walden,
  "Analog-to-digital converter survey and analysis", IEEE JSAC 17(4), 1999:
  energy per conversion = FoM_W * 2^bits.
* [Horowitz] M. Horowitz, "Computing's energy problem (and what we can do about
  it)", ISSCC 2014 (45 nm): 8-bit add 0.03 pJ / 36 um^2; 32-bit add 0.1 pJ /
  137 um^2; 8-bit multiply 0.2 pJ / 282 um^2.
* [Wong] H.-S. P. Wong et al., "Metal-oxide RRAM", Proc. IEEE 100(6), 2012:
  switching in 10-100 ns at pJ-scale energy per pulse.
* [Alibart] F. Alibart, L. Gao, B. Hoskins, D. Strukov, "High precision tuning
  of state for memristive devices by adaptable variation-tolerant algorithm",
  Nanotechnology 23, 2012: program-and-verify, tens of pulse/read iterations.
* [NeuroSim] P.-Y. Chen, X. Peng, S. Yu, "NeuroSim: A circuit-level macro model
  for benchmarking neuro-inspired architectures", IEEE TCAD 37(12), 2018:
  row-by-row writes of an array (one row's cells in parallel), its model of the
  open-loop weight-update pulses of on-chip training.
* [Farias] M. Farias, H. T. Kung, "Efficient reprogramming of memristive
  crossbars for DNNs: weight sorting and bit stucking", arXiv 2410.21730, 2024:
  in conventional 1T1R crossbars each memristor is programmed individually, its
  transistor isolating the target cell (their refs. 8-14).  So does the NeuRRAM
  chip (W. Wan et al., Nature 608, 2022): its released control code
  (github.com/weierwan/Neurram_48core, ``python/wupdate_control.py``,
  ``program_array``) runs incremental-pulse write-verify on one (row, column)
  cell after another.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from xbarsim.devices.validation import Serialisable, require_choice, require_number

__all__ = ["PROGRAMMING", "HardwareParams", "OpCounts", "Inventory", "CostReport", "estimate", "adc_bits_for_rows"]

PJ = 1e-12
UM2_PER_MM2 = 1e6
#: programming granularities of :attr:`HardwareParams.programming`
PROGRAMMING = ("cell", "row")


@dataclass(frozen=True)
class HardwareParams(Serialisable):
    """Per-component figures of the cost model (defaults: the sources named in each comment)."""

    #: array rows (word lines) and columns (bit lines) [ISAAC: 128 x 128]
    array_rows: int = 128
    array_cols: int = 128
    #: read energy per cell per array activation [pJ]: ISAAC's 0.3 mW x 100 ns / (128 x 128)
    cell_read_energy_pj: float = 0.3e-3 * 100e-9 / (128 * 128) / PJ
    #: array read (MVM) latency [s] [ISAAC: 100 ns]
    read_latency_s: float = 100e-9
    #: crossbar area per cell [um^2] [ISAAC: 25 um^2 per 128 x 128 array]; an array's is
    #: ``rows x cols`` of it (:attr:`array_area_um2`)
    cell_area_um2: float = 25.0 / (128 * 128)
    #: 1-bit DAC (word-line driver) energy per conversion [pJ]: ISAAC's 3.9 uW x 100 ns
    dac_energy_pj: float = 3.9e-6 * 100e-9 / PJ
    #: 1-bit DAC area [um^2] [ISAAC: 0.00017 mm^2 / 1024 DACs]
    dac_area_um2: float = 0.17
    #: reference ADC: resolution [bits], energy per conversion [pJ] and area [um^2]
    #: [ISAAC: 8-bit SAR, 16 mW at 1.28 GS/s = 12.5 pJ, 0.0012 mm^2]; scaled by 2^(bits - ref) [Murmann]
    adc_ref_bits: int = 8
    adc_ref_energy_pj: float = 16e-3 / 1.28e9 / PJ
    adc_ref_area_um2: float = 1200.0
    #: 1-bit sense amplifier (clocked comparator) energy [pJ] and area [um^2]: the reference ADC
    #: at one bit, 2^(1 - 8) of it [Walden/Murmann scaling of ISAAC's ADC]
    sense_amp_energy_pj: float = 16e-3 / 1.28e9 / PJ / 128
    sense_amp_area_um2: float = 1200.0 / 128
    #: digital add (partial-sum adder, ~16 bit) energy [pJ] and area [um^2]
    #: [Horowitz: between the 8-bit (0.03 pJ, 36 um^2) and 32-bit (0.1 pJ, 137 um^2) adders]
    digital_add_energy_pj: float = 0.05
    digital_add_area_um2: float = 70.0
    #: digital multiply-accumulate (8-bit multiply + 32-bit add) energy [pJ] and area [um^2]
    #: [Horowitz: 0.2 + 0.1 pJ; 282 + 137 um^2]
    digital_mac_energy_pj: float = 0.3
    digital_mac_area_um2: float = 419.0
    #: digital clock period [s] [ISAAC: 1.2 GHz digital units]
    digital_cycle_s: float = 1.0 / 1.2e9
    #: RRAM write pulse: latency [s] and energy per cell per pulse [pJ] [Wong: 10-100 ns, pJ scale]
    write_pulse_s: float = 100e-9
    write_energy_pj: float = 1.0
    #: program-and-verify iterations per cell (pulse + verify read each) [Alibart: tens]
    verify_iterations: int = 10
    #: programming granularity: "cell" = the cells of a row one after another, each isolated by its
    #: transistor [Farias]; "row" = a row's cells pulsed at once [NeuroSim's training updates]
    programming: str = "cell"

    def __post_init__(self) -> None:
        o = "HardwareParams"
        integers = ("array_rows", "array_cols", "adc_ref_bits", "verify_iterations")
        for name in integers:
            require_number(o, name, getattr(self, name), 1, None, integer=True)
        require_choice(o, "programming", self.programming, PROGRAMMING)
        for f in dataclasses.fields(self):
            if f.name not in integers and f.name != "programming":
                require_number(o, f.name, getattr(self, f.name), 0.0, None, lo_open=True)

    @classmethod
    def from_dict(cls, d: dict) -> "HardwareParams":
        """As :meth:`Serialisable.from_dict`; a stored ``array_area_um2`` (files written before
        the area became per cell) becomes ``cell_area_um2 = array_area_um2 / (rows x cols)``."""
        if "array_area_um2" in d:
            d = dict(d)
            cells = d.get("array_rows", cls.array_rows) * d.get("array_cols", cls.array_cols)
            d.setdefault("cell_area_um2", d.pop("array_area_um2") / cells)
        return super().from_dict(d)

    @property
    def array_area_um2(self) -> float:
        """Area of one ``rows x cols`` array [um^2]: ``rows cols a_cell``."""
        return self.array_rows * self.array_cols * self.cell_area_um2

    def row_program_s(self, cells_per_row: int) -> float:
        """Time to program one array row of ``cells_per_row`` cells [s]: ``g v (t_pulse + t_read)``,
        ``g = cells_per_row`` cell by cell, ``g = 1`` row-parallel."""
        g = int(cells_per_row) if self.programming == "cell" else 1
        return g * self.verify_iterations * (self.write_pulse_s + self.read_latency_s)

    def adc_energy_pj(self, bits: int) -> float:
        """Energy of one ``bits``-bit conversion [pJ]: ``E_ref 2^(bits - bits_ref)`` (Walden scaling)."""
        return self.adc_ref_energy_pj * 2.0 ** (bits - self.adc_ref_bits)

    def adc_area_um2(self, bits: int) -> float:
        """Area of one ``bits``-bit ADC [um^2]: ``A_ref 2^(bits - bits_ref)`` (capacitive-DAC dominated)."""
        return self.adc_ref_area_um2 * 2.0 ** (bits - self.adc_ref_bits)

    @property
    def cycle_s(self) -> float:
        """One cycle of the cost model: the array read cycle [s]."""
        return self.read_latency_s


def adc_bits_for_rows(rows: int) -> int:
    """Resolution that resolves every partial sum of ``rows`` binary products: ``ceil(log2(rows + 1))``."""
    if rows < 1:
        raise ValueError(f"rows = {rows} must be >= 1")
    return int(rows).bit_length()  # 2^(b-1) <= rows < 2^b  <=>  b = ceil(log2(rows + 1))


def _add_dict(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def _int_keyed(d: dict) -> dict:
    """``{bits: count}`` read back from JSON, whose keys are strings."""
    return {int(k): v for k, v in d.items()}


def _pareto(pairs) -> tuple:
    """The ``(reads, rows)`` pairs no other pair dominates (>= in both), in first-seen order.

    A dominated array is never the busiest for positive read and row times, so
    dropping it never changes which array :meth:`OpCounts.critical_steps` picks (the
    first of the busiest, as ``numpy.argmax``).
    """
    uniq = list(dict.fromkeys((r, p) for r, p in pairs))
    front = tuple(a for a in uniq if not any(b != a and b[0] >= a[0] and b[1] >= a[1] for b in uniq))
    return front or ((0, 0),)


@dataclass
class OpCounts:
    """What one inference did; ``*_steps`` are the sequential steps on the critical path.

    Which array is the busiest of a stage depends on the write figures (a few reads
    and a reprogrammed block against many reads), so a schedule's counts leave that
    choice open: ``stages`` holds, per sequential stage (a layer), the
    ``(reads, programmed rows)`` of its arrays, and :meth:`critical_steps` picks each
    stage's busiest array under the :class:`HardwareParams` the counts are costed
    with.  Without ``stages``, ``read_steps`` and ``program_steps`` are the path (a
    single array, or counts stored before ``stages`` existed); giving both is an error.
    """

    mvm: int = 0                        # array activations (one read of one array)
    cells_per_mvm: int = 128 * 128      # cells an activation reads (energy per activation)
    cells_per_row: int = 128            # cells of a programmed row (one after another when cell-serial)
    dac_conversions: int = 0
    adc_conversions: dict = field(default_factory=dict)  # bits -> conversions
    sense_amp_decisions: int = 0
    digital_adds: int = 0
    digital_macs: int = 0
    cells_programmed: int = 0           # cells written (each by program-and-verify)
    read_steps: int = 0                 # sequential array-read cycles
    program_steps: int = 0              # sequential array rows programmed (HardwareParams.row_program_s each)
    digital_steps: int = 0              # sequential digital cycles
    stages: tuple = ()                  # per stage, each array's (reads, programmed rows): the path left open

    def __post_init__(self) -> None:
        self.stages = tuple(_pareto(stage) for stage in self.stages)
        if self.stages and (self.read_steps or self.program_steps):
            raise ValueError(f"OpCounts: give the critical path either as stages or as read_steps = "
                             f"{self.read_steps} / program_steps = {self.program_steps}, not both")

    def critical_steps(self, hw: "HardwareParams") -> tuple:
        """``(read_steps, program_steps)`` on the critical path under ``hw``: per stage, the array
        with the largest ``reads t_read + rows t_row`` (the first of equals)."""
        if not self.stages:
            return self.read_steps, self.program_steps
        t_read, t_row = hw.read_latency_s, hw.row_program_s(self.cells_per_row)
        reads = rows = 0
        for stage in self.stages:
            r, p = max(stage, key=lambda a: a[0] * t_read + a[1] * t_row)
            reads, rows = reads + r, rows + p
        return reads, rows

    def on_critical_path(self, hw: "HardwareParams") -> "OpCounts":
        """These counts with the critical path chosen under ``hw`` (``read_steps``/``program_steps``, no stages)."""
        reads, rows = self.critical_steps(hw)
        return dataclasses.replace(self, stages=(), read_steps=reads, program_steps=rows)

    def _programs(self) -> bool:
        return bool(self.program_steps or any(rows for stage in self.stages for _, rows in stage))

    def _stage_list(self) -> tuple:
        if self.stages:
            return self.stages
        return (((self.read_steps, self.program_steps),),) if self.read_steps or self.program_steps else ()

    def __add__(self, other: "OpCounts") -> "OpCounts":
        if (self.cells_per_mvm != other.cells_per_mvm and self.mvm and other.mvm) or \
                (self.cells_per_row != other.cells_per_row and self._programs() and other._programs()):
            raise ValueError("OpCounts of arrays of different sizes cannot be added; keep them apart")
        kw = {}
        for f in dataclasses.fields(self):
            if f.name == "stages":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            kw[f.name] = _add_dict(a, b) if isinstance(a, dict) else a + b
        kw["cells_per_mvm"] = self.cells_per_mvm if self.mvm else other.cells_per_mvm
        kw["cells_per_row"] = self.cells_per_row if self._programs() else other.cells_per_row
        if self.stages or other.stages:  # stages run one after another
            kw.update(stages=self._stage_list() + other._stage_list(), read_steps=0, program_steps=0)
        return OpCounts(**kw)

    def to_dict(self) -> dict:
        """JSON-able: ``adc_conversions`` keyed by the bits as strings, ``stages`` as lists."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["adc_conversions"] = {str(k): v for k, v in self.adc_conversions.items()}
        d["stages"] = [[list(a) for a in stage] for stage in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "OpCounts":
        """The counts of :meth:`to_dict`.  Counts stored before ``cells_per_row`` held square
        arrays only (it is then the square root of ``cells_per_mvm``); before ``stages``, the
        critical path chosen when they were counted."""
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"OpCounts has no field(s) {sorted(unknown)}")
        if "cells_per_row" not in d:
            side = math.isqrt(int(d["cells_per_mvm"]))
            if side * side != int(d["cells_per_mvm"]):
                raise ValueError(f"stored op counts without cells_per_row read {d['cells_per_mvm']} cells per "
                                 f"activation, not a square array")
            d["cells_per_row"] = side
        d["adc_conversions"] = _int_keyed(d.get("adc_conversions", {}))
        d["stages"] = tuple(tuple(tuple(a) for a in stage) for stage in d.get("stages", ()))
        return cls(**d)

    @classmethod
    def from_counters(cls, counters: dict, rows: int, cols: int, adc_bits: int | None = None,
                      read_steps: int | None = None, program_steps: int | None = None) -> "OpCounts":
        """Counts of a simulated :class:`~xbarsim.crossbar.CrossbarArray` (``arr.counters``).

        Activations are the forward plus transposed reads per tile; ``adc_bits``
        labels the ADC conversions (``None``: the array had no ADC read, the
        conversions counter must then be 0).  Without ``read_steps`` every
        activation is sequential; without ``program_steps`` the programmed cells
        are written row by row (``cells / cols`` steps).
        """
        mvm = int(counters.get("forward_mvm", 0)) + int(counters.get("backward_mvm", 0))
        adc = int(counters.get("adc", 0))
        if adc and adc_bits is None:
            raise ValueError("the counters hold ADC conversions: give adc_bits")
        cells = int(counters.get("cells_programmed", 0))
        return cls(mvm=mvm, cells_per_mvm=rows * cols, cells_per_row=cols,
                   dac_conversions=int(counters.get("dac", 0)), adc_conversions={int(adc_bits): adc} if adc else {},
                   sense_amp_decisions=int(counters.get("sense_amp", 0)), cells_programmed=cells,
                   read_steps=mvm if read_steps is None else int(read_steps),
                   program_steps=-(-cells // cols) if program_steps is None else int(program_steps))


@dataclass
class Inventory:
    """What the chip has: it sets the area."""

    n_arrays: int = 0
    n_adcs: dict = field(default_factory=dict)  # bits -> ADCs
    n_sense_amps: int = 0
    n_dacs: int = 0
    n_adders: int = 0
    n_macs: int = 0

    def __add__(self, other: "Inventory") -> "Inventory":
        """Two parts of one chip: every unit count summed (ADCs per resolution)."""
        return Inventory(**{f.name: (_add_dict if f.name == "n_adcs" else int.__add__)(getattr(self, f.name),
                                                                                       getattr(other, f.name))
                            for f in dataclasses.fields(self)})

    def to_dict(self) -> dict:
        """JSON-able: ``n_adcs`` keyed by the bits as strings."""
        d = dataclasses.asdict(self)
        d["n_adcs"] = {str(k): v for k, v in self.n_adcs.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Inventory":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Inventory has no field(s) {sorted(unknown)}")
        return cls(**dict(d, n_adcs=_int_keyed(d.get("n_adcs", {}))))


@dataclass
class CostReport:
    """Cycles, latency, energy and area (per component), EDP."""

    cycles: float
    latency_s: float
    energy_j: dict
    area_mm2: dict

    @property
    def total_energy_j(self) -> float:
        return float(sum(self.energy_j.values()))

    @property
    def total_area_mm2(self) -> float:
        return float(sum(self.area_mm2.values()))

    @property
    def edp(self) -> float:
        """Energy-delay product [J s]."""
        return self.total_energy_j * self.latency_s

    def to_dict(self) -> dict:
        return {"cycles": self.cycles, "latency_s": self.latency_s, "energy_j": dict(self.energy_j),
                "total_energy_j": self.total_energy_j, "area_mm2": dict(self.area_mm2),
                "total_area_mm2": self.total_area_mm2, "edp_js": self.edp}


def estimate(counts: OpCounts, inventory: Inventory | None = None,
             hw: HardwareParams | None = None) -> CostReport:
    """Cycles, latency, energy per component, area per component and EDP (module docstring)."""
    hw = hw or HardwareParams()
    inv = inventory or Inventory()
    c = counts
    energy_pj = {
        "array_read": c.mvm * c.cells_per_mvm * hw.cell_read_energy_pj,
        "dac": c.dac_conversions * hw.dac_energy_pj,
        "adc": sum(n * hw.adc_energy_pj(b) for b, n in c.adc_conversions.items()),
        "sense_amp": c.sense_amp_decisions * hw.sense_amp_energy_pj,
        "digital_add": c.digital_adds * hw.digital_add_energy_pj,
        "digital_mac": c.digital_macs * hw.digital_mac_energy_pj,
        # each verify iteration: one write pulse and one read of the cell
        "programming": c.cells_programmed * hw.verify_iterations * (hw.write_energy_pj + hw.cell_read_energy_pj),
    }
    read_steps, program_steps = c.critical_steps(hw)
    latency = (read_steps * hw.read_latency_s
               + program_steps * hw.row_program_s(c.cells_per_row)
               + c.digital_steps * hw.digital_cycle_s)
    area_um2 = {
        "arrays": inv.n_arrays * hw.array_area_um2,
        "adc": sum(n * hw.adc_area_um2(b) for b, n in inv.n_adcs.items()),
        "sense_amp": inv.n_sense_amps * hw.sense_amp_area_um2,
        "dac": inv.n_dacs * hw.dac_area_um2,
        "digital_add": inv.n_adders * hw.digital_add_area_um2,
        "digital_mac": inv.n_macs * hw.digital_mac_area_um2,
    }
    return CostReport(cycles=latency / hw.cycle_s, latency_s=latency,
                      energy_j={k: v * PJ for k, v in energy_pj.items()},
                      area_mm2={k: v / UM2_PER_MM2 for k, v in area_um2.items()})
