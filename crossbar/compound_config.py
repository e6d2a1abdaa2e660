r"""Configs of the Tiki-Taka family: buffered (TTv2), chopped (c-TTv2) and dynamic (AGAD) transfer compounds.

Field names and defaults are aihwkit 1.2.0's (``simulator/configs/compounds.py``:
``BufferedTransferCompound``, ``ChoppedTransferCompound``, ``DynamicTransferCompound``); the
semantics are those of its C++ (``rpu_transfer_device.cpp``, ``rpu_buffered_transfer_device.cpp``,
``rpu_chopped_transfer_device.cpp``, ``rpu_dynamic_transfer_device.cpp``).  :class:`xbarsim.crossbar.TransferCompound` runs them;
its docstring has the equations.

A field aihwkit has but xbarsim does not implement is still a field, so a carried-over
config keeps its shape, but any value other than the default raises ``ValueError``
naming the field (nothing is silently ignored).  Not implemented:

* ``with_reset_prob > 0`` (aihwkit's buffered device ignores it; the chopped one refuses it);
* a negative ``transfer_every`` (aihwkit's automatic period);
* ``step != 1`` (xbarsim writes exactly ``n`` pulses per buffer crossing, see below);
* a ``transfer_update`` with ``update_management`` or ``update_bl_management``: only its
  ``desired_bl`` (the most pulses one transfer writes into a cell) is used.

Deviation (deterministic transfer write): aihwkit writes the ``n`` pulses of a buffer
crossing through its stochastic pulse-train updater, with ``transfer_update``; with the
default ``desired_bl = 1`` and both managements off every probability is 1, so it writes
exactly ``n`` (= ±1) pulses, as xbarsim does for every ``desired_bl``.  For
``desired_bl = B > 1`` aihwkit's CPU path fires each of the ``B`` slots with probability
``1/sqrt(B)`` on the column side and ``min(|n|/sqrt(B), 1)`` on the row side, so it writes ``|n|``
pulses on average only while ``|n| <= sqrt(B)``, and ``sqrt(B)`` on average above.

Dynamic transfer (AGAD, ``DynamicTransferCompound``) is :class:`DynamicTransferConfig`, without
aihwkit's C++-only ``experimental_fast_lr_feedback`` (off by default, not exposed in Python).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from xbarsim.devices.validation import Serialisable, require_bool, require_number

from .config import IOConfig, UpdateConfig

__all__ = ["TransferConfig", "BufferedTransferConfig", "ChoppedTransferConfig", "DynamicTransferConfig",
           "transfer_config_from_dict"]


def _transfer_io() -> IOConfig:
    """aihwkit's effective transfer read: ``IOParameters()`` with noise and bound management forced off."""
    return IOConfig(noise_management="none", bound_management="none")


def _transfer_update() -> UpdateConfig:
    """aihwkit's ``transfer_update`` default: one pulse at most, no management."""
    return UpdateConfig(desired_bl=1, update_management=False, update_bl_management=False)


