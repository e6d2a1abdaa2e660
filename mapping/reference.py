r"""Reference devices and zero-shifting: what an analog weight's zero is.

A weight read differentially is :math:`W = G - G_{ref}`: the programmable cell
``G`` minus a reference cell ``G_ref`` that training never pulses
(:class:`xbarsim.crossbar.CrossbarArray` reads ``G_read - G_ref`` and ``update`` pulses
only ``G``).  This module decides what ``G_ref`` holds and programs it the way
hardware does.

Physics: why the reference matters (Kim et al., arXiv:1907.10228, 2019)
-----------------------------------------------------------------------
A soft-bound cell (:class:`xbarsim.devices.SoftBounds`) with per-cell step sizes
:math:`\alpha_\pm` and bounds :math:`b_{min} < 0 < b_{max}` moves, per pulse,

.. math::
    \Delta w_+ = \alpha_+ (1 - w/b_{max}), \qquad \Delta w_- = -\alpha_- (1 - w/b_{min}),

with ``alpha_+ = dw_min (g + min(up_down, 0) + rho)`` and
``alpha_- = dw_min (g - max(up_down, 0) - rho)`` (aihwkit's ``up_down``
convention; ``g``, ``rho`` the cell's device-to-device draws).  The two steps are
equal at the *symmetry point*

.. math::
    w^* = \frac{\alpha_+ - \alpha_-}{\alpha_+/b_{max} - \alpha_-/b_{min}}
    \;\;\Big(= b\,\frac{\alpha_+ - \alpha_-}{\alpha_+ + \alpha_-}\ \text{for } b_{max} = -b_{min} = b\Big).

Under zero-mean random pulsing (equally many up and down pulses, which is
what SGD's fluctuating gradients produce once the mean gradient is small)

.. math::
    E[\Delta w] = \tfrac12(\Delta w_+ + \Delta w_-)
               = \tfrac12\left(\frac{\alpha_+}{b_{max}} - \frac{\alpha_-}{b_{min}}\right)(w^* - w)
               \;\propto\; (w^* - w),

a restoring drift toward :math:`w^*`, not toward 0.  Without a reference
(``W = G``) every weight therefore decays toward its cell's ``w*``: an unwanted
"weight decay to a bias" whose strength per update is about
``lr |x d| / b`` -- set by the gradient *traffic*, not by the number of states
(fewer states mean larger but proportionally fewer pulses).  For ``up_down =
0.6`` and ``b = 0.6``, ``w* = 0.26``: a sigmoid network whose weights all drift to
+0.26 saturates its hidden units and stops learning.

*Zero-shifting* programs each reference to its own cell's symmetry point,
``G_ref = w*``, so the attractor of the effective weight ``W = G - G_ref`` is
``W = 0``: the device noise then acts as a mild weight decay toward 0 instead of
a bias.  Device-to-device spread of ``w*`` comes from the cells' own sampled
parameters (no separate knob).

How the reference is programmed (the hardware flow)
---------------------------------------------------
1. **Measure** (``mode="symmetry_point"``): every ``G`` cell of the array receives
   alternating up/down pulse pairs, with the device's cycle-to-cycle noise, from
   its current state; it converges to and then zig-zags around its ``w*``.  The
   mean over the last ``n_average`` pairs is the measured ``w*``
   (:func:`xbarsim.devices.measure_symmetry_point` on the array's own cell parameters).
   The convergence phase is the settling time of the ``settle_quantile``
   (default 99 %) slowest cell (:func:`settling_pairs`), capped at ``max_pairs``; a
   cell slower than that (d2d makes a few almost immobile) is measured before it has
   settled and carries the error.
   With c2c noise ``sigma`` the measurement's standard error is about
   ``sigma alpha sqrt(2) / (rate sqrt(n_average))``, ``rate = alpha_+/b_max + alpha_-/|b_min|``.
2. **Write the reference**: the reference cells are a separate population of
   the same device type, with their own d2d parameters
   (``xbarsim.devices.sample_cells(device, shape, seed + seed_offset)``).  Each starts
   from its reset state (its lower bound ``b_min``, the fully reset,
   high-resistance state) and is driven toward its target by closed-loop
   program-and-verify (:func:`program_cells`): read the error, apply a burst of
   pulses toward the target sized from the step observed in the previous
   burst, repeat with single pulses at the end, and stop when the cell is within
   ``program_tolerance * dw_min`` of the target, when a single pulse carries it
   across the target (residual at most one step), when it stops moving (a
   bound or a stuck cell), or after ``max_program_pulses``.  The reference thus
   carries its own programming error of about one step.
3. **Program the weights** as ``G = W + G_ref``.  :func:`program_reference`
   does this itself: it reads the array's effective weights ``W`` before
   touching the reference and re-programs them afterwards, so it can be called
   right after conversion (the initial weights are kept) or at any later time.
   Weights that no longer fit in ``[b_min - G_ref, b_max - G_ref]`` are clipped
   and counted (``clipped`` in the returned statistics).

Modes
-----
``none``
    No reference: ``W = G`` (a plain single device).  An existing reference is removed.
``zero``
    A reference programmed to 0: ``W = G - G_ref`` with ``G_ref ~ 0`` up to its
    programming error.  The control experiment: a reference that is *not* at the
    symmetry point does not help.
``symmetry_point``
    Zero-shifting as above.  ``ideal=True`` writes the closed form
    :func:`xbarsim.devices.symmetry_point` of each cell exactly instead (no measurement,
    no programming error); it raises ``ValueError`` for models without a
    closed form (ExpStep, PiecewiseStep).

Placement
---------
``per_weight``
    One reference cell per weight, shape ``(rows, cols)``; each holds its own
    cell's ``w*``.
``shared_column``
    One reference cell per input line, shape ``(cols,)``, subtracted from every
    output (``CrossbarArray.set_reference`` with a ``(cols,)`` vector).  It is
    programmed to the mean over outputs of the measured (or closed-form)
    symmetry points of that input line's cells.  Each weight's attractor is then
    ``w*_ij - mean_i w*_ij``: the device-to-device spread of ``w*`` along the
    column is *not* removed, which is why a shared column recovers less than
    per-weight references (the cost saved is one reference cell per weight).

Training never changes the reference: ``CrossbarArray.update`` pulses only ``G``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from xbarsim.crossbar import CrossbarArray
from xbarsim.devices import DeviceConfig, measure_symmetry_point, sample_cells, symmetry_point
from xbarsim.devices.kernels import apply_pulse_counts
from xbarsim.devices.layout import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP
from xbarsim.devices.symmetry import convergence_pairs
from xbarsim.devices.validation import Serialisable, require_bool, require_choice, require_number

__all__ = ["REFERENCE_MODES", "REFERENCE_PLACEMENTS", "ReferenceConfig", "settling_pairs",
           "measure_array_symmetry_point", "program_cells", "program_reference", "apply_reference"]

log = logging.getLogger(__name__)

REFERENCE_MODES = ("none", "zero", "symmetry_point")
REFERENCE_PLACEMENTS = ("per_weight", "shared_column")

# tags that derive independent c2c-noise seeds for measurement and programming
_TAG_MEASURE = 0x5350  # "SP"
_TAG_PROGRAM = 0x5046  # "PF"


def _derived_seed(seed: int, tag: int) -> int:
    """A seed for one purpose, independent of the array's own random streams."""
    return int(np.random.SeedSequence([int(seed), tag]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(2))


@dataclass(frozen=True)
class ReferenceConfig(Serialisable):
    """What the reference cells hold and how they are programmed (see the module docstring).

    Attributes:
        mode: ``"none"`` (``W = G``), ``"zero"`` (``G_ref = 0``) or ``"symmetry_point"``
            (zero-shifting, ``G_ref = w*``).
        placement: ``"per_weight"`` (one reference cell per weight) or
            ``"shared_column"`` (one per input line, holding the column mean).
        ideal: write the target exactly (the closed-form ``w*`` in ``symmetry_point``
            mode) instead of measuring it and writing it with pulses.
        n_average: pulse pairs averaged by the symmetry-point measurement.
        max_pairs: cap on the measurement's convergence phase (pairs).
        settle_quantile: the convergence phase lasts until this fraction of the cells has
            settled (:func:`settling_pairs`; 1.0 waits for the slowest cell).
        seed_offset: the reference population is ``sample_cells(device, shape, seed + seed_offset)``.
        program_tolerance: program-and-verify stops within this many nominal ``dw_min`` of the target.
        max_program_pulses: program-and-verify gives up on a cell after this many pulses.
    """

    mode: str = "none"
    placement: str = "per_weight"
    ideal: bool = False
    n_average: int = 1000
    max_pairs: int = 200_000
    settle_quantile: float = 0.99
    seed_offset: int = 1_000_003
    program_tolerance: float = 0.5
    max_program_pulses: int = 20_000

    def __post_init__(self) -> None:
        n = "ReferenceConfig"
        require_choice(n, "mode", self.mode, REFERENCE_MODES)
        require_choice(n, "placement", self.placement, REFERENCE_PLACEMENTS)
        require_bool(n, "ideal", self.ideal)
        require_number(n, "n_average", self.n_average, 1, None, integer=True)
        require_number(n, "max_pairs", self.max_pairs, 1, None, integer=True)
        require_number(n, "settle_quantile", self.settle_quantile, 0.0, 1.0, lo_open=True)
        require_number(n, "seed_offset", self.seed_offset, 0, 2**62, integer=True)
        require_number(n, "program_tolerance", self.program_tolerance, 0.0, None)
        require_number(n, "max_program_pulses", self.max_program_pulses, 1, None, integer=True)


# --------------------------------------------------------------------------- measurement
def settling_pairs(cell: np.ndarray, config: ReferenceConfig | None = None) -> int:
    """Pulse pairs of the measurement's convergence phase for the cells ``cell``.

    Per cell, the soft-bound contraction per (up, down) pair is
    ``rate = alpha_+/b_max + alpha_-/|b_min|``, so a cell starting anywhere in its
    range settles to within half a step of ``w*`` after
    ``ln(range / (0.5 alpha)) / rate`` pairs (the estimate of
    :func:`xbarsim.devices.symmetry.convergence_pairs`, applied cell by cell).  The phase
    lasts the ``config.settle_quantile`` quantile of that over the cells, capped at
    ``config.max_pairs``.  The quantile, not the maximum: d2d variation makes a
    few cells almost immobile (gain ``1 + dw_min_dtod xi`` near 0 settles in
    millions of pairs); such cells are measured unsettled and carry the error.
    """
    config = ReferenceConfig() if config is None else config
    if config.settle_quantile >= 1.0:
        return convergence_pairs(cell, max_pairs=config.max_pairs)
    c = np.moveaxis(np.asarray(cell, dtype=np.float64), -1, 0)
    alpha = 0.5 * (c[C_SCALE_UP] + c[C_SCALE_DOWN])
    moving = alpha > 0
    if not np.any(moving):
        return 1
    with np.errstate(divide="ignore"):
        rate = (c[C_SCALE_UP] / np.abs(c[C_B_MAX]) + c[C_SCALE_DOWN] / np.abs(c[C_B_MIN]))[moving]
    span = (c[C_B_MAX] - c[C_B_MIN])[moving]
    n = np.log(np.maximum(span / (0.5 * alpha[moving]), np.e)) / rate
    n = n[np.isfinite(n)]
    if n.size == 0:
        return int(config.max_pairs)
    return int(min(config.max_pairs, max(1, math.ceil(np.quantile(n, config.settle_quantile)))))


def measure_array_symmetry_point(array: CrossbarArray, config: ReferenceConfig | None = None,
                                 seed: int = 0) -> np.ndarray:
    """Measured symmetry point of every ``G`` cell of ``array``, shape ``(rows, cols)`` (float64).

    Alternating up/down pulse pairs with the device's c2c noise, starting from the
    cells' present conductances: :func:`settling_pairs` pairs to settle, then
    ``config.n_average`` pairs averaged.  The array itself is not modified
    (:func:`xbarsim.devices.measure_symmetry_point` works on a copy; :func:`program_reference`
    re-programs the weights afterwards anyway).
    """
    config = ReferenceConfig() if config is None else config
    device = array.device
    if not device.pulsed:
        raise ValueError(f"measure_array_symmetry_point: {device.name} is not pulsed and has no symmetry point")
    cell = array.cell_params
    settle = settling_pairs(cell, config)
    return np.asarray(measure_symmetry_point(device, cell, w0=array.get_conductances(),
                                             n_pairs=settle + config.n_average, n_average=config.n_average,
                                             seed=_derived_seed(seed, _TAG_MEASURE)), dtype=np.float64)


# --------------------------------------------------------------------------- programming
def program_cells(device: DeviceConfig, cell: np.ndarray, target: np.ndarray, seed: int,
                  tolerance: float = 0.5, max_pulses: int = 20_000) -> tuple[np.ndarray, dict]:
    """Closed-loop program-and-verify of a population of cells from reset toward ``target``.

    ``cell``: per-cell parameters ``(rows, cols, N_CELL)``; ``target``: ``(rows, cols)``.
    Each cell starts at its reset state ``b_min``.  Every iteration reads the error
    ``e = target - w`` (an ideal verify read) and applies ``n`` pulses in the direction
    of ``sign(e)``: ``n = max(1, floor(0.8 |e| / s))`` where ``s`` is the mean step the
    cell showed in its previous burst in that direction (initially the nominal
    ``dw_min``; up and down steps differ on an asymmetric device).  A cell is
    done when ``|e| <= tolerance * dw_min``, when a *single* pulse carried it across
    the target (so ``|e|`` is at most that one step), when a burst stalled (it moved
    less than the tolerance and less than a tenth of what the previous step in that
    direction promised:
    the cell is pinned at a soft bound short of the target, or stuck), or after
    ``max_pulses`` pulses.  Pulses carry
    the device's c2c noise (counter-based, from ``seed``).

    Returns ``(w, stats)``: the programmed values (float64) and counts
    (``pulses_mean``, ``pulses_max``, ``iterations``, ``not_converged``, ``saturated``).
    """
    if not device.pulsed:
        raise ValueError(f"program_cells: {device.name} is not pulsed; write it directly")
    require_number("program_cells", "tolerance", tolerance, 0.0, None)
    require_number("program_cells", "max_pulses", max_pulses, 1, None, integer=True)
    cell = np.ascontiguousarray(cell, dtype=np.float32)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != cell.shape[:2]:
        raise ValueError(f"program_cells: target shape {target.shape} does not match cells {cell.shape[:2]}")
    rows, cols = target.shape
    dw_min = float(device.dw_min)
    w = np.ascontiguousarray(cell[..., C_B_MIN], dtype=np.float32).copy()
    w_read = w.copy()
    pulses = np.zeros((rows, cols), dtype=np.int64)
    # the step each cell showed in its last burst, per direction (0: up, 1: down); NaN: not seen yet
    step_seen = np.full((2, rows, cols), np.nan, dtype=np.float64)
    last_n = np.zeros((rows, cols), dtype=np.int64)      # signed pulses of the previous burst
    done = np.zeros((rows, cols), dtype=bool)
    saturated = np.zeros((rows, cols), dtype=bool)
    tol = tolerance * dw_min
    iteration = 0
    while True:
        e = target - w
        crossed = (np.abs(last_n) == 1) & (np.sign(e) != np.sign(last_n)) & (e != 0)
        done |= (np.abs(e) <= tol) | crossed
        active = ~done & (pulses < max_pulses)
        if not active.any():
            break
        iteration += 1
        direction = (e <= 0).astype(np.int64)  # 0: up, 1: down
        seen = np.take_along_axis(step_seen, direction[None], 0)[0]
        step_est = np.where(np.isnan(seen), dw_min, seen)
        n = np.maximum(1, np.floor(0.8 * np.abs(e) / step_est)).astype(np.int64)
        n = np.minimum(n, max_pulses - pulses)
        counts = np.where(active, np.where(e > 0, n, -n), 0).astype(np.int64)
        before = w.copy()
        apply_pulse_counts(device, w, w_read, counts, cell, pulses, (seed, iteration, 0, 0, cols))
        moved = np.abs(w.astype(np.float64) - before)
        # stalled: the burst moved less than the tolerance and less than a tenth of what this
        # direction's last observed step promised -- pinned near a bound it cannot pass, or stuck
        promised = np.where(np.isnan(seen), 0.0, 0.1 * np.abs(counts) * seen)
        stalled = active & (moved < tol) & ((moved < promised) | (moved == 0))
        saturated |= stalled
        done |= stalled
        observed = np.where(active & (moved > 0), moved / np.maximum(np.abs(counts), 1), seen)
        np.put_along_axis(step_seen, direction[None], observed[None], 0)
        last_n = counts
    final_err = np.abs(target - w)
    stats = {
        "pulses_mean": float(pulses.mean()),
        "pulses_max": int(pulses.max()),
        "iterations": iteration,
        "not_converged": int(np.count_nonzero(~done)),
        "saturated": int(np.count_nonzero(saturated & (final_err > tol))),
    }
    return w.astype(np.float64), stats


# --------------------------------------------------------------------------- one array
def _reference_shape(array: CrossbarArray, placement: str) -> tuple[int, int]:
    return (array.rows, array.cols) if placement == "per_weight" else (1, array.cols)


def program_reference(array: CrossbarArray, config: ReferenceConfig, seed: int = 0) -> dict:
    """Program ``array``'s reference cells as ``config`` says; keep its effective weights.

    Reads ``W = array.get_weights()``, sets ``G_ref`` (see the module docstring for the
    measure / write / program flow), then re-programs ``G = W + G_ref``.  ``seed``
    derives the c2c noise of the measurement and of the reference writes; the
    reference population is ``sample_cells(device, shape, seed + config.seed_offset)``.

    Returns JSON-able statistics, lengths in weight units unless named ``*_steps``
    (in nominal ``dw_min``):

    * ``mode``, ``placement``, ``ideal``, ``cells`` (reference cells), ``clipped``
      (weights clipped when re-programmed);
    * ``target_mean``, ``target_std``: the values the references were asked to hold;
    * ``program_error_rms_steps``, ``program_error_max_steps``: ``G_ref - target``;
    * ``measure_pairs``: pulse pairs per cell of the measurement (0 when none);
    * ``measure_error_rms_steps``, ``measure_error_max_steps``: measured minus closed-form
      ``w*`` (only where a closed form exists);
    * ``attractor_rms``: RMS over weights of ``w*_ij - G_ref_ij``, where the effective
      weight decays to under random pulsing (``none``: RMS of ``w*`` itself), when a
      closed form exists;
    * ``pulses_mean``, ``pulses_max``, ``not_converged``, ``saturated`` of the writes.
    """
    if not isinstance(array, CrossbarArray):
        raise ValueError(f"program_reference: array must be a xbarsim.crossbar.CrossbarArray, got {type(array).__name__}")
    if not isinstance(config, ReferenceConfig):
        raise ValueError(f"program_reference: config must be a xbarsim.mapping.ReferenceConfig, got {config!r}")
    require_number("program_reference", "seed", seed, 0, 2**62, integer=True)
    device = array.device
    weights = array.get_weights()
    stats: dict[str, Any] = {"mode": config.mode, "placement": config.placement, "ideal": config.ideal,
                             "cells": 0, "measure_pairs": 0}
    pulsed = device.pulsed
    try:
        closed = symmetry_point(device, array.cell_params) if pulsed else None
    except ValueError:
        closed = None
    dw_min = float(device.dw_min) if pulsed else 1.0

    if config.mode == "none":
        array.set_reference(None)
        reference = None
    else:
        if not pulsed:
            raise ValueError(f"program_reference: mode {config.mode!r} needs a pulsed device, "
                             f"got {device.name} (IdealDevice has no symmetry point)")
        shape = _reference_shape(array, config.placement)
        # 1. the target each reference cell must hold
        if config.mode == "zero":
            per_cell = np.zeros((array.rows, array.cols))
        elif config.ideal:
            if closed is None:
                symmetry_point(device, array.cell_params)  # raises the model's own message
            per_cell = np.asarray(closed, dtype=np.float64)
        else:
            per_cell = measure_array_symmetry_point(array, config, seed)
            stats["measure_pairs"] = settling_pairs(array.cell_params, config) + config.n_average
            if closed is not None:
                err = (per_cell - closed) / dw_min
                stats["measure_error_rms_steps"] = float(np.sqrt(np.mean(err ** 2)))
                stats["measure_error_max_steps"] = float(np.max(np.abs(err)))
        target = per_cell if config.placement == "per_weight" else per_cell.mean(axis=0, keepdims=True)
        # 2. write the reference cells
        if config.ideal:
            written = target.copy()
        else:
            ref_cells = sample_cells(device, shape, int(seed) + config.seed_offset)
            written, pstats = program_cells(device, ref_cells, target, _derived_seed(seed, _TAG_PROGRAM),
                                            config.program_tolerance, config.max_program_pulses)
            stats.update(pstats)
        perr = (written - target) / dw_min
        stats["program_error_rms_steps"] = float(np.sqrt(np.mean(perr ** 2)))
        stats["program_error_max_steps"] = float(np.max(np.abs(perr)))
        stats["target_mean"] = float(target.mean())
        stats["target_std"] = float(target.std())
        stats["cells"] = int(written.size)
        reference = written.astype(np.float32) if config.placement == "per_weight" \
            else written[0].astype(np.float32)
        array.set_reference(reference)
    # 3. the weights, G = W + G_ref
    stats["clipped"] = int(array.set_weights(weights))
    if closed is not None:
        ref_full = 0.0 if reference is None else np.broadcast_to(reference, (array.rows, array.cols))
        stats["attractor_rms"] = float(np.sqrt(np.mean((np.asarray(closed) - ref_full) ** 2)))
    return stats


# --------------------------------------------------------------------------- a model
def _analog_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(getattr(m, "array", None), CrossbarArray)]


