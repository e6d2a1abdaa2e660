r"""A binary weight stored in a complementary pair of RRAM cells (two-state devices).

A weight ``w = +1`` is the pair ``(G+, G-) = (G_on, G_off)``, ``w = -1`` is
``(G_off, G_on)``; the read sees ``G+ - G-`` (Kim, Kim & Kim, arXiv 1811.02187,
2018; Yu, "Neuro-inspired computing with emerging nonvolatile memory",
Proc. IEEE 106:260, 2018).  Conductances are in weight units, ``G_on = g_on``,
``G_off = g_on / on_off_ratio``, so the ideal pair reads ``±(G_on - G_off)``.

Non-idealities (all per cell, drawn once per programmed array from a seed):

* device-to-device conductance variation, lognormal:
  ``G = G_nominal exp(variation xi)``, ``xi ~ N(0, 1)`` (RRAM resistance spreads are
  close to lognormal; Lee et al., IEDM 2012);
* stuck cells: with probability ``stuck_on_prob`` a cell reads ``G_on``, with
  ``stuck_off_prob`` it reads ``G_off``, whatever was programmed (then varied too);
* read noise: a relative std ``read_noise`` per cell and read; for ``±1`` inputs on
  ``n`` rows its output-referred std is ``read_noise sqrt(n (G_on^2 + G_off^2))``
  (:meth:`BinaryCellConfig.output_noise`).

``on_off_ratio = inf`` with no variation, no stuck cells and no read noise is the
ideal device: the pair reads exactly ``±g_on``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validation import Serialisable, require_number

__all__ = ["BinaryCellConfig"]


@dataclass(frozen=True)
class BinaryCellConfig(Serialisable):
    """Two-state RRAM cells holding ±1 weights as complementary pairs.

    Fields:
        g_on: on-state conductance in weight units (> 0).
        on_off_ratio: ``G_on / G_off`` (> 1; ``math.inf``: ``G_off = 0``).
        variation: lognormal sigma of the d2d conductance variation (0.1 = about 10 %).
        read_noise: relative std of a cell's conductance per read.
        stuck_on_prob, stuck_off_prob: probability that a cell is stuck at ``G_on`` / ``G_off``.
    """

    g_on: float = 1.0
    on_off_ratio: float = math.inf
    variation: float = 0.0
    read_noise: float = 0.0
    stuck_on_prob: float = 0.0
    stuck_off_prob: float = 0.0

    def __post_init__(self) -> None:
        n = "BinaryCellConfig"
        require_number(n, "g_on", self.g_on, 0.0, None, lo_open=True)
        if not (isinstance(self.on_off_ratio, (int, float)) and self.on_off_ratio == math.inf):
            require_number(n, "on_off_ratio", self.on_off_ratio, 1.0, None, lo_open=True)
        require_number(n, "variation", self.variation, 0.0, 2.0)
        require_number(n, "read_noise", self.read_noise, 0.0, 1.0)
        require_number(n, "stuck_on_prob", self.stuck_on_prob, 0.0, 1.0)
        require_number(n, "stuck_off_prob", self.stuck_off_prob, 0.0, 1.0)
        if self.stuck_on_prob + self.stuck_off_prob > 1.0:
            raise ValueError(f"{n}: stuck_on_prob + stuck_off_prob = {self.stuck_on_prob + self.stuck_off_prob} "
                             f"is outside the allowed range [0, 1]")

    @property
    def g_off(self) -> float:
        return 0.0 if self.on_off_ratio == math.inf else self.g_on / self.on_off_ratio

    @property
    def contrast(self) -> float:
        """Nominal read of a +1 pair, ``G_on - G_off``."""
        return self.g_on - self.g_off

    @property
    def ideal(self) -> bool:
        return (self.on_off_ratio == math.inf and self.variation == 0 and self.read_noise == 0
                and self.stuck_on_prob == 0 and self.stuck_off_prob == 0)

    def output_noise(self, n_rows: int, input_bound: float = 1.0) -> float:
        """Output-referred read-noise std of a tile of ``n_rows`` inputs of magnitude ``input_bound``."""
        return self.read_noise * input_bound * math.sqrt(n_rows * (self.g_on ** 2 + self.g_off ** 2))

    def sample_pairs(self, weights: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Conductances ``(G+, G-)`` (float32, shape of ``weights``) of ±1 ``weights`` (``w >= 0`` is +1)."""
        plus = np.asarray(weights) >= 0
        rng = np.random.Generator(np.random.PCG64(seed))
        pair = []
        for on in (plus, ~plus):
            g = np.where(on, np.float32(self.g_on), np.float32(self.g_off)).astype(np.float32)
            if self.stuck_on_prob > 0 or self.stuck_off_prob > 0:
                u = rng.random(g.shape, dtype=np.float32)
                g[u < self.stuck_on_prob] = self.g_on
                g[(u >= self.stuck_on_prob) & (u < self.stuck_on_prob + self.stuck_off_prob)] = self.g_off
            if self.variation > 0:
                g *= np.exp(np.float32(self.variation) * rng.standard_normal(g.shape, dtype=np.float32))
            pair.append(g)
        return pair[0], pair[1]
