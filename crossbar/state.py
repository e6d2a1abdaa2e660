r"""The array's state as one record, and the configs compiled to parameter records.

Every compiled kernel of the engine takes an :class:`ArrayState`, a parameter record
(:class:`ReadParams` or :class:`UpdateParams`) and the data, and advances the state's
random-stream positions and operation counters in place, so no caller writes
bookkeeping back afterwards.  The records are ``NamedTuple`` s: numba passes each as
one argument, and arrays in them share memory with the :class:`CrossbarArray` that owns
them.  The per-cell layout (``cell``) is the device's (:mod:`xbarsim.devices.layout`)
and may change.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .config import IOConfig, UpdateConfig

#: positions of the random streams in ``ArrayState.rng``: forward and backward reads count
#: read calls, ``update`` counts samples, ``program`` write-noise draws, ``decay`` decay calls
RNG_FORWARD, RNG_BACKWARD, RNG_UPDATE, RNG_PROGRAM, RNG_DECAY = range(5)
RNG_NAMES = ("forward", "backward", "update", "program", "decay")
#: the operation counters, in the order of ``ArrayState.counters``
COUNTER_NAMES = ("forward_mvm", "backward_mvm", "dac", "adc", "sense_amp", "updates", "bm_repeats", "pulse_total",
                 "cells_programmed", "program_calls")
(K_FORWARD_MVM, K_BACKWARD_MVM, K_DAC, K_ADC, K_SENSE_AMP, K_UPDATES, K_BM_REPEATS, K_PULSE_TOTAL,
 K_CELLS_PROGRAMMED, K_PROGRAM_CALLS) = range(len(COUNTER_NAMES))
#: stream offset between tiles
TILE_STREAMS = 16
NM_MODE = {"abs_max": 0, "none": 1, "constant": 2}


class ArrayState(NamedTuple):
    """Everything an array is: cells, bookkeeping and random-stream positions (shared memory).

    ``w``: stored weights (rows, cols) float32; ``w_read``: what reads see (``w`` itself
    unless the device has write noise); ``cell``: per-cell device parameters;
    ``g``: the device's model-wide scalars; ``pulses``: pulses per cell (int64);
    ``tiles``: ``(r0, r1, c0, c1)`` per tile; ``rng``: stream positions (``RNG_*``);
    ``counters``: operation counts (``COUNTER_NAMES``); ``tile_pulses``: pulses per tile of
    the last update; ``seed``: seeds every stream.
    """

    w: np.ndarray
    w_read: np.ndarray
    cell: np.ndarray
    g: np.ndarray
    pulses: np.ndarray
    tiles: np.ndarray
    rng: np.ndarray
    counters: np.ndarray
    tile_pulses: np.ndarray
    seed: int


class ReadParams(NamedTuple):
    """One direction's read periphery, compiled from an :class:`IOConfig` (see its docstring)."""

    nm_mode: int
    nm_thres: float
    inp_step: float
    inp_bound: float
    inp_noise: float
    out_noise: float
    out_step: float
    out_bound: float
    bound_management: bool
    bm_limit: float


def read_params(io: IOConfig, transposed: bool) -> ReadParams:
    """``io`` as the compiled read sees it; the transposed read never uses bound management."""
    return ReadParams(NM_MODE[io.noise_management], float(io.nm_thres), float(io.inp_step), float(io.inp_bound),
                      float(io.inp_noise), float(io.out_noise), float(io.out_step), float(io.out_bound),
                      not transposed and io.bound_management == "iterative", io.bm_limit)


class UpdateParams(NamedTuple):
    """The pulse-train update, compiled from an :class:`UpdateConfig` and the device's nominal ``dw_min``."""

    dw_min: float
    desired_bl: int
    update_management: bool
    update_bl_management: bool


def update_params(update: UpdateConfig, dw_min: float) -> UpdateParams:
    return UpdateParams(float(dw_min), int(update.desired_bl), bool(update.update_management),
                        bool(update.update_bl_management))


class Coincidences(NamedTuple):
    """A tile's drawn bit streams (:func:`xbarsim.crossbar.kernels.coincidence_lists`)."""

    x: np.ndarray
    d: np.ndarray
    dbits: np.ndarray
    slot_ptr: np.ndarray
    slot_col: np.ndarray


class TileAt(NamedTuple):
    """Where a tile's update lands: its origin, its stream offset and the first sample's step."""

    r0: int
    c0: int
    stream_offset: int
    step0: int


class LoopView(NamedTuple):
    """What a compiled training loop takes of one array (``CrossbarArray.loop_state``).

    ``read`` holds the weights reads see: ``w_read`` itself, or ``w_read - reference``
    (a buffer the loop refreshes after each update) when ``reference`` is not empty.
    """

    state: ArrayState
    read: np.ndarray
    reference: np.ndarray
    fwd: ReadParams
    bwd: ReadParams
    update: UpdateParams
    step: object
