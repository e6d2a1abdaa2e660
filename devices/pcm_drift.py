r"""PCM-like statistical inference model: programming noise, power-law drift, 1/f read noise.

The model of Nandakumar et al., "Phase-change memory models for deep learning
training and inference", ICECS 2019 (doi:10.1109/ICECS46596.2019.8964852), fitted
on about one million PCM devices (Joshi et al., Nat. Commun. 11:2473, 2020), with
the equations and defaults of aihwkit's ``PCMLikeNoiseModel``
(``aihwkit/inference/noise/pcm.py``).  Conductances in microsiemens (µS), times in
seconds; ``t`` counts from the end of programming.

Programming (per cell, target ``g_T`` in [0, g_max])::

    sigma_prog = (c0 + c1 (g_T/g_max) + c2 (g_T/g_max)^2) * g_max / g_ref          [µS]
    g_prog     = max(g_T + prog_noise_scale * sigma_prog * xi_1, 0)

with ``(c0, c1, c2) = (0.26348, 1.9650, -1.1731)`` fitted at ``g_ref = 25 µS``.

Drift exponent (per cell, ``g_r = max(|g_T| / g_max, 1e-7)``, natural log)::

    mu_nu    = clip(-0.0155 ln g_r + 0.0244, 0.049, 0.1)
    sigma_nu = clip(-0.0125 ln g_r - 0.0059, 0.008, 0.045)
    nu       = drift_scale * |mu_nu + sigma_nu * xi_2|

Read at time ``t`` (``T = t + t_0``, ``t_0 = 20 s`` the first read of the fit)::

    g_drift = g_prog (T / t_0)^(-nu)
    Q_s     = min(0.0088 / max((|g_prog| / g_max)^0.65, 1e-3), 0.2)
    sigma_r = Q_s sqrt(ln((T + t_read) / (2 t_read)))                  (t_read = 250 ns)
    g(t)    = max(g_drift + |g_drift| read_noise_scale sigma_r xi_3, 0)

``xi_1``, ``xi_2``, ``xi_3`` are independent standard normals; ``xi_3`` is drawn
afresh at every read time (accumulated 1/f noise, ``S_G/G^2 = Q/f`` integrated over
the band ``[1/T, 1/(2 t_read)]``).

Where aihwkit's documentation (``docs/source/pcm_inference.rst``) and its code
differ, this module follows the code, and says where:

* the docs draw ``nu ~ N(mu_nu, sigma_nu)``; the code folds it, ``|mu + sigma xi|``;
* the docs write ``Q_s`` from ``g_T``; the code from ``g_prog``, with the 1e-3 floor;
* the docs' read-noise time is ``t``; the code uses ``t + t_0`` (so a read at
  ``t = 0`` already carries the 1/f noise accumulated over ``t_0``);
* the docs clip ``sigma_prog`` at 0; the code instead clips ``g_prog`` and ``g(t)`` at 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .conductance_time import ConductanceTimeModel, ProgrammedCells, check_time, polynomial
from .validation import require_number

__all__ = ["PCMLikeDrift"]

_ZERO_CLIP = 1e-7


@dataclass(frozen=True)
class PCMLikeDrift(ConductanceTimeModel):
    """PCM programming noise, drift ``(T/t_0)^-nu`` and accumulated 1/f read noise (see module docstring).

    Fields (aihwkit's names and defaults):
        g_max: conductance of the largest absolute weight, µS (25).
        prog_coeff: programming-noise polynomial ``(c0, c1, c2, ...)`` in µS at ``g_ref``.
        prog_coeff_g_max_reference: ``g_ref``, the ``g_max`` the polynomial was fitted at (25 µS).
        t_read: read-pulse width of the 1/f fit, s (250 ns).
        t_0: first read after programming in the drift fit, s (20 s).
        prog_noise_scale, read_noise_scale, drift_scale: multipliers (1 = as measured).
    """

    g_max: float = 25.0
    prog_coeff: tuple = (0.26348, 1.9650, -1.1731)
    prog_coeff_g_max_reference: float = 25.0
    t_read: float = 250.0e-9
    t_0: float = 20.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0

    def __post_init__(self) -> None:
        n = "PCMLikeDrift"
        object.__setattr__(self, "prog_coeff", tuple(float(c) for c in self.prog_coeff))
        require_number(n, "g_max", self.g_max, 0.0, None, lo_open=True)
        if len(self.prog_coeff) < 1:
            raise ValueError(f"{n}.prog_coeff must hold at least one coefficient, got {self.prog_coeff!r}")
        for i, c in enumerate(self.prog_coeff):
            require_number(n, f"prog_coeff[{i}]", c)
        require_number(n, "prog_coeff_g_max_reference", self.prog_coeff_g_max_reference, 0.0, None, lo_open=True)
        require_number(n, "t_read", self.t_read, 0.0, None, lo_open=True)
        require_number(n, "t_0", self.t_0, 0.0, None, lo_open=True)
        require_number(n, "prog_noise_scale", self.prog_noise_scale, 0.0, None)
        require_number(n, "read_noise_scale", self.read_noise_scale, 0.0, None)
        require_number(n, "drift_scale", self.drift_scale, 0.0, None)

    # -- the equations, one per function --------------------------------------------
    def programming_sigma(self, g_target: np.ndarray) -> np.ndarray:
        """``sigma_prog(g_T)`` in µS (before ``prog_noise_scale``)."""
        g = np.asarray(g_target, dtype=np.float64)
        return polynomial(self.prog_coeff, g / self.g_max) * (self.g_max / self.prog_coeff_g_max_reference)

    def drift_exponent_mean(self, g_target: np.ndarray) -> np.ndarray:
        """``mu_nu(g_T)`` (dimensionless, before ``drift_scale``)."""
        g_r = np.maximum(np.abs(np.asarray(g_target, dtype=np.float64)) / self.g_max, _ZERO_CLIP)
        return np.clip(-0.0155 * np.log(g_r) + 0.0244, 0.049, 0.1)

    def drift_exponent_std(self, g_target: np.ndarray) -> np.ndarray:
        """``sigma_nu(g_T)`` (dimensionless, before ``drift_scale``)."""
        g_r = np.maximum(np.abs(np.asarray(g_target, dtype=np.float64)) / self.g_max, _ZERO_CLIP)
        return np.clip(-0.0125 * np.log(g_r) - 0.0059, 0.008, 0.045)

    def read_noise_q(self, g_prog: np.ndarray) -> np.ndarray:
        """``Q_s(g_prog)``, the relative 1/f noise amplitude."""
        g_r = np.abs(np.asarray(g_prog, dtype=np.float64)) / self.g_max
        return np.minimum(0.0088 / np.maximum(g_r ** 0.65, 1e-3), 0.2)

    def read_noise_log_factor(self, t: float) -> float:
        """``ln((t + t_0 + t_read) / (2 t_read))``: the 1/f band integrated up to read time ``t``."""
        return math.log((t + self.t_0 + self.t_read) / (2.0 * self.t_read))

    # -- sampling --------------------------------------------------------------------
    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> ProgrammedCells:
        """Draw ``g_prog`` and the drift exponents ``nu`` of cells programmed to ``g_target`` (µS)."""
        g_t = np.asarray(g_target, dtype=np.float64)
        xi_prog = rng.standard_normal(g_t.shape)
        xi_nu = rng.standard_normal(g_t.shape)
        g_prog = np.maximum(g_t + self.prog_noise_scale * self.programming_sigma(g_t) * xi_prog, 0.0)
        nu = self.drift_scale * np.abs(self.drift_exponent_mean(g_t) + self.drift_exponent_std(g_t) * xi_nu)
        return ProgrammedCells(g_prog, nu)

    def at_time(self, cells: ProgrammedCells, t: float, rng: np.random.Generator) -> np.ndarray:
        """Draw the conductances (µS) read ``t`` seconds after programming."""
        t = check_time("PCMLikeDrift.at_time", t)
        g_prog, nu = cells
        g_drift = g_prog * ((t + self.t_0) / self.t_0) ** (-nu) if t > 0 else np.array(g_prog, dtype=np.float64)
        sigma_r = self.read_noise_q(g_prog) * math.sqrt(self.read_noise_log_factor(t))
        xi = rng.standard_normal(np.shape(g_prog))
        return np.maximum(g_drift + np.abs(g_drift) * self.read_noise_scale * sigma_r * xi, 0.0)
