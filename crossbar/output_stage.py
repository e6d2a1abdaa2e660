r"""The output stage of a forward read: a multi-bit ADC or a 1-bit sense amplifier, and the tile merge.

Convention (as :class:`xbarsim.crossbar.CrossbarArray`): ``W`` has shape
``(rows, cols) = (outputs, inputs)``; an output line ``i`` collects the current
``I_i = sum_j W_ij x_j`` of the inputs of one tile.  A matrix wider than
``tile_cols`` inputs is cut into *input tiles* ``t = 0..T-1`` (contiguous
blocks of ``tile_cols`` inputs, the last one possibly shorter), each a
physical array with its own output stage.

``kind = "adc"`` (default)
    every tile's current is digitised by :class:`xbarsim.crossbar.IOConfig`'s ADC
    (unchanged behaviour).
``kind = "sense_amp"``
    every tile's output line ends in a 1-bit comparator (a sense amplifier) with
    its own threshold ``theta_ti`` and comparison sign ``c_ti = ±1``:

    .. math:: a_{ti} = +1 \ \text{if}\ c_{ti} I_{ti} \ge c_{ti}\theta_{ti}\ \text{else}\ -1

    (ties go to +1).  ``c = -1`` flips the comparison, which is what a folded
    BatchNorm with negative ``gamma`` needs (Kim, Kim & Kim, arXiv 1811.02187, 2018).
    The current compared is the analog one, before any ADC: DAC quantisation,
    weight and output noise of the ``IOConfig`` apply; the ADC grid, its clipping
    and bound management do not.  With noise management the current is scaled
    back to input units (``s I``) before the comparison, so thresholds are in the
    units of ``W x``.

``tile_merge`` combines the input tiles of one output:

``"sum"``
    ``y_i = sum_t o_ti`` (digital accumulation, today's behaviour; with sense
    amplifiers ``o`` is the ±1 decision, so ``y`` counts votes);
``"majority"``
    ``y_i = +1 if sum_t a_ti >= 0 else -1``, a majority vote of the tiles'
    1-bit outputs, ties (possible for an even number of tiles) going to +1.
    Only meaningful with sense amplifiers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xbarsim.devices.validation import Serialisable, require_choice

OUTPUT_KINDS = ("adc", "sense_amp")
TILE_MERGES = ("sum", "majority")


@dataclass(frozen=True)
class OutputStage(Serialisable):
    """What ends each output line of a forward read, and how input tiles are merged.

    Fields:
        kind: ``"adc"`` (multi-bit ADC of :class:`IOConfig`) or ``"sense_amp"`` (1-bit
            comparator with a per-output threshold, set by
            :meth:`CrossbarArray.set_sense_amp`; thresholds in the units of ``W x``).
        tile_merge: ``"sum"`` or ``"majority"`` (requires ``kind = "sense_amp"``).
    """

    kind: str = "adc"
    tile_merge: str = "sum"

    def __post_init__(self) -> None:
        require_choice("OutputStage", "kind", self.kind, OUTPUT_KINDS)
        require_choice("OutputStage", "tile_merge", self.tile_merge, TILE_MERGES)
        if self.tile_merge == "majority" and self.kind != "sense_amp":
            raise ValueError("OutputStage.tile_merge = 'majority' needs kind = 'sense_amp' (1-bit tile outputs)")


def sense_amp_decisions(current: np.ndarray, threshold: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """``+1`` where ``sign * current >= sign * threshold`` else ``-1`` (float32, ties to +1).

    ``current`` is ``(batch, n)``; ``threshold`` and ``sign`` broadcast to ``(n,)``.
    """
    hit = np.where(sign > 0, current >= threshold, current <= threshold)
    return np.where(hit, np.float32(1.0), np.float32(-1.0))


def majority(votes: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sign of the sum of ±1 ``votes`` over ``axis``, ties to +1 (float32)."""
    return np.where(votes.sum(axis=axis) >= 0, np.float32(1.0), np.float32(-1.0))


__all__ = ["OutputStage", "OUTPUT_KINDS", "TILE_MERGES", "sense_amp_decisions", "majority"]
