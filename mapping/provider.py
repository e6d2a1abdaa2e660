r"""Array providers: where a layer's weights live (aihwkit's ``tile_module_class`` idea).

A layer asks the provider in its :class:`xbarsim.mapping.AnalogConfig` for the object
that holds its ``(rows, cols) = (outputs, inputs)`` matrix:

``None`` / :class:`OwnArray` (the default)
    a fresh :class:`xbarsim.crossbar.CrossbarArray` per layer, exactly as before.
:class:`ArrayBank`
    ``n_arrays`` physical arrays of ``array_rows x array_cols`` cells shared by every
    layer whose config names this bank.  A layer gets a :class:`BankedMatrix`: its
    matrix is cut into blocks of the physical array size (zero-padded at the edges);
    the logical weights are kept in digital (off-chip) memory and a block is
    programmed into a physical array when a read needs it and it is not resident.
    The bank evicts the least recently used array, so when the blocks of all
    layers do not fit (``n_blocks > n_arrays``) a cyclic inference reprograms
    every block on every pass: the conventional mapping with reprogramming.
    Every programming pass is a full :meth:`CrossbarArray.set_weights` and shows
    up in the arrays' ``cells_programmed`` counter.

Tiki-Taka, :class:`TransferArrays`
    a :class:`xbarsim.crossbar.TransferCompound` per layer: the layer's device, periphery and
    update config build the fast array A (and, unless ``slow_device`` is given, the slow
    array C); ``transfer`` (TTv2 or c-TTv2) says how A is transferred into C.  The layer's
    ``io`` reads C; A is read through ``transfer.transfer_forward``.

A :class:`BankedMatrix` is inference-only: its ``backward`` and ``update``
raise ``NotImplementedError`` (train with one array per layer, then load the
weights with ``set_weights``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

import numpy as np

from xbarsim.crossbar import CrossbarArray, IOConfig, TransferCompound, TransferConfig
from xbarsim.crossbar.compound_config import transfer_config_from_dict
from xbarsim.devices import DeviceConfig, IdealDevice
from xbarsim.devices.validation import require_number

__all__ = ["ArrayProvider", "OwnArray", "TransferArrays", "ArrayBank", "BankedMatrix", "LRUPlacement",
           "provider_from_dict"]

_COUNTER_KEYS = ("forward_mvm", "backward_mvm", "dac", "adc", "updates", "bm_repeats", "pulse_total",
                 "cells_programmed", "program_calls")


class LRUPlacement:
    """Which of ``n_arrays`` arrays holds which block: first free array, else evict the least recently used.

    ``access(key)`` returns ``(array index, programmed)``; ``programmed`` is True when
    the block had to be written.  :class:`ArrayBank` places blocks with it, and the
    schedules of :mod:`xbarsim.mapping.basis_schedule` replay the same policy, so a
    schedule and a simulated run agree write for write.
    """

    def __init__(self, n_arrays: int) -> None:
        self.n_arrays = int(n_arrays)
        self._resident: OrderedDict[int, Hashable] = OrderedDict()  # array index -> block key, LRU first
        self._where: dict[Hashable, int] = {}

    def where(self, key: Hashable) -> int | None:
        return self._where.get(key)

    def access(self, key: Hashable) -> tuple[int, bool]:
        k = self._where.get(key)
        if k is not None:
            self._resident.move_to_end(k)
            return k, False
        if len(self._resident) < self.n_arrays:
            k = next(i for i in range(self.n_arrays) if i not in self._resident)
        else:
            k, old = self._resident.popitem(last=False)
            del self._where[old]
        self._resident[k] = key
        self._where[key] = k
        return k, True

    def forget(self, key: Hashable) -> None:
        k = self._where.pop(key, None)
        if k is not None:
            del self._resident[k]


class ArrayProvider:
    """Gives a layer the object that stores its weight matrix (see module docstring)."""

    kind = "abstract"

    def array_for(self, rows: int, cols: int, seed: int, array_kwargs: dict) -> Any:
        """The storage of a ``rows x cols`` matrix; ``array_kwargs`` as :meth:`AnalogConfig.array_kwargs`."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"kind": self.kind}


class OwnArray(ArrayProvider):
    """One :class:`CrossbarArray` per layer, built from the layer's config (the default)."""

    kind = "own"

    def array_for(self, rows: int, cols: int, seed: int, array_kwargs: dict) -> CrossbarArray:
        return CrossbarArray(rows, cols, seed=seed, **array_kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnArray)

    def __hash__(self) -> int:
        return hash(self.kind)

    def __repr__(self) -> str:
        return "OwnArray()"


