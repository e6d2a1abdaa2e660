r"""What the split and the conventional BNN mappings need per inference: arrays, ADCs, sense amps, adds.

Both mappings place every block on ``A x A`` arrays (``A = HardwareParams.array_rows
= array_cols``); a ±1 weight is a complementary cell pair on two bit lines, so an
array holds ``A/2`` outputs, and a block of fan-in ``N`` and ``M`` outputs uses
``T x C`` arrays, ``C = ceil(2M/A)``, with ``T`` input tiles of at most ``A`` rows.
A conv block reads its arrays once per output position (``L = H W``).

*Conventional* (every block): ``T = ceil(N/A)``.  A block that fits (``T = 1``)
ends in one 1-bit sense amplifier per output.  A block that does not needs the
partial sum of every tile: one ADC of ``ceil(log2(A + 1))`` bits (the levels of a
sum of ``A`` ±1 products, :func:`~xbarsim.crossbar.costs.adc_bits_for_rows`) per
output and tile, ``T - 1`` digital adds per output to accumulate, and one compare
with the folded threshold (counted as an add).

*Split* (Kim, Kim & Kim, arXiv 1811.02187): a hidden block has ``T = G`` groups
(:attr:`BinaryBlock.groups`), a sense amplifier per output and group, and a
majority vote of ``G`` bits per output (counted as ``G - 1`` adds, an upper bound
for a popcount); no ADC.

In both mappings the first block (multi-bit pixel input, counted as one read) and
the classifier (multi-bit logits: an ADC per output and tile, bits of its tile
rows, plus the BatchNorm as one MAC per output) are placed conventionally; they
are the same in both, and reported separately as well (``hidden_*`` keys).
Inputs are driven by 1-bit DACs (word-line drivers), one per row per array read.
Pooling and the data movement are not counted (the same in both mappings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from xbarsim.crossbar.costs import HardwareParams, Inventory, OpCounts, adc_bits_for_rows, estimate

from .bnn_layers import BinaryBlock
from .introspect import trace_modules

__all__ = ["BlockGeometry", "bnn_geometry", "mapping_cost", "hardware_for_rows"]

MAPPINGS = ("split", "conventional")


@dataclass(frozen=True)
class BlockGeometry:
    """One block: fan-in ``N``, outputs ``M``, output positions ``L`` per image, its groups, its role."""

    fan_in: int
    outputs: int
    positions: int
    groups: tuple[int, ...]  # group sizes (one entry: unsplit)
    real_input: bool = False
    classifier: bool = False

    @property
    def hidden(self) -> bool:
        return not (self.real_input or self.classifier)


def bnn_geometry(model: nn.Module, input_shape: tuple[int, ...]) -> list[BlockGeometry]:
    """The geometry of every :class:`BinaryBlock` of ``model`` for one input of ``input_shape``."""
    def record(name, m: BinaryBlock, inp: tuple, out: torch.Tensor) -> BlockGeometry:
        x = inp[0]
        positions = 1 if m.kind == "linear" else m.unfold(x[:1])[0].shape[1]
        return BlockGeometry(m.fan_in, m.out_features, positions, tuple(b - a for a, b in m.groups),
                             m.real_input, m.classifier)

    return trace_modules(model, input_shape, lambda m: isinstance(m, BinaryBlock), record)


def hardware_for_rows(array_rows: int, hw: HardwareParams | None = None) -> HardwareParams:
    """``hw`` with ``A x A`` arrays (their area follows from the per-cell area)."""
    hw = hw or HardwareParams()
    return hw.replace(array_rows=array_rows, array_cols=array_rows)


def _block_counts(g: BlockGeometry, A: int, mapping: str) -> tuple[OpCounts, Inventory]:
    N, M, L = g.fan_in, g.outputs, g.positions
    split = mapping == "split" and g.hidden
    tiles = list(g.groups) if split else [min(A, N - a) for a in range(0, N, A)]
    if max(tiles) > A:
        raise ValueError(f"a group of {max(tiles)} inputs does not fit arrays of {A} rows")
    T = len(tiles)
    C = -(-2 * M // A)
    counts = OpCounts(mvm=T * C * L, cells_per_mvm=A * A, dac_conversions=N * C * L, read_steps=L)
    inv = Inventory(n_arrays=T * C, n_dacs=N * C)
    if g.classifier or (T > 1 and not split):
        bits = adc_bits_for_rows(max(tiles))
        counts.adc_conversions = {bits: T * M * L}
        inv.n_adcs = {bits: T * M}
        counts.digital_adds = (T - 1) * M * L + (0 if g.classifier else M * L)
        counts.digital_macs = M * L if g.classifier else 0
        inv.n_adders = (T - 1) * M + (0 if g.classifier else M)
        inv.n_macs = M if g.classifier else 0
    else:  # sense amps: T = 1, or the split groups with a majority vote
        counts.sense_amp_decisions = T * M * L
        inv.n_sense_amps = T * M
        counts.digital_adds = (T - 1) * M * L
        inv.n_adders = (T - 1) * M
    counts.digital_steps = L * math.ceil(math.log2(T)) if T > 1 else 0
    return counts, inv


def mapping_cost(geometry: list[BlockGeometry], array_rows: int, mapping: str,
                 hw: HardwareParams | None = None) -> dict:
    """Counts, inventory and :func:`~xbarsim.crossbar.costs.estimate` of one mapping at ``A = array_rows``.

    Returns ``{"counts", "inventory", "report", "hidden_counts", "hidden_inventory", "hidden_report",
    "adc_count", "hidden_adc_count"}`` (the ``hidden_*`` entries cover the split-able blocks only).
    For ``"split"`` the geometry must come from the split network (its groups fit ``A``).
    """
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping = {mapping!r} is not allowed; choose one of {list(MAPPINGS)}")
    hw = hardware_for_rows(array_rows, hw)
    total, hidden = (OpCounts(cells_per_mvm=array_rows ** 2), Inventory()), \
        (OpCounts(cells_per_mvm=array_rows ** 2), Inventory())
    for g in geometry:
        c, i = _block_counts(g, array_rows, mapping)
        total = (total[0] + c, total[1] + i)
        if g.hidden:
            hidden = (hidden[0] + c, hidden[1] + i)
    return {"counts": total[0], "inventory": total[1], "report": estimate(total[0], total[1], hw),
            "hidden_counts": hidden[0], "hidden_inventory": hidden[1], "hidden_report": estimate(*hidden, hw),
            "adc_count": sum(total[1].n_adcs.values()), "hidden_adc_count": sum(hidden[1].n_adcs.values())}