def apply_reference(model: nn.Module, config: ReferenceConfig, seed: int = 0) -> dict:
    """:func:`program_reference` on every analog layer of ``model``, in ``named_modules`` order.

    The k-th analog layer gets seed ``seed + k``.  Each layer keeps its effective
    weights (they are re-programmed as ``G = W + G_ref``), so call this right after
    :func:`xbarsim.mapping.convert_to_analog` (or after setting weights): both work.
    Returns ``{layer name: statistics}``.
    """
    if not isinstance(config, ReferenceConfig):
        raise ValueError(f"apply_reference: config must be a xbarsim.mapping.ReferenceConfig, got {config!r}")
    require_number("apply_reference", "seed", seed, 0, 2**62, integer=True)
    layers = _analog_layers(model)
    if not layers and config.mode != "none":
        raise ValueError("apply_reference: the model has no analog layers (convert it with convert_to_analog first)")
    out = {}
    for k, (name, layer) in enumerate(layers):
        stats = program_reference(layer.array, config, int(seed) + k)
        if stats["clipped"]:
            log.warning("apply_reference: %d of %d weights of %s clipped when re-programmed as G = W + G_ref",
                        stats["clipped"], layer.array.rows * layer.array.cols, name or "<model>")
        out[name or "<model>"] = stats
    return out