class TransferArrays(ArrayProvider):
    """One :class:`TransferCompound` (Tiki-Taka: fast A, slow C, buffer H) per layer.

    Args:
        transfer: :class:`xbarsim.crossbar.BufferedTransferConfig` (TTv2) or
            :class:`xbarsim.crossbar.ChoppedTransferConfig` (c-TTv2).
        slow_device: cell model of C (default: the layer's ``device``, which A always uses).
    """

    kind = "transfer"

    def __init__(self, transfer: TransferConfig, slow_device: DeviceConfig | None = None) -> None:
        if not isinstance(transfer, TransferConfig) or type(transfer) is TransferConfig:
            raise ValueError(f"TransferArrays.transfer must be a Buffered-, Chopped- or DynamicTransferConfig, "
                             f"got {transfer!r}")
        if slow_device is not None and not isinstance(slow_device, DeviceConfig):
            raise ValueError(f"TransferArrays.slow_device must be None or a DeviceConfig, got {slow_device!r}")
        self.transfer, self.slow_device = transfer, slow_device

    def array_for(self, rows: int, cols: int, seed: int, array_kwargs: dict) -> TransferCompound:
        return TransferCompound(rows, cols, self.transfer, slow_device=self.slow_device, seed=seed, **array_kwargs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "transfer": self.transfer.to_dict(),
                "slow_device": None if self.slow_device is None else self.slow_device.to_dict()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TransferArrays) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.kind, self.transfer))

    def __repr__(self) -> str:
        return f"TransferArrays({self.transfer!r}, slow_device={self.slow_device!r})"


class ArrayBank(ArrayProvider):
    """``n_arrays`` physical crossbars of ``array_rows x array_cols`` shared by several layers.

    Args:
        n_arrays: number of physical arrays K on the chip.
        array_rows: outputs (bit lines) per array, ``CrossbarArray.rows``.
        array_cols: inputs (word lines) per array, ``CrossbarArray.cols``.
        device: cell model of every array (default :class:`IdealDevice`: exact programming).
        io: read periphery of every array (default ``IOConfig()``).
        seed: array ``k`` gets seed ``seed + k``.

    Blocks are identified by hashable keys; :meth:`load` programs a block unless it
    is resident and returns the array holding it (least-recently-used eviction).
    The bank itself is a mutable runtime object, not a config: ``to_dict`` describes
    it and :func:`provider_from_dict` builds a fresh, empty bank of the same shape.
    """

    kind = "bank"

    def __init__(self, n_arrays: int, array_rows: int, array_cols: int, device: DeviceConfig | None = None,
                 io: IOConfig | None = None, seed: int = 0) -> None:
        require_number("ArrayBank", "n_arrays", n_arrays, 1, None, integer=True)
        require_number("ArrayBank", "array_rows", array_rows, 1, None, integer=True)
        require_number("ArrayBank", "array_cols", array_cols, 1, None, integer=True)
        require_number("ArrayBank", "seed", seed, 0, 2**62, integer=True)
        self.n_arrays, self.array_rows, self.array_cols = int(n_arrays), int(array_rows), int(array_cols)
        self.device = IdealDevice() if device is None else device
        self.io = IOConfig() if io is None else io
        self.seed = int(seed)
        self.arrays = [CrossbarArray(self.array_rows, self.array_cols, device=self.device, io=self.io,
                                     seed=self.seed + k, tile_rows=self.array_rows, tile_cols=self.array_cols)
                       for k in range(self.n_arrays)]
        self.placement = LRUPlacement(self.n_arrays)
        self.last_load_programmed = False  # whether the latest load() had to program its block
        self._n_matrices = 0
        self.loads: list[tuple[Hashable, int]] = []  # (block key, array index) of every programming pass

    @property
    def capacity(self) -> int:
        """Cells on the chip, ``n_arrays * array_rows * array_cols``."""
        return self.n_arrays * self.array_rows * self.array_cols

    def new_matrix_id(self) -> int:
        self._n_matrices += 1
        return self._n_matrices - 1

    def resident(self, key: Hashable) -> int | None:
        """Index of the array holding block ``key``, or ``None``."""
        return self.placement.where(key)

    def load(self, key: Hashable, block: np.ndarray) -> CrossbarArray:
        """The array holding block ``key``; programs ``block`` (zero-padded) first if it is not resident."""
        k, programmed = self.placement.access(key)
        self.last_load_programmed = programmed
        if not programmed:
            return self.arrays[k]
        padded = np.zeros((self.array_rows, self.array_cols), dtype=np.float32)
        padded[:block.shape[0], :block.shape[1]] = block
        self.arrays[k].set_weights(padded)
        self.loads.append((key, k))
        return self.arrays[k]

    def invalidate(self, keys) -> None:
        """Forget blocks whose logical weights changed (they are programmed again on their next use)."""
        for key in keys:
            self.placement.forget(key)

    def counters(self) -> dict:
        """The arrays' counters summed (``pulses`` left out)."""
        out = dict.fromkeys(_COUNTER_KEYS, 0)
        for arr in self.arrays:
            c = arr.counters
            for key in _COUNTER_KEYS:
                out[key] += int(c.get(key, 0))
        return out

    def reset_counters(self) -> None:
        for arr in self.arrays:
            arr.reset_counters()
        self.loads.clear()

    def array_for(self, rows: int, cols: int, seed: int, array_kwargs: dict) -> "BankedMatrix":
        return BankedMatrix(self, rows, cols)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n_arrays": self.n_arrays, "array_rows": self.array_rows,
                "array_cols": self.array_cols, "device": self.device.to_dict(), "io": self.io.to_dict(),
                "seed": self.seed}

    def __repr__(self) -> str:
        return (f"ArrayBank(n_arrays={self.n_arrays}, array={self.array_rows}x{self.array_cols}, "
                f"device={self.device.name})")


