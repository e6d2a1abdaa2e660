r"""Conductance over time after programming: the base of the inference noise models.

A model describes what happens to a cell programmed to a target conductance
``g_target`` (in microsiemens, µS):

1. :meth:`ConductanceTimeModel.program` draws the programmed conductance
   ``g_prog`` (programming noise of the write-verify loop) and the per-cell
   parameters of its later evolution (for PCM the drift exponent ``nu``);
2. :meth:`ConductanceTimeModel.at_time` draws the conductance read ``t`` seconds
   after programming finished (drift or relaxation, plus the accumulated
   low-frequency read noise up to ``t``).

Both take a ``numpy.random.Generator``; the caller owns the seeding, so a
deployed network that seeds its generators from ``(seed, layer, t)`` gets the same
conductances for the same seed whatever order it is read in.

This is aihwkit's ``BaseNoiseModel`` split (``apply_programming_noise_to_conductance``,
``generate_drift_coefficients``, ``apply_drift_noise_to_conductance``), on numpy
arrays and with the equations in each model's docstring.  Models register
themselves by class name; :func:`conductance_time_model_from_dict` rebuilds a
stored one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .validation import Serialisable, from_tagged_dict, tagged_dict

__all__ = ["ConductanceTimeModel", "ProgrammedCells", "conductance_time_model_from_dict",
           "conductance_time_model_names"]

_REGISTRY: dict[str, type["ConductanceTimeModel"]] = {}


class ProgrammedCells(NamedTuple):
    """What programming leaves behind: ``g_prog`` (µS) and the per-cell evolution parameter.

    ``evolution`` is the drift exponent ``nu`` for PCM and the target conductance
    for the RRAM models (their relaxation depends on it), always the shape of ``g_prog``.
    """

    g_prog: np.ndarray
    evolution: np.ndarray


@dataclass(frozen=True)
class ConductanceTimeModel(Serialisable):
    """Base of every conductance-over-time model (frozen, validated, serialisable).

    Subclasses implement :meth:`program` and :meth:`at_time`; ``g_max`` (µS) is the
    conductance the largest absolute weight maps to.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- the model -------------------------------------------------------------
    @property
    def g_min(self) -> float:
        """The conductance a zero weight maps to (µS); 0 unless the model says otherwise."""
        return 0.0

    def program(self, g_target: np.ndarray, rng: np.random.Generator) -> ProgrammedCells:
        raise NotImplementedError

    def at_time(self, cells: ProgrammedCells, t: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    # -- serialisation -----------------------------------------------------------
    def to_dict(self) -> dict:
        return tagged_dict(self)

    @staticmethod
    def from_dict(d: dict) -> "ConductanceTimeModel":
        return conductance_time_model_from_dict(d)


def conductance_time_model_names() -> list[str]:
    return sorted(_REGISTRY)


def conductance_time_model_from_dict(d: dict) -> ConductanceTimeModel:
    """Rebuild a model from :meth:`ConductanceTimeModel.to_dict`; unknown types or keys raise."""
    return from_tagged_dict(_REGISTRY, d, "conductance-time model")


def check_time(owner: str, t: Any) -> float:
    """Raise ``ValueError`` unless ``t`` (seconds after programming) is a finite number >= 0."""
    from .validation import require_number
    require_number(owner, "t", t, 0.0, None)
    return float(t)


def polynomial(coeffs: tuple, x: np.ndarray) -> np.ndarray:
    """``sum_i coeffs[i] x**i`` (coefficients in increasing order, Horner's scheme)."""
    out = np.zeros_like(x, dtype=np.float64) + coeffs[-1]
    for c in coeffs[-2::-1]:
        out = out * x + c
    return out
