r"""RRAM (CMO/HfOx) conductance relaxation: log-time decay, log-time spread, 1/f read noise.

A statistical model of analog filamentary conductive-metal-oxide / HfOx ReRAM
cells (IBM Research Zurich): Falcone et al., "All-in-one analog AI hardware:
on-chip training and inference with conductive-metal-oxide/HfOx ReRAM devices",
arXiv:2502.04524 (2025).  The fitted numbers and the equations are those of
aihwkit's ``ReRamCMONoiseModel`` (``aihwkit/inference/noise/reram.py``), which
cites the work as "Falcone et al. (in review)"; the read-noise constant is from
Lombardo et al., DRC 2024, as noted there.  Conductances in µS, times in seconds
after programming, ``ln`` natural and ``log10`` decimal.

Programming (write-verify with an acceptance band of 0.2 % or 2 % of the target)::

    sigma_prog = a0 + a1 g_T                                                      [µS]
    g_prog     = g_T + prog_noise_scale * sigma_prog * xi_1

with ``(a0, a1) = (8.1107e-4 µS, 1.06879e-3)`` for the 0.2 % band and
``(1.12185391e-2 µS, 1.129027418e-2)`` for the 2 % band.

Relaxation at time ``t > 0`` (independent of the conductance level)::

    g_mean    = g_prog + drift_scale * m1 ln t                  m1 = -0.08900206 µS
    sigma_rel = |s1 ln t + s0|                                  s1 = 0.04201137 µS, s0 = 0.41183342 µS
    g_drift   = g_mean + drift_scale * sigma_rel * xi_2
    sigma_rd  = K |log10 max(g_drift, 1e-3)| sqrt(max(ln((t + t_read)/(2 t_read)), 0))
                                                                K = 0.0277316483 µS, t_read = 1 µs
    g(t)      = clip(g_drift + read_noise_scale * sigma_rd * xi_3, g_min, g_max)

and ``g(0) = g_prog``.  ``xi_1``, ``xi_2``, ``xi_3`` are independent standard
normals, ``xi_2`` and ``xi_3`` drawn afresh at each read time.

Deviations from aihwkit's code, all outside the fitted range or guards against
NaN: ``sigma_rel`` takes an absolute value (aihwkit's goes negative below
``t = exp(-s0/s1)`` ≈ 55 µs, where only its sign, irrelevant to a Gaussian, differs);
the read-noise log is floored at 0 (aihwkit returns NaN for ``t < t_read``);
``log10`` is taken of ``max(g_drift, 1e-3 µS)`` (aihwkit's NaN for ``g_drift <= 0``)
and its absolute value (same distribution).  aihwkit's constructor default
``acceptance_range = 2e-2`` is not one of its keys ``(0.2, 2)`` and falls back to
0.2 %; here ``acceptance_range`` is given in percent and defaults to 0.2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .conductance_time import ConductanceTimeModel, ProgrammedCells, check_time
from .validation import require_choice, require_number

__all__ = ["RRAMRelaxation"]

#: programming-noise coefficients ``(a0 [µS], a1)`` per acceptance band (percent of target)
_PROG_COEFF = {0.2: (8.1107e-4, 1.06879e-3), 2.0: (1.12185391e-2, 1.129027418e-2)}


@dataclass(frozen=True)
class RRAMRelaxation(ConductanceTimeModel):
    """CMO/HfOx ReRAM programming noise, log-time relaxation and 1/f read noise (see module docstring).

    Fields (aihwkit's numbers):
        g_max, g_min: conductance range of one cell, µS (88.2, 9.0).
        acceptance_range: write-verify band in percent of the target, 0.2 or 2.
        relax_mean: ``m1``, mean conductance change per e-fold of time, µS (-0.08900206).
        relax_std: ``(s1, s0)``, spread ``s1 ln t + s0``, µS (0.04201137, 0.41183342).
        read_k: ``K``, 1/f read-noise amplitude, µS per decade of conductance (0.0277316483).
        t_read: read-pulse width, s (1 µs).
        prog_noise_scale, read_noise_scale, drift_scale: multipliers (1 = as measured).
    """

    g_max: float = 88.199997
    g_min: float = 9.0
    acceptance_range: float = 0.2
    relax_mean: float = -0.08900206
    relax_std: tuple = (0.04201137, 0.41183342)
    read_k: float = 0.0277316483
    t_read: float = 1.0e-6
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0

    def __post_init__(self) -> None:
        n = "RRAMRelaxation"
        object.__setattr__(self, "relax_std", tuple(float(c) for c in self.relax_std))
        require_number(n, "g_max", self.g_max, 0.0, None, lo_open=True)
        require_number(n, "g_min", self.g_min, 0.0, self.g_max, hi_open=True)
        require_choice(n, "acceptance_range", self.acceptance_range, tuple(_PROG_COEFF))
        require_number(n, "relax_mean", self.relax_mean)
        if len(self.relax_std) != 2:
            raise ValueError(f"{n}.relax_std must be (s1, s0), two numbers, got {self.relax_std!r}")
        for i, c in enumerate(self.relax_std):
            require_number(n, f"relax_std[{i}]", c)
        require_number(n, "read_k", self.read_k, 0.0, None)
        require_number(n, "t_read", self.t_read, 0.0, None, lo_open=True)
        require_number(n, "prog_noise_scale", self.prog_noise_scale, 0.0, None)
        require_number(n, "read_noise_scale", self.read_noise_scale, 0.0, None)
        require_number(n, "drift_scale", self.drift_scale, 0.0, None)

    # -- the equations -------------------------------------------------------------
    def programming_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """``sigma_prog(g_T) = a0 + a1 g_T`` in µS (before ``prog_noise_scale``)."""
        a0, a1 = _PROG_COEFF[float(self.acceptance_range)]
        return a0 + a1 * np.asarray(g_target, dtype=np.float64)

    def relaxation_shift(self, t: float) -> float:
        """Mean conductance change ``drift_scale m1 ln t`` (µS) at ``t > 0``."""
        return self.drift_scale * self.relax_mean * math.log(t)

    def relaxation_sigma(self, t: float) -> float:
        """Relaxation spread ``drift_scale |s1 ln t + s0|`` (µS) at ``t > 0``."""
        s1, s0 = self.relax_std
        return self.drift_scale * abs(s1 * math.log(t) + s0)

    def read_noise_log_factor(self, t: float) -> float:
        """``max(ln((t + t_read) / (2 t_read)), 0)``."""
        return max(math.log((t + self.t_read) / (2.0 * self.t_read)), 0.0)

    def read_noise_sigma(self, g_drift: np.ndarray, t: float) -> np.ndarray:
        """``sigma_rd = K |log10 max(g_drift, 1e-3)| sqrt(log factor)`` in µS (before ``read_noise_scale``)."""
        g = np.maximum(np.asarray(g_drift, dtype=np.float64), 1e-3)
        return self.read_k * np.abs(np.log10(g)) * math.sqrt(self.read_noise_log_factor(t))

    # -- sampling ----------------------------------------------------------------------
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> ProgrammedCells:
        """Draw ``g_prog`` of cells programmed to ``g_target`` (µS); the evolution parameter is ``g_target``."""
        g_t = np.asarray(g_target, dtype=np.float64)
        xi = rng.standard_normal(g_t.shape)
        return ProgrammedCells(g_t + self.prog_noise_scale * self.programming_sigma(g_t) * xi, g_t.copy())

    def at_time(self, cells: ProgrammedCells, t: float, rng: np.random.Generator) -> np.ndarray:
        """Draw the conductances (µS) read ``t`` seconds after programming."""
        t = check_time("RRAMRelaxation.at_time", t)
        g_prog = np.asarray(cells.g_prog, dtype=np.float64)
        if t == 0.0:
            return g_prog.copy()
        xi_rel = rng.standard_normal(g_prog.shape)
        xi_read = rng.standard_normal(g_prog.shape)
        g_drift = g_prog + self.relaxation_shift(t) + self.relaxation_sigma(t) * xi_rel
        g = g_drift + self.read_noise_scale * self.read_noise_sigma(g_drift, t) * xi_read
        return np.clip(g, self.g_min, self.g_max)
