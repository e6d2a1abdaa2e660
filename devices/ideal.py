"""A floating-point weight: the reference against which pulsed devices are compared."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import DeviceConfig
from .layout import C_B_MAX, C_B_MIN, C_DECAY, C_DIFFUSION, N_CELL
from .validation import require_number


@dataclass(frozen=True)
class IdealDevice(DeviceConfig):
    """A floating-point weight: updates are exact, ``W <- W - lr d^T x``, no bounds.

    Use it as the reference against which pulsed devices are compared
    (aihwkit ``IdealDevice``).  ``lifetime`` and ``diffusion`` still apply.
    Its cells have infinite bounds and zero steps.
    """

    pulsed: ClassVar[bool] = False
    lifetime: float = 0.0
    diffusion: float = 0.0

    def __post_init__(self) -> None:
        require_number(self.name, "lifetime", self.lifetime, 0.0, None)
        require_number(self.name, "diffusion", self.diffusion, 0.0, None)

    @property
    def dw_min(self) -> float:
        return 0.0

    @property
    def w_max(self) -> float:
        return math.inf

    @property
    def w_min(self) -> float:
        return -math.inf

    @property
    def num_states(self) -> float:
        return math.inf

    def sample_planes(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        cell = np.zeros((N_CELL, *shape), dtype=np.float32)
        cell[C_B_MAX] = np.inf
        cell[C_B_MIN] = -np.inf
        cell[C_DECAY] = 1.0 - 1.0 / self.lifetime if self.lifetime > 0 else 1.0
        cell[C_DIFFUSION] = self.diffusion
        return cell

    def symmetry_point(self, cell: np.ndarray | None = None):
        raise ValueError("IdealDevice is not pulsed and has no symmetry point")