@dataclass(frozen=True)
class TransferConfig(Serialisable):
    """Fields shared by the transfer compounds (aihwkit ``TransferCompound``); use a subclass."""

    kind: ClassVar[str] = "abstract"

    #: visible weight ``W = gamma A + C`` (0: only the slow array C is seen)
    gamma: float = 0.0
    #: a transfer every ``transfer_every`` samples (mat-vecs), or batches if ``units_in_mbatch``; 0: never
    transfer_every: float = 1.0
    #: count ``transfer_every`` in batches (``ceil(transfer_every * batch)`` samples) instead of samples
    units_in_mbatch: bool = True
    #: columns read and transferred per transfer event (consecutive, wrapping)
    n_reads_per_transfer: int = 1
    #: transfer columns (one-hot forward reads of A), or rows (one-hot transposed reads)
    transfer_columns: bool = True
    #: probability of resetting a transferred column of A (not implemented: must be 0)
    with_reset_prob: float = 0.0
    #: start each transfer at a uniformly drawn line instead of the next one (TTv2 only, as aihwkit)
    random_selection: bool = False
    #: learning rate of the fast array's gradient update (``<= 0``: the optimizer's lr)
    fast_lr: float = 1.0
    #: learning rate of the transfer (scaled by the optimizer's lr if ``scale_transfer_lr``)
    transfer_lr: float = 1.0
    #: multiply ``transfer_lr`` by the optimizer's current lr
    scale_transfer_lr: bool = True
    #: multiply ``fast_lr`` by the optimizer's current lr
    scale_fast_lr: bool = True
    #: pulses per buffer step (only 1 is implemented)
    step: float = 1.0
    #: fraction of the buffer kept after it fired
    momentum: float = 0.1
    #: after firing, keep ``momentum * H`` (True) or subtract ``(1 - momentum) n`` (False)
    forget_buffer: bool = True
    #: read periphery of A: transfer reads and A's share of the visible read (noise/bound management off)
    transfer_forward: IOConfig = field(default_factory=_transfer_io)
    #: only ``desired_bl`` is used: the most pulses one transfer writes into one cell of C
    transfer_update: UpdateConfig = field(default_factory=_transfer_update)

    def __post_init__(self) -> None:
        n = type(self).__name__
        require_number(n, "gamma", self.gamma, 0.0, None)
        require_number(n, "transfer_every", self.transfer_every, 0.0, None)
        require_bool(n, "units_in_mbatch", self.units_in_mbatch)
        require_number(n, "n_reads_per_transfer", self.n_reads_per_transfer, 1, None, integer=True)
        require_bool(n, "transfer_columns", self.transfer_columns)
        require_number(n, "with_reset_prob", self.with_reset_prob, 0.0, 1.0)
        require_bool(n, "random_selection", self.random_selection)
        require_number(n, "fast_lr", self.fast_lr)
        require_number(n, "transfer_lr", self.transfer_lr, 0.0, None)
        require_bool(n, "scale_transfer_lr", self.scale_transfer_lr)
        require_bool(n, "scale_fast_lr", self.scale_fast_lr)
        require_number(n, "step", self.step, 0.0, None, lo_open=True)
        require_number(n, "momentum", self.momentum, 0.0, 1.0)
        require_bool(n, "forget_buffer", self.forget_buffer)
        if not isinstance(self.transfer_forward, IOConfig):
            raise ValueError(f"{n}.transfer_forward must be an IOConfig, got {self.transfer_forward!r}")
        if not isinstance(self.transfer_update, UpdateConfig):
            raise ValueError(f"{n}.transfer_update must be an UpdateConfig, got {self.transfer_update!r}")
        io = self.transfer_forward
        if not io.perfect and (io.noise_management != "none" or io.bound_management != "none"):
            raise ValueError(f"{n}.transfer_forward must have noise_management='none' and bound_management='none' "
                             f"(aihwkit turns both off for transfer reads), got {io.noise_management!r}, "
                             f"{io.bound_management!r}")
        up = self.transfer_update
        if up.update_management or up.update_bl_management:
            raise ValueError(f"{n}.transfer_update: update_management and update_bl_management must be False "
                             f"(xbarsim writes transfers as exact pulse counts; only desired_bl is used)")
        for fname, allowed in (("with_reset_prob", 0.0), ("step", 1.0)):
            if getattr(self, fname) != allowed:
                raise ValueError(f"{n}.{fname} = {getattr(self, fname)!r} is not implemented in xbarsim; "
                                 f"allowed: {allowed!r}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["kind"] = self.kind
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"{cls.__name__}.from_dict: kind {kind!r} is not {cls.kind!r}")
        cls.check_keys(d)
        for key, sub in (("transfer_forward", IOConfig), ("transfer_update", UpdateConfig)):
            if isinstance(d.get(key), dict):
                d[key] = sub.from_dict(d[key])
        return cls(**d)


@dataclass(frozen=True)
class BufferedTransferConfig(TransferConfig):
    r"""Tiki-Taka v2 (Gokmen, *Front. Artif. Intell.* 4:699148, 2021; aihwkit ``BufferedTransferCompound``).

    The buffer fires when ``|H| >= thres_scale * dw_min(C)`` in weight units (xbarsim keeps
    ``H`` in units of that threshold).
    """

    kind: ClassVar[str] = "buffered"

    #: buffer threshold in units of the slow device's ``dw_min``
    thres_scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_number(type(self).__name__, "thres_scale", self.thres_scale, 0.0, None, lo_open=True)


