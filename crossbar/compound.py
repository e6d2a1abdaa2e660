r"""``TransferCompound``: one analog weight from a fast array A, a slow array C and a digital buffer H.

The Tiki-Taka family (Gokmen & Haensch, *Front. Neurosci.* 14:103, 2020; TTv2: Gokmen,
*Front. Artif. Intell.* 4:699148, 2021; c-TTv2: Rasch et al., *Nat. Commun.* 15:5265,
2024), with aihwkit 1.2.0's names and C++ semantics (``rpu_transfer_device.cpp``,
``rpu_buffered_transfer_device.cpp``, ``rpu_chopped_transfer_device.cpp``).  Both arrays
are :class:`CrossbarArray` s of shape ``(rows, cols) = (outputs, inputs)``.

**Visible weight.**  ``W = gamma S A + C`` with the chopper signs
``S_ij = c^{out}_i c^{in}_j`` (``S = 1`` without choppers; with row transfers,
``transfer_columns=False``, ``S_ij = c^{in}_i c^{out}_j``).  ``gamma = 0``: reads see C only.

**Update** ``update(x, d, lr)`` with the optimizer's ``lr``, sample by sample ``b``:

1. fast lr ``eta_A``: ``fast_lr * lr`` (``scale_fast_lr``) or ``fast_lr``; the optimizer's ``lr``
   if ``fast_lr <= 0``; with ``auto_scale`` (chopped only)
   ``eta_A = fast_lr * desired_bl * dw_min(A) / (m_x m_d)`` (``* lr`` if ``scale_fast_lr``),
   where ``m_x``, ``m_d`` are running means of ``max|x_b|``, ``max|d_b|``:
   ``m <- (1 - tau) m + tau max|.|``, ``tau = (1 - auto_momentum) / batch`` (first value taken as is);
2. the pulsed update of A with ``E[dA] = -eta_A (c^{out} d_b)(c^{in} x_b)^T``: the choppers flip the
   sign of A's updates (aihwkit flips the coincidences' signs; xbarsim flips ``x`` and ``d``, which
   leaves every probability, hence every random draw, unchanged);
3. the sample counter ``k`` advances; if ``k % T == 0`` a transfer follows, with ``T`` =
   ``ceil(transfer_every * batch)`` (``units_in_mbatch``) or ``round(transfer_every)`` samples.

**Transfer** of ``min(n_reads_per_transfer, cols)`` columns ``j`` (consecutive, from where the last one
stopped or, with ``random_selection`` (TTv2 only), from a uniformly drawn column, wrapping): transfer rate ``eta_T = transfer_lr (* lr if scale_transfer_lr) (* gamma if gamma > 0)``;
(with ``transfer_columns=False`` read "row" for "column" throughout, ``A^T e_j`` for ``A e_j``,
``rows`` for ``cols``):

1. read ``v = A e_j`` through A's periphery (``transfer_forward``; one-hot input, aihwkit's
   ``transfer_columns=True``: a *column* of A);
2. scale: buffered (TTv2) ``u = v eta_T / (thres_scale dw_min(C))``; chopped (c-TTv2)
   ``u_i = S_ij v_i eta_T / g`` with ``g = buffer_granularity dw_min(A)``
   (``* auto_granularity / (cols transfer_every)`` if ``auto_granularity > 0``); with
   ``correct_gradient_magnitudes`` ``g *= dw_min(C)/dw_min(A)`` and ``u /= eta_A``;
3. accumulate ``u`` into ``H[:, j]`` and fire ``n`` whole pulses into ``C[:, j]``
   (:func:`xbarsim.crossbar.transfer_buffer.accumulate_and_fire`), written with
   :meth:`CrossbarArray.apply_pulses`;
4. chopped only: ``c^{in}_j`` flips with probability ``in_chop_prob`` (``in_chop_random``), or
   regularly when ``p % max(ceil(1/in_chop_prob), 2) + 1`` equals that period, ``p`` counting
   full passes; after column ``cols - 1`` each ``c^{out}_i`` flips with probability
   ``out_chop_prob`` and ``p`` advances.

Dynamic (AGAD, :class:`DynamicTransferConfig`) replaces 2. and 4.: the buffer gets
``u_i = S_ij (v_i - mu_ij) eta_T / g`` with ``mu`` the running mean of the previous chopper
period (see its docstring), C is written only after ``P`` passes, and the input chopper switches
every ``P`` passes (plus randomly with ``in_chop_random``).

With ``eta_T = 0`` nothing is read and no chopper flips (aihwkit returns early), but the
column pointer advances.

**Deviations from aihwkit** (each said where it matters):

* With ``gamma > 0`` xbarsim reads A (through ``transfer_forward``) and C (through ``io``) as two
  physical arrays and adds the digital results; aihwkit reads the reduced matrix ``gamma A + C``
  through the tile's periphery once.  For the de-chopping of A in ``W``, aihwkit's docs and
  code disagree with each other: the Python docstring says ``W = gamma A + C``; the C++
  comment of ``ChoppedTransferRPUDevice::reduceToWeights`` says ``gamma (c^{out} c^{in T}) A + C``,
  but its code indexes the row-major ``(d, x)`` weights as column-major
  (``d_idx = idx % d_size``, ``x_idx = idx / d_size``), so it pairs the choppers of another
  element (checked against aihwkit 1.2.0: with gamma = 1 and column 1's input chopper flipped,
  element (0, 1) came out as ``A + C``, not ``C - A``).  xbarsim uses ``S_ij = c^{out}_i c^{in}_j``,
  the sign that the update and the transfer (both of which match aihwkit) use.  With the
  default ``gamma = 0`` none of this matters.
* ``set_weights(W)`` programs ``C = W`` and ``A = 0`` and restarts the sample counter and the
  column pointer, as aihwkit's ``onSetWeights``; like aihwkit it keeps the buffer, the choppers
  and the running means.
* Transfers write exactly ``n`` pulses (see :mod:`xbarsim.crossbar.compound_config`).
* Decay and diffusion are not implemented for compounds (devices with ``lifetime`` or
  ``diffusion`` are refused): the update is split at transfers, and the arrays would decay once
  per piece instead of once per batch.
* Random chopper flips use numpy's generator seeded by ``(seed, draw counter)``, a pure
  function of the counter, so a checkpoint resumes bit-identically.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from xbarsim.devices import DeviceConfig, SoftBounds
from xbarsim.devices.validation import require_number

from .array import CrossbarArray
from .compound_config import ChoppedTransferConfig, DynamicTransferConfig, TransferConfig, transfer_config_from_dict
from .config import IOConfig, UpdateConfig
from .transfer_buffer import accumulate_and_fire

__all__ = ["TransferCompound"]

_CHOP_STREAM = 0x7C0F  # entropy word of the chopper draws


def _array_seeds(seed: int) -> tuple[int, int]:
    """Seeds of A and C: ``3 s + 1`` and ``3 s + 2`` (mod 2^63), distinct across all compound seeds ``s``."""
    return (3 * seed + 1) % (2**63), (3 * seed + 2) % (2**63)


class TransferCompound:
    """A Tiki-Taka weight: fast array ``fast`` (A), slow array ``slow`` (C), buffer ``H`` (see module docstring).

    Args:
        rows, cols: matrix shape ``(outputs, inputs)``.
        transfer: :class:`BufferedTransferConfig` (TTv2), :class:`ChoppedTransferConfig` (c-TTv2) or
            :class:`DynamicTransferConfig` (AGAD).
        device: cell model of A; ``slow_device`` (default: the same) of C; both pulsed.
        io, backward_io: periphery of the visible reads of C (A is read through ``transfer.transfer_forward``).
        update: pulse-train settings of A's gradient updates.
        seed: seeds A (``3 seed + 1``), C (``3 seed + 2``) and the chopper draws.
        tile_rows, tile_cols: physical tile size of both arrays.
    """

    def __init__(self, rows: int, cols: int, transfer: TransferConfig | None = None,
                 device: DeviceConfig | None = None, slow_device: DeviceConfig | None = None,
                 io: IOConfig | None = None, backward_io: IOConfig | None = None, update: UpdateConfig | None = None,
                 seed: int = 0, tile_rows: int = 512, tile_cols: int = 512) -> None:
        require_number("TransferCompound", "seed", seed, 0, 2**63 - 1, integer=True)
        self.transfer = ChoppedTransferConfig() if transfer is None else transfer
        if not isinstance(self.transfer, TransferConfig) or type(self.transfer) is TransferConfig:
            raise ValueError(f"TransferCompound.transfer must be a Buffered-, Chopped- or DynamicTransferConfig, "
                             f"got {self.transfer!r}")
        device = SoftBounds() if device is None else device
        slow_device = device if slow_device is None else slow_device
        for name, dev in (("device", device), ("slow_device", slow_device)):
            if not isinstance(dev, DeviceConfig) or not dev.pulsed:
                raise ValueError(f"TransferCompound.{name} must be a pulsed xbarsim.devices.DeviceConfig, got {dev!r}")
            if getattr(dev, "lifetime", 0.0) > 0 or getattr(dev, "diffusion", 0.0) > 0:
                raise ValueError(f"TransferCompound.{name}: lifetime and diffusion are not implemented for "
                                 f"compounds (got lifetime={dev.lifetime!r}, diffusion={dev.diffusion!r}); allowed: 0")
        self.seed = int(seed)
        seed_a, seed_c = _array_seeds(self.seed)
        tio = self.transfer.transfer_forward
        self.fast = CrossbarArray(rows, cols, device, io=tio, backward_io=tio, update=update, seed=seed_a,
                                  tile_rows=tile_rows, tile_cols=tile_cols)
        self.slow = CrossbarArray(rows, cols, slow_device, io=io, backward_io=backward_io, seed=seed_c,
                                  tile_rows=tile_rows, tile_cols=tile_cols)
        self.rows, self.cols = self.fast.rows, self.fast.cols
        self.chopped = isinstance(self.transfer, ChoppedTransferConfig)
        #: lines a transfer reads one at a time (aihwkit's in_size) and the length of each (out_size)
        self.n_lines, self.line_length = ((self.cols, self.rows) if self.transfer.transfer_columns
                                          else (self.rows, self.cols))
        self._buffer = np.zeros((self.rows, self.cols), dtype=np.float32)
        self._running_mean = np.zeros((self.rows, self.cols), dtype=np.float32)  # dynamic only
        self._past_mean = np.zeros((self.rows, self.cols), dtype=np.float32)  # dynamic only
        self._in_switched = np.zeros(self.n_lines, dtype=bool)  # dynamic only: chopper switched since last read
        self._in_chopper = np.zeros(self.n_lines, dtype=bool)
        self._out_chopper = np.zeros(self.line_length, dtype=bool)
        self._samples = 0  # aihwkit current_update_idx_
        self._column = 0  # aihwkit current_slice_indices_[0]: the next line (column, or row) to transfer
        self._passes = 0  # aihwkit transfer_counter_ (full passes over the lines)
        self._m_x = 0.0
        self._m_d = 0.0
        self._count_lr = 0.0
        self._chop_draws = 0
        self._transfer_reads = 0

    def __repr__(self) -> str:
        return (f"TransferCompound({self.rows}x{self.cols}, {self.transfer.kind}, fast={self.fast.device.name}, "
                f"slow={self.slow.device.name}, gamma={self.transfer.gamma})")

    # ------------------------------------------------------------ choppers
    @property
    def in_chopper(self) -> np.ndarray:
        """Chopper signs ``c^{in}`` of the transferred lines (columns; rows if not ``transfer_columns``), ±1."""
        return np.where(self._in_chopper, np.float32(-1.0), np.float32(1.0))

    @property
    def out_chopper(self) -> np.ndarray:
        """Chopper signs ``c^{out}`` along each transferred line (rows; columns if not ``transfer_columns``), ±1."""
        return np.where(self._out_chopper, np.float32(-1.0), np.float32(1.0))

    def _row_sign(self) -> np.ndarray:
        """Chopper sign of each row (the ``d`` side), ±1 float32."""
        return self.out_chopper if self.transfer.transfer_columns else self.in_chopper

    def _col_sign(self) -> np.ndarray:
        """Chopper sign of each column (the ``x`` side), ±1 float32."""
        return self.in_chopper if self.transfer.transfer_columns else self.out_chopper

    def set_choppers(self, in_chopper: Any = None, out_chopper: Any = None) -> None:
        """Set chopper signs (±1; ``None`` keeps one), e.g. to start from a known state in a test."""
        for vals, target, n, name in ((in_chopper, self._in_chopper, self.n_lines, "in_chopper"),
                                      (out_chopper, self._out_chopper, self.line_length, "out_chopper")):
            if vals is None:
                continue
            v = np.asarray(vals, dtype=np.float32)
            if v.shape != (n,) or not np.all(np.abs(v) == 1):
                raise ValueError(f"TransferCompound.set_choppers: {name} must be ±1 with shape ({n},)")
            target[...] = v < 0

    @property
    def buffer(self) -> np.ndarray:
        """The digital buffer ``H`` (rows, cols), in units of the firing threshold (a copy)."""
        return self._buffer.copy()

    # ------------------------------------------------------------ weights
    def _sign_matrix(self) -> np.ndarray:
        return self._row_sign()[:, None] * self._col_sign()[None, :]

    def get_weights(self) -> np.ndarray:
        """The visible weight ``W = gamma S A + C`` (float32 copy, no read noise)."""
        w = self.slow.get_weights()
        if self.transfer.gamma > 0:
            w += np.float32(self.transfer.gamma) * self._sign_matrix() * self.fast.get_weights()
        return w

    def set_weights(self, weights: Any) -> int:
        """Program ``C = W`` and ``A = 0``; restart the sample counter and column pointer.  Returns C's clipped count."""
        clipped = self.slow.set_weights(weights)
        self.fast.set_weights(np.zeros((self.rows, self.cols), dtype=np.float32))
        self._samples = 0
        self._column = 0
        return clipped

    # ------------------------------------------------------------ reads
    def forward(self, x: Any) -> np.ndarray:
        """``y = W x``: C read through ``io``, plus ``gamma`` times A's de-chopped read if ``gamma > 0``."""
        y = self.slow.forward(x)
        if self.transfer.gamma > 0:
            xa = np.asarray(x, dtype=np.float32) * self._col_sign()
            y += np.float32(self.transfer.gamma) * self.fast.forward(xa) * self._row_sign()
        return y

    def backward(self, d: Any) -> np.ndarray:
        """``z = W^T d``: C's transposed read, plus ``gamma`` times A's de-chopped one if ``gamma > 0``."""
        z = self.slow.backward(d)
        if self.transfer.gamma > 0:
            da = np.asarray(d, dtype=np.float32) * self._row_sign()
            z += np.float32(self.transfer.gamma) * self.fast.backward(da) * self._col_sign()
        return z

    # ------------------------------------------------------------ update
    def transfer_period(self, batch: int) -> int:
        """Samples between transfers for batches of ``batch`` samples (0: never)."""
        t = self.transfer.transfer_every
        if self.transfer.units_in_mbatch:
            return max(math.ceil(t * batch), 0)
        return max(int(math.floor(t + 0.5)), 0)

    def _running_max(self, m: float, new: float, batch: int) -> float:
        if m <= 0.0:
            return new
        if new <= 0.0:
            return m
        tau = (1.0 - self.transfer.auto_momentum) / batch
        return (1.0 - tau) * m + tau * new

    def fast_lr(self, lr: float) -> float:
        """The learning rate ``eta_A`` of A's gradient update for the optimizer's ``lr`` (module docstring, 1.)."""
        t = self.transfer
        if self.chopped and t.auto_scale and t.fast_lr > 0:
            count_lr = t.fast_lr * self.fast.update_config.desired_bl * self.fast.device.dw_min
            if self._m_x > 0 and self._m_d > 0:
                count_lr /= self._m_x * self._m_d
            return count_lr * lr if t.scale_fast_lr else count_lr
        if t.fast_lr > 0:
            return t.fast_lr * lr if t.scale_fast_lr else t.fast_lr
        return lr

    def update(self, x: Any, d: Any, lr: float) -> int:
        """Gradient pulses into A, transfers into C every ``transfer_period`` samples; returns A's pulses.

        ``E[dA] = -eta_A (c^{out} d)^T (c^{in} x)``; see the module docstring for the transfer.
        """
        x, d, lr = self.fast.check_update_args(x, d, lr)
        batch = x.shape[0]
        period = self.transfer_period(batch)
        per_sample = self.chopped and self.transfer.auto_scale
        pulses = 0
        s = 0
        while s < batch:
            e = batch if period == 0 else min(batch, s + period - self._samples % period)
            if per_sample:
                e = s + 1
                self._m_x = self._running_max(self._m_x, float(np.max(np.abs(x[s]))), batch)
                self._m_d = self._running_max(self._m_d, float(np.max(np.abs(d[s]))), batch)
            self._count_lr = self.fast_lr(lr)
            xs, ds = x[s:e], d[s:e]
            if self.chopped:
                xs, ds = xs * self._col_sign(), ds * self._row_sign()
            pulses += self.fast.update(xs, ds, self._count_lr)
            self._samples += e - s
            if period > 0 and self._samples % period == 0:
                self._transfer(lr)
            s = e
        return pulses

    def transfer_lr(self, lr: float) -> float:
        """The transfer rate ``eta_T`` for the optimizer's ``lr``."""
        t = self.transfer
        eta = t.transfer_lr * (lr if t.scale_transfer_lr else 1.0)
        return eta * t.gamma if t.gamma > 0 else eta

    def buffer_scale(self, lr: float) -> float:
        """``u / v``: what one read of A adds to the buffer per unit weight, before the chopper sign."""
        t = self.transfer
        eta = self.transfer_lr(lr)
        dw_a, dw_c = self.fast.device.dw_min, self.slow.device.dw_min
        if not self.chopped:
            return eta / (t.thres_scale * dw_c)
        g = t.buffer_granularity if t.buffer_granularity > 0 else 1.0
        if t.auto_granularity > 0:
            g *= dw_a * t.auto_granularity / (self.n_lines * abs(t.transfer_every))
        else:
            g *= dw_a
        if t.correct_gradient_magnitudes:
            return eta / self._count_lr / (g * dw_c / dw_a)
        return eta / g

    def _transfer(self, lr: float) -> None:
        """One transfer event: ``min(n_reads_per_transfer, n_lines)`` consecutive lines from the pointer
        (or, with ``random_selection``, from a uniformly drawn line), wrapping."""
        scale = np.float32(self.buffer_scale(lr))
        if self.transfer.random_selection:
            self._column = min(int(np.floor(self._uniforms(1)[0] * self.n_lines)), self.n_lines - 1)
        for _ in range(min(self.transfer.n_reads_per_transfer, self.n_lines)):
            if scale != 0:
                self._transfer_column(self._column, scale)
            self._column = (self._column + 1) % self.n_lines

    def read_column(self, j: int) -> np.ndarray:
        """Column ``j`` of A read through ``transfer_forward`` with a one-hot input (rows,)."""
        e = np.zeros((1, self.cols), dtype=np.float32)
        e[0, j] = 1.0
        return self.fast.forward(e)[0]

    def read_row(self, i: int) -> np.ndarray:
        """Row ``i`` of A, a transposed read through ``transfer_forward`` with a one-hot input (cols,)."""
        e = np.zeros((1, self.rows), dtype=np.float32)
        e[0, i] = 1.0
        return self.fast.backward(e)[0]

    def read_line(self, k: int) -> np.ndarray:
        """Line ``k`` of A as a transfer reads it: a column, or a row if not ``transfer_columns``."""
        return self.read_column(k) if self.transfer.transfer_columns else self.read_row(k)

    def _line(self, a: np.ndarray, k: int) -> np.ndarray:
        """A writeable view of line ``k`` of a ``(rows, cols)`` array."""
        return a[:, k] if self.transfer.transfer_columns else a[k, :]

    def _transfer_column(self, j: int, scale: np.float32) -> None:
        if isinstance(self.transfer, DynamicTransferConfig):
            self._dynamic_transfer_column(j, scale)
            return
        t = self.transfer
        v = self.read_line(j)
        self._transfer_reads += 1
        u = v * scale
        if self.chopped:
            u = np.where(self._in_chopper[j] != self._out_chopper, -u, u)
        col = self._line(self._buffer, j).copy()
        n = accumulate_and_fire(col, u, t.transfer_update.desired_bl, t.momentum, t.forget_buffer,
                                self.chopped and t.no_buffer)
        self._line(self._buffer, j)[...] = col
        self._write_column(j, n)
        if self.chopped:
            self._flip_choppers(j)

    def _write_column(self, j: int, n: np.ndarray) -> None:
        """``n_i`` pulses into the ``i``-th cell of C's line ``j``, up for ``n_i > 0``."""
        if np.any(n != 0):
            counts = np.zeros((self.rows, self.cols), dtype=np.int64)
            self._line(counts, j)[...] = n
            self.slow.apply_pulses(counts > 0, np.abs(counts))

    def _dynamic_transfer_column(self, j: int, scale: np.float32) -> None:
        """AGAD's transfer of column ``j`` (aihwkit ``DynamicTransferRPUDevice::readAndUpdate``)."""
        t = self.transfer
        v = self.read_line(j)
        self._transfer_reads += 1
        period = t.chop_period
        current = self._passes % period + 1
        beta = np.float32(min(t.tail_weightening / period, 1.0))
        if t.experimental_correct_accumulation:
            scale = np.float32(scale / min(float(current), 1.0 / self.fast.device.dw_min))
        past, mean = self._line(self._past_mean, j), self._line(self._running_mean, j)
        if self._in_switched[j]:  # a new chopper phase: the last period's mean becomes the reference
            past[...] = mean
        self._in_switched[j] = False
        dw = v - past
        u = dw * scale
        u = np.where(self._in_chopper[j] != self._out_chopper, -u, u)
        col = self._line(self._buffer, j).copy()
        cap = 0.0 if t.forget_buffer else t.buffer_cap * t.transfer_update.desired_bl
        n = accumulate_and_fire(col, u, t.transfer_update.desired_bl, t.momentum, t.forget_buffer, cap=cap)
        self._line(self._buffer, j)[...] = col
        mean[...] = mean * (np.float32(1.0) - beta) + v * beta
        if self._passes > period:
            self._write_column(j, n)
        switch = current == period
        if t.in_chop_random and self._uniforms(1)[0] < t.in_chop_prob:
            switch = True
        if switch:
            self._in_chopper[j] = not self._in_chopper[j]
            self._in_switched[j] = True
        if j == self.n_lines - 1:
            self._passes += 1

    def _uniforms(self, n: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _CHOP_STREAM, self._chop_draws])
        self._chop_draws += 1
        return rng.random(n)

    def _flip_choppers(self, j: int) -> None:
        t = self.transfer
        if t.in_chop_prob > 0:
            if t.in_chop_random:
                if self._uniforms(1)[0] < t.in_chop_prob:
                    self._in_chopper[j] = not self._in_chopper[j]
            else:
                period = max(int(np.ceil(np.float32(1.0) / np.float32(t.in_chop_prob))), 2)
                if self._passes % period + 1 == period:
                    self._in_chopper[j] = not self._in_chopper[j]
        if j == self.n_lines - 1:
            if t.out_chop_prob > 0:
                self._out_chopper ^= self._uniforms(self.line_length) < t.out_chop_prob
            self._passes += 1

    # ------------------------------------------------------------ counters
    @property
    def counters(self) -> dict:
        """A's and C's operation counters summed (``pulses``: per cell position), plus ``transfer_reads``."""
        a, c = self.fast.counters, self.slow.counters
        out = {k: (a[k] + c[k]) for k in a}
        out["transfer_reads"] = self._transfer_reads
        return out

    def reset_counters(self) -> None:
        self.fast.reset_counters()
        self.slow.reset_counters()
        self._transfer_reads = 0

    def settle(self) -> None:
        self.fast.settle()
        self.slow.settle()

    # ------------------------------------------------------------ state
    def config_dict(self) -> dict:
        a, c = self.fast.config_dict(), self.slow.config_dict()
        return {"rows": self.rows, "cols": self.cols, "transfer": self.transfer.to_dict(), "device": a["device"],
                "slow_device": c["device"], "io": c["io"], "backward_io": c["backward_io"], "update": a["update"],
                "seed": self.seed, "tile_rows": a["tile_rows"], "tile_cols": a["tile_cols"]}

    def state_dict(self) -> dict:
        """Everything needed to resume bit-identically: A, C, H, choppers, counters, running maxima and means."""
        return {"kind": "transfer_compound", "config": self.config_dict(), "fast": self.fast.state_dict(),
                "slow": self.slow.state_dict(), "buffer": self._buffer.copy(),
                "in_chopper": self._in_chopper.copy(), "out_chopper": self._out_chopper.copy(),
                "samples": self._samples, "column": self._column, "passes": self._passes, "m_x": self._m_x,
                "m_d": self._m_d, "count_lr": self._count_lr, "chop_draws": self._chop_draws,
                "transfer_reads": self._transfer_reads, "running_mean": self._running_mean.copy(),
                "past_mean": self._past_mean.copy(), "in_switched": self._in_switched.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`, configs and seeds included (A and C are rebuilt from theirs)."""
        cfg = state["config"]
        if (cfg["rows"], cfg["cols"]) != (self.rows, self.cols):
            raise ValueError(f"TransferCompound.load_state_dict: shape {(cfg['rows'], cfg['cols'])} does not match "
                             f"{(self.rows, self.cols)}")
        self.settle()
        self.transfer = transfer_config_from_dict(cfg["transfer"])
        self.chopped = isinstance(self.transfer, ChoppedTransferConfig)
        self.seed = int(cfg["seed"])
        self.fast = CrossbarArray.from_state_dict(state["fast"])
        self.slow = CrossbarArray.from_state_dict(state["slow"])
        self._buffer[...] = state["buffer"]
        self._in_chopper[...] = state["in_chopper"]
        self._out_chopper[...] = state["out_chopper"]
        self._samples, self._column, self._passes = int(state["samples"]), int(state["column"]), int(state["passes"])
        self._m_x, self._m_d, self._count_lr = float(state["m_x"]), float(state["m_d"]), float(state["count_lr"])
        self._chop_draws, self._transfer_reads = int(state["chop_draws"]), int(state["transfer_reads"])
        self._running_mean[...] = state["running_mean"]
        self._past_mean[...] = state["past_mean"]
        self._in_switched[...] = state["in_switched"]

    @classmethod
    def from_state_dict(cls, state: dict) -> "TransferCompound":
        cfg = state["config"]
        out = cls(cfg["rows"], cfg["cols"], transfer=transfer_config_from_dict(cfg["transfer"]),
                  device=DeviceConfig.from_dict(cfg["device"]), slow_device=DeviceConfig.from_dict(cfg["slow_device"]),
                  io=IOConfig.from_dict(cfg["io"]), backward_io=IOConfig.from_dict(cfg["backward_io"]),
                  update=UpdateConfig.from_dict(cfg["update"]), seed=cfg["seed"], tile_rows=cfg["tile_rows"],
                  tile_cols=cfg["tile_cols"])
        out.load_state_dict(state)
        return out