def provider_from_dict(d: dict | None) -> ArrayProvider | None:
    """Inverse of ``to_dict`` (a bank comes back fresh and empty)."""
    if d is None:
        return None
    kind = d.get("kind")
    if kind == "own":
        return OwnArray()
    if kind == "bank":
        return ArrayBank(d["n_arrays"], d["array_rows"], d["array_cols"], device=DeviceConfig.from_dict(d["device"]),
                         io=IOConfig.from_dict(d["io"]), seed=d["seed"])
    if kind == "transfer":
        slow = d.get("slow_device")
        return TransferArrays(transfer_config_from_dict(d["transfer"]),
                              slow_device=None if slow is None else DeviceConfig.from_dict(slow))
    raise ValueError(f"array_provider kind must be 'own', 'transfer' or 'bank', got {kind!r}")


class BankedMatrix:
    """A layer's ``rows x cols`` matrix stored as blocks in an :class:`ArrayBank` (inference only).

    ``forward(x)`` reads every block through the array that holds it (programming it
    first when it is not resident) and sums the partial results digitally, like a
    tiled :class:`CrossbarArray`.  ``counters`` are this matrix's share of the bank's
    array counters.
    """

    def __init__(self, bank: ArrayBank, rows: int, cols: int) -> None:
        self.bank, self.rows, self.cols = bank, int(rows), int(cols)
        self.matrix_id = bank.new_matrix_id()
        br, bc = bank.array_rows, bank.array_cols
        self.blocks = [(r0, min(r0 + br, self.rows), c0, min(c0 + bc, self.cols))
                       for r0 in range(0, self.rows, br) for c0 in range(0, self.cols, bc)]
        self._w = np.zeros((self.rows, self.cols), dtype=np.float32)
        self._counts = dict.fromkeys(_COUNTER_KEYS, 0)

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    def block_keys(self) -> list:
        return [(self.matrix_id, b) for b in range(len(self.blocks))]

    def set_weights(self, weights: Any) -> int:
        """Store the logical weights (digital memory); blocks are programmed when read.  Returns 0 (no clipping)."""
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (self.rows, self.cols) or not np.all(np.isfinite(w)):
            raise ValueError(f"BankedMatrix: weights must be finite with shape {(self.rows, self.cols)}, "
                             f"got {w.shape}")
        self._w[...] = w
        self.bank.invalidate(self.block_keys())
        return 0

    def get_weights(self) -> np.ndarray:
        return self._w.copy()

    def forward(self, x: Any) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.cols:
            raise ValueError(f"BankedMatrix: x must have shape (batch, {self.cols}), got {x.shape}")
        out = np.zeros((x.shape[0], self.rows), dtype=np.float32)
        xin = np.zeros((x.shape[0], self.bank.array_cols), dtype=np.float32)
        for b, (r0, r1, c0, c1) in enumerate(self.blocks):
            arr = self.bank.load((self.matrix_id, b), self._w[r0:r1, c0:c1])
            if self.bank.last_load_programmed:
                self._counts["cells_programmed"] += arr.rows * arr.cols
                self._counts["program_calls"] += 1
            before = arr.counters  # only the array holding this block changes during its read
            xin[:, :c1 - c0] = x[:, c0:c1]
            xin[:, c1 - c0:] = 0.0
            out[:, r0:r1] += arr.forward(xin)[:, :r1 - r0]
            after = arr.counters
            for key in ("forward_mvm", "dac", "adc", "bm_repeats"):
                self._counts[key] += after[key] - before[key]
        return out

    def backward(self, d: Any) -> np.ndarray:
        raise NotImplementedError("BankedMatrix is inference-only: train the layer with one array per layer "
                                  "(array_provider=None), then program the weights into the bank")

    def update(self, x: Any, d: Any, lr: float) -> int:
        raise NotImplementedError("BankedMatrix is inference-only: train the layer with one array per layer "
                                  "(array_provider=None), then program the weights into the bank")

    @property
    def counters(self) -> dict:
        return dict(self._counts)

    def reset_counters(self) -> None:
        self._counts = dict.fromkeys(_COUNTER_KEYS, 0)

    def state_dict(self) -> dict:
        return {"config": {"rows": self.rows, "cols": self.cols, "bank": self.bank.to_dict()},
                "weights": self._w.copy(), "counters": dict(self._counts)}

    def load_state_dict(self, state: dict) -> None:
        self.set_weights(state["weights"])
        self._counts.update({k: int(v) for k, v in state["counters"].items()})

    def __repr__(self) -> str:
        return f"BankedMatrix({self.rows}x{self.cols}, blocks={self.n_blocks}, bank={self.bank!r})"