@dataclass(frozen=True)
class ChoppedTransferConfig(TransferConfig):
    r"""Chopped Tiki-Taka v2, c-TTv2 (Rasch et al., *Nat. Commun.* 15:5265, 2024; aihwkit
    ``ChoppedTransferCompound``).

    As :class:`BufferedTransferConfig`, with random sign changes (choppers) of the fast
    array's updates that the transfer read undoes; the buffer is dimensionless (fires at
    ``|H| >= 1``) and its granularity refers to the *fast* device's ``dw_min``.  aihwkit
    allows only ``n_reads_per_transfer = 1`` here.
    """

    kind: ClassVar[str] = "chopped"

    units_in_mbatch: bool = False
    scale_fast_lr: bool = False
    momentum: float = 0.0
    #: probability that a column's input chopper flips after that column was read
    in_chop_prob: float = 0.1
    #: random flips (True) or regular ones, every ``max(ceil(1/in_chop_prob), 2)`` full passes
    in_chop_random: bool = True
    #: probability that each output chopper flips after a full pass over the columns
    out_chop_prob: float = 0.0
    #: buffer granularity in units of the fast device's ``dw_min`` (``<= 0``: 1)
    buffer_granularity: float = 1.0
    #: if > 0, granularity ``*= auto_granularity / (cols * transfer_every)``
    auto_granularity: float = 0.0
    #: do not accumulate: every read starts from an empty buffer (Tiki-Taka v1 with gamma = 0)
    no_buffer: bool = False
    #: fast lr ``fast_lr * desired_bl * dw_min(A) / (m_x m_d)`` with running maxima ``m_x``, ``m_d``
    auto_scale: bool = False
    #: momentum of the running maxima of ``auto_scale`` (per batch; per sample ``(1 - m)/batch``)
    auto_momentum: float = 0.99
    #: divide the transfer rate by the fast lr and scale the granularity by ``dw_min(C)/dw_min(A)``
    correct_gradient_magnitudes: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        n = type(self).__name__
        require_number(n, "in_chop_prob", self.in_chop_prob, 0.0, 1.0)
        require_bool(n, "in_chop_random", self.in_chop_random)
        require_number(n, "out_chop_prob", self.out_chop_prob, 0.0, 1.0)
        require_number(n, "buffer_granularity", self.buffer_granularity)
        require_number(n, "auto_granularity", self.auto_granularity, 0.0, None)
        require_bool(n, "no_buffer", self.no_buffer)
        require_bool(n, "auto_scale", self.auto_scale)
        require_number(n, "auto_momentum", self.auto_momentum, 0.0, 1.0)
        require_bool(n, "correct_gradient_magnitudes", self.correct_gradient_magnitudes)
        if self.n_reads_per_transfer != 1:
            raise ValueError(f"{n}.n_reads_per_transfer = {self.n_reads_per_transfer!r}: the chopped transfer "
                             f"reads exactly one column per event (as aihwkit); allowed: 1")
        if self.random_selection:
            raise ValueError(f"{n}.random_selection = True: the chopped transfer is sequential (as aihwkit); "
                             f"allowed: False")


@dataclass(frozen=True)
class DynamicTransferConfig(ChoppedTransferConfig):
    r"""AGAD, dynamic transfer (Rasch et al., *Nat. Commun.* 15:5265, 2024; aihwkit ``DynamicTransferCompound``).

    As :class:`ChoppedTransferConfig`, but the buffer accumulates the read *minus the mean of
    the previous chopper period*: per cell a running mean
    ``m <- (1 - beta) m + beta v`` with ``beta = min(tail_weightening / P, 1)`` over the reads
    ``v``, frozen into the reference ``mu`` when the column's chopper switched before this read,
    and ``u = S (v - mu) eta_T / g``.  The input chopper of a column switches every ``P =
    max(ceil(1/in_chop_prob), 2)`` full passes (``P = 2`` if ``in_chop_prob = 0``), and also with
    probability ``in_chop_prob`` after each read if ``in_chop_random``.  Nothing is written into C
    during the first ``P`` passes.  Output choppers never switch (aihwkit's dynamic device never
    flips them), so ``out_chop_prob`` must be 0; ``no_buffer`` is not supported (aihwkit ignores it).
    """

    kind: ClassVar[str] = "dynamic"

    in_chop_random: bool = False
    #: weight of the recent reads in the running mean (``beta = min(tail_weightening / P, 1)``)
    tail_weightening: float = 5.0
    #: without ``forget_buffer``: clip a buffer that fired to ``±buffer_cap * desired_bl`` (0: no cap)
    buffer_cap: float = 0.0
    #: divide the transfer rate by ``min(p % P + 1, 1/dw_min(A))``, ``p`` counting full passes
    experimental_correct_accumulation: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        n = type(self).__name__
        require_number(n, "tail_weightening", self.tail_weightening, 0.0, None)
        require_number(n, "buffer_cap", self.buffer_cap, 0.0, None)
        require_bool(n, "experimental_correct_accumulation", self.experimental_correct_accumulation)
        for fname, allowed in (("out_chop_prob", 0.0), ("no_buffer", False)):
            if getattr(self, fname) != allowed:
                raise ValueError(f"{n}.{fname} = {getattr(self, fname)!r} is not supported by the dynamic transfer "
                                 f"(aihwkit ignores it); allowed: {allowed!r}")

    @property
    def chop_period(self) -> int:
        """``P``: full passes per regular chopper period."""
        if self.in_chop_prob > 0:
            return max(int(np.ceil(np.float32(1.0) / np.float32(self.in_chop_prob))), 2)
        return 2


_KINDS = {c.kind: c for c in (BufferedTransferConfig, ChoppedTransferConfig, DynamicTransferConfig)}


def transfer_config_from_dict(d: dict) -> TransferConfig:
    """Inverse of ``to_dict`` for any transfer config (dispatch on ``kind``)."""
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"transfer config kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind].from_dict(d)
