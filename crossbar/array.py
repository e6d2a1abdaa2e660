r"""``CrossbarArray``: a weight matrix stored in resistive cells, read and written through periphery.

Convention: ``W`` has shape ``(rows, cols) = (outputs, inputs)``; ``forward(x)``
computes ``y = W x`` per sample, ``backward(d)`` the transposed read ``z = W^T d``,
and ``update(x, d, lr)`` applies stochastic pulse trains with
``E[dW] = -lr d^T x`` (Gokmen & Vlasov, *Front. Neurosci.* 10:333, 2016).

A matrix larger than ``tile_rows x tile_cols`` is split into tiles.  Each tile
has its own periphery (noise management, DAC, ADC, bound management, update
management and random streams); partial sums of tiles that share outputs are
accumulated digitally, in float32.

An optional *reference* ``G_ref`` makes every read see ``W = G - G_ref``
(differential read).  It is either one reference cell per weight, shape
``(rows, cols)``, or one shared reference column, shape ``(cols,)``: one
reference cell per input line, subtracted from every output.  Updates pulse
only ``G``.

The forward read's output stage is pluggable (:class:`OutputStage`): the ADC
of ``io`` (default), or a 1-bit sense amplifier per output line and input tile
with its own threshold and comparison sign (:meth:`CrossbarArray.set_sense_amp`);
input tiles are merged by ``sum`` (default) or ``majority`` of their 1-bit outputs.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from xbarsim.devices import DeviceConfig, SoftBounds, sample_cells
from xbarsim.devices.kernels import apply_pulse_counts, decay_and_diffuse, normal_matrix
from xbarsim.devices.layout import C_B_MAX, C_B_MIN, C_DECAY, C_DIFFUSION, G_WRITE_NOISE
from xbarsim.devices.rng import STREAM_BACKWARD, STREAM_FORWARD, STREAM_PROGRAM, check_counter_range
from xbarsim.devices.validation import require_number

from .config import IOConfig, UpdateConfig
from .kernels import TileUpdate, finalize_output, plan_pulses, prepare_input, read_tiles
from .output_stage import OutputStage, sense_amp_decisions
from .state import (COUNTER_NAMES, K_ADC, K_BACKWARD_MVM, K_BM_REPEATS, K_CELLS_PROGRAMMED, K_DAC, K_FORWARD_MVM,
                    K_PROGRAM_CALLS, K_PULSE_TOTAL, K_SENSE_AMP, K_UPDATES, RNG_BACKWARD, RNG_DECAY, RNG_FORWARD,
                    RNG_NAMES, RNG_PROGRAM, RNG_UPDATE, TILE_STREAMS, ArrayState, LoopView, ReadParams, TileAt,
                    read_params, update_params)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float32 arrays through torch's BLAS, sharing memory (no copies).

    numpy's OpenBLAS thread pool was measured 100x slower than torch for batch-10
    products on the 2-core machine (spinning threads); torch honours
    ``torch.set_num_threads``.
    """
    return torch.from_numpy(a).matmul(torch.from_numpy(b)).numpy()
_EMPTY2 = np.zeros((0, 0), dtype=np.float32)
FUSED_READ_MAX_BATCH = 32  # up to here one compiled call per read (read_tiles); above, torch's GEMM


class CrossbarArray:
    """A (possibly tiled) crossbar holding ``rows x cols`` weights.

    Args:
        rows, cols: matrix shape ``(outputs, inputs)``.
        device: cell model (:mod:`devices`); each cell gets its own d2d parameters.
        io: forward periphery; ``backward_io`` (default: same as ``io``) for the
            transposed read, which never uses bound management.
        update: pulse-train update settings.
        tile_rows, tile_cols: physical array size; larger matrices are tiled.
        seed: seeds the d2d sampling and every random stream.
        output_stage: what ends each output line of a forward read (default: ADC, tiles summed).
    """

    def __init__(self, rows: int, cols: int, device: DeviceConfig | None = None, io: IOConfig | None = None,
                 update: UpdateConfig | None = None, seed: int = 0, backward_io: IOConfig | None = None,
                 tile_rows: int = 512, tile_cols: int = 512, output_stage: OutputStage | None = None) -> None:
        require_number("CrossbarArray", "rows", rows, 1, None, integer=True)
        require_number("CrossbarArray", "cols", cols, 1, None, integer=True)
        require_number("CrossbarArray", "tile_rows", tile_rows, 1, None, integer=True)
        require_number("CrossbarArray", "tile_cols", tile_cols, 1, None, integer=True)
        require_number("CrossbarArray", "seed", seed, 0, 2**63 - 1, integer=True)
        self.device = device if device is not None else SoftBounds()
        if not isinstance(self.device, DeviceConfig):
            raise ValueError(f"CrossbarArray.device must be a xbarsim.devices.DeviceConfig, got {type(self.device).__name__}")
        self.io = io if io is not None else IOConfig()
        self.backward_io = backward_io if backward_io is not None else self.io
        self.update_config = update if update is not None else UpdateConfig()
        self.output_stage = output_stage if output_stage is not None else OutputStage()
        for name, val, cls in (("io", self.io, IOConfig), ("backward_io", self.backward_io, IOConfig),
                               ("update", self.update_config, UpdateConfig), ("output_stage", self.output_stage,
                                                                              OutputStage)):
            if not isinstance(val, cls):
                raise ValueError(f"CrossbarArray.{name} must be a {cls.__name__}, got {type(val).__name__}")
        self.rows, self.cols = int(rows), int(cols)
        check_counter_range("CrossbarArray", "rows x cols", self.rows * self.cols)
        self.tile_rows, self.tile_cols = int(tile_rows), int(tile_cols)
        self.seed = int(seed)
        self._g = self.device.kernel_params()
        self._cell = sample_cells(self.device, (self.rows, self.cols), self.seed)
        self._w = np.zeros((self.rows, self.cols), dtype=np.float32)
        self._w_read = self._w if self._g[G_WRITE_NOISE] == 0 else self._w.copy()
        self._update = update_params(self.update_config, self.device.dw_min)
        #: decay or diffusion after every update (aihwkit: after every mini-batch)
        self._decays = bool(np.any(self._cell[..., C_DECAY] != 1.0) or np.any(self._cell[..., C_DIFFUSION] > 0.0))
        self._reference: np.ndarray | None = None
        self._read_cache: np.ndarray | None = None
        self.tiles = [(r0, min(r0 + self.tile_rows, self.rows), c0, min(c0 + self.tile_cols, self.cols))
                      for r0 in range(0, self.rows, self.tile_rows) for c0 in range(0, self.cols, self.tile_cols)]
        self._dac_per_sample = {False: sum(c1 - c0 for (_, _, c0, c1) in self.tiles),
                                True: sum(r1 - r0 for (r0, r1, _, _) in self.tiles)}
        self._io_args: dict = {}  # per direction: (IOConfig, its ReadParams) of the last read
        self._pulses = np.zeros((self.rows, self.cols), dtype=np.int64)
        self._state = ArrayState(w=self._w, w_read=self._w_read, cell=self._cell, g=self._g, pulses=self._pulses,
                                 tiles=np.array(self.tiles, dtype=np.int64).reshape(-1, 4),
                                 rng=np.zeros(len(RNG_NAMES), dtype=np.int64),
                                 counters=np.zeros(len(COUNTER_NAMES), dtype=np.int64),
                                 tile_pulses=np.zeros(len(self.tiles), dtype=np.int64), seed=self.seed)
        self._rng = self._state.rng
        self._counts = self._state.counters
        self.n_input_tiles = -(-self.cols // self.tile_cols)
        self._sa_threshold = np.zeros((self.n_input_tiles, self.rows), dtype=np.float32)
        self._sa_sign = np.ones((self.n_input_tiles, self.rows), dtype=np.float32)
        self._inflight: Callable[[], Any] | None = None  # finishes an update still being pulsed (defer_settle)
        w0 = np.clip(0.0, self._cell[..., C_B_MIN], self._cell[..., C_B_MAX])
        self._w[...] = w0
        self._refresh_read()

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        return (f"CrossbarArray({self.rows}x{self.cols}, device={self.device.name}, "
                f"tiles={len(self.tiles)}, io={'perfect' if self.io.perfect else 'noisy'})")

    # ------------------------------------------------------- in-flight updates
    def defer_settle(self, finish: Callable[[], Any]) -> None:
        """Mark an update of this array as still being pulsed on other threads; ``finish()`` completes it.

        Every public method that reads or changes the array first calls
        :meth:`settle`, so an optimizer can return while the pulses go on and the
        next batch's reads of other layers overlap with them
        (:class:`xbarsim.training.AnalogSGD`).  The results are those of a
        synchronous update, bit for bit.
        """
        self.settle()
        self._inflight = finish

    def settle(self) -> None:
        """Wait for (and help finish) an update still in flight; no-op otherwise."""
        finish, self._inflight = self._inflight, None
        if finish is not None:
            finish()

    # ---------------------------------------------------------------- weights
    def _invalidate(self) -> None:
        self._read_cache = None

    def _refresh_read(self) -> None:
        """Draw write noise for the read copy (when the device has any)."""
        wn = self._g[G_WRITE_NOISE]
        if wn > 0:
            self._rng[RNG_PROGRAM] += 1
            noise = normal_matrix(self.seed, STREAM_PROGRAM, self._rng[RNG_PROGRAM], self.rows, self.cols)
            self._w_read[...] = self._w + wn * noise
        self._invalidate()

    def _read_weights(self) -> np.ndarray:
        """Weights seen by reads: ``G_read - G_ref`` (float32, cached)."""
        if self._reference is None:
            return self._w_read
        if self._read_cache is None:
            self._read_cache = self._w_read - self._reference
        return self._read_cache

    def _check_matrix(self, name: str, a: Any, shape: tuple[int, int]) -> np.ndarray:
        a = np.asarray(a)
        if a.shape != shape:
            raise ValueError(f"CrossbarArray: {name} must have shape {shape}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"CrossbarArray: {name} contains NaN or inf")
        return a

    def set_weights(self, weights: Any) -> int:
        """Program ``W`` (rows, cols) exactly, clipped to each cell's bounds.

        With a reference, programs ``G = W + G_ref``.  Write noise (if the device has
        any) is drawn for the read copy.  Returns how many weights were clipped.

        Counters: each call is one program-and-verify pass over the whole array,
        ``cells_programmed += rows * cols`` and ``program_calls += 1``.
        """
        self.settle()
        w = self._check_matrix("weights", weights, (self.rows, self.cols)).astype(np.float64)
        if self._reference is not None:
            w = w + self._reference
        lo, hi = self._cell[..., C_B_MIN], self._cell[..., C_B_MAX]
        clipped = int(np.count_nonzero((w < lo) | (w > hi)))
        self._w[...] = np.clip(w, lo, hi)
        self._counts[K_CELLS_PROGRAMMED] += self.rows * self.cols
        self._counts[K_PROGRAM_CALLS] += 1
        self._refresh_read()
        return clipped

    def get_weights(self) -> np.ndarray:
        """The stored weights ``G - G_ref`` (float32 copy, without read/write noise)."""
        self.settle()
        w = self._w.copy()
        if self._reference is not None:
            w -= self._reference
        return w

    def get_conductances(self) -> np.ndarray:
        """The programmable cells ``G`` in weight units (float32 copy)."""
        self.settle()
        return self._w.copy()

    @property
    def reference(self) -> np.ndarray | None:
        self.settle()
        return None if self._reference is None else self._reference.copy()

    def set_reference(self, reference: Any | None) -> None:
        """Set ``G_ref`` (shape (rows, cols) or shared column (cols,)); ``None`` removes it.

        The stored conductances ``G`` stay as they are, so the effective weights change.
        """
        self.settle()
        if reference is None:
            self._reference = None
        else:
            ref = np.asarray(reference, dtype=np.float32)
            if ref.shape not in ((self.rows, self.cols), (self.cols,)):
                raise ValueError(f"CrossbarArray.set_reference: shape must be {(self.rows, self.cols)} "
                                 f"or ({self.cols},), got {ref.shape}")
            if not np.all(np.isfinite(ref)):
                raise ValueError("CrossbarArray.set_reference: reference contains NaN or inf")
            self._reference = np.ascontiguousarray(np.broadcast_to(ref, (self.rows, self.cols))) \
                if ref.ndim == 2 else ref.copy()
        self._invalidate()

    @property
    def cell_params(self) -> np.ndarray:
        """Per-cell device parameters, ``(rows, cols, N_CELL)`` (see xbarsim.devices.kernels)."""
        self.settle()
        return self._cell

    # ------------------------------------------------------------------ reads
    def _as_batch(self, name: str, a: Any, n: int) -> np.ndarray:
        if not (type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == 2 and a.shape[1] == n
                and a.flags.c_contiguous):
            a = np.asarray(a, dtype=np.float32)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[1] != n:
                raise ValueError(f"CrossbarArray: {name} must have shape (batch, {n}), got {np.shape(a)}")
            a = np.ascontiguousarray(a)
        if a.shape[0] * max(self.rows, self.cols) >= 1 << 32:  # counters b * n + j of the read noise
            check_counter_range("CrossbarArray", f"{name} batch x max(rows, cols)", a.shape[0] * max(self.rows, self.cols))
        return a

    def _read_params(self, io: IOConfig, transposed: bool) -> ReadParams:
        """``io`` compiled for the direction (cached; IOConfig is frozen)."""
        hit = self._io_args.get(transposed)
        if hit is not None and hit[0] is io:
            return hit[1]
        rp = read_params(io, transposed)
        self._io_args[transposed] = (io, rp)
        return rp

    @staticmethod
    def _fuses(io: IOConfig) -> bool:
        """Whether the compiled read (:func:`read_tiles`) covers ``io``: not perfect, no weight noise."""
        return not io.perfect and (io.w_noise == 0 or io.w_noise_type == "none")

    def _read(self, x: np.ndarray, w: np.ndarray, transposed: bool, io: IOConfig, stream: int,
              ctr: int, bound_management: bool) -> np.ndarray:
        """One tile's read through the periphery (see IOConfig for the steps)."""
        if io.perfect:
            return matmul(x, w) if transposed else matmul(x, w.T)
        batch = x.shape[0]
        n_out = w.shape[1] if transposed else w.shape[0]
        xq = np.empty_like(x)
        scale = np.zeros(batch, dtype=np.float64)
        factor = np.ones(batch, dtype=np.float64)
        rp = self._read_params(io, transposed)
        adc_args = (io.out_noise, io.out_step, io.out_bound)
        prepare_input(x, xq, scale, factor, rp, (self.seed, stream, ctr * 16))
        y = matmul(xq, w) if transposed else matmul(xq, w.T)
        wstd = self._weight_noise_std(xq, w, transposed, io)
        active = np.ones(batch, dtype=np.bool_)
        sat = finalize_output(y, active, wstd, adc_args, (self.seed, stream, ctr * 16), True)
        adc = batch * n_out
        if bound_management and io.bound_management == "iterative" and sat.any():
            limit = rp.bm_limit
            it = 0
            while sat.any():
                grow = sat & (factor * 2.0 <= limit)
                if not grow.any():
                    break
                it += 1
                factor[grow] *= 2.0
                xqs = np.zeros_like(x)
                prepare_input(x, xqs, np.zeros(batch), np.where(grow, factor, 0.0), rp, (self.seed, stream, ctr * 16 + it))
                ys = matmul(xqs, w.T)
                ws = self._weight_noise_std(xqs, w, False, io)
                sat = finalize_output(ys, grow, ws, adc_args, (self.seed, stream, ctr * 16 + it), True)
                y[grow] = ys[grow]
                n_grow = int(grow.sum())
                adc += n_grow * n_out
                self._counts[K_BM_REPEATS] += n_grow
        self._counts[K_ADC] += adc
        y *= (scale * factor).astype(np.float32)[:, None]
        return y

    @staticmethod
    def _weight_noise_std(xq: np.ndarray, w: np.ndarray, transposed: bool, io: IOConfig) -> np.ndarray:
        if io.w_noise == 0 or io.w_noise_type == "none":
            return _EMPTY2
        if io.w_noise_type == "additive_constant":
            n_out = w.shape[1] if transposed else w.shape[0]
            norm = np.sqrt(np.einsum("bj,bj->b", xq, xq))
            return np.repeat((io.w_noise * norm)[:, None], n_out, axis=1).astype(np.float32)
        x2 = xq * xq
        aw = np.abs(w)
        var = matmul(x2, aw) if transposed else matmul(x2, aw.T)
        return (io.w_noise * np.sqrt(var)).astype(np.float32)

    def _tiled_read(self, v: np.ndarray, transposed: bool) -> np.ndarray:
        """Read every tile through its own periphery and sum partial results digitally."""
        w = self._read_weights()
        io = self.backward_io if transposed else self.io
        batch = v.shape[0]
        if batch <= FUSED_READ_MAX_BATCH and self._fuses(io):
            out = np.empty((batch, self.cols if transposed else self.rows), dtype=np.float32)
            read_tiles(v, w, self._state, self._read_params(io, transposed), transposed, out)
            return out
        which = RNG_BACKWARD if transposed else RNG_FORWARD
        stream = STREAM_BACKWARD if transposed else STREAM_FORWARD
        ctr = int(self._rng[which])
        self._rng[which] += 1
        if len(self.tiles) == 1:
            out = self._read(v, w, transposed, io, stream, ctr, not transposed)
        else:
            out = np.zeros((batch, self.cols if transposed else self.rows), dtype=np.float32)
            for t, (r0, r1, c0, c1) in enumerate(self.tiles):
                (i0, i1), (o0, o1) = ((r0, r1), (c0, c1)) if transposed else ((c0, c1), (r0, r1))
                out[:, o0:o1] += self._read(np.ascontiguousarray(v[:, i0:i1]), w[r0:r1, c0:c1], transposed, io,
                                            stream + TILE_STREAMS * t, ctr, not transposed)
        self._book_reads(transposed, batch)
        return out

    def _book_reads(self, transposed: bool, samples: int) -> None:
        """Count the MVMs (one per tile and sample) and DAC conversions of ``samples`` reads."""
        self._counts[K_BACKWARD_MVM if transposed else K_FORWARD_MVM] += samples * len(self.tiles)
        self._counts[K_DAC] += samples * self._dac_per_sample[transposed]

    def forward(self, x: Any) -> np.ndarray:
        """``y = W x`` for a batch ``x`` of shape (batch, cols) -> (batch, rows), float32.

        With a sense-amp output stage the result is the merged 1-bit decisions instead
        (±1 for ``majority``; the vote count for ``sum``), see :class:`OutputStage`.
        """
        self.settle()
        x = self._as_batch("x", x, self.cols)
        if self.output_stage.kind == "sense_amp":
            return self._sense_read(x)
        return self._tiled_read(x, transposed=False)

    # ------------------------------------------------------------ sense amps
    def set_sense_amp(self, threshold: Any, sign: Any = None) -> None:
        """Set the sense amplifiers' thresholds ``theta`` and comparison signs ``c`` (``+1``/``-1``).

        Each has shape ``(rows,)`` (same for every input tile) or ``(n_input_tiles, rows)``;
        ``sign=None`` means ``+1`` everywhere.  Thresholds may be ``±inf`` (constant output).
        """
        self.settle()
        shape = (self.n_input_tiles, self.rows)
        thr = np.asarray(threshold, dtype=np.float32)
        if thr.shape not in (shape, (self.rows,)) or np.isnan(thr).any():
            raise ValueError(f"CrossbarArray.set_sense_amp: threshold must have shape {shape} or ({self.rows},) "
                             f"without NaN, got {thr.shape}")
        sgn = np.ones(shape, dtype=np.float32) if sign is None else np.asarray(sign, dtype=np.float32)
        if sgn.shape not in (shape, (self.rows,)) or not np.all(np.abs(sgn) == 1):
            raise ValueError(f"CrossbarArray.set_sense_amp: sign must be ±1 with shape {shape} or ({self.rows},)")
        self._sa_threshold[...] = thr
        self._sa_sign[...] = sgn

    @property
    def sense_amp_threshold(self) -> np.ndarray:
        """Thresholds ``(n_input_tiles, rows)`` of the sense amplifiers (copy)."""
        self.settle()
        return self._sa_threshold.copy()

    @property
    def sense_amp_sign(self) -> np.ndarray:
        """Comparison signs ``(n_input_tiles, rows)`` of the sense amplifiers (copy)."""
        self.settle()
        return self._sa_sign.copy()

    def _analog_current(self, x: np.ndarray, w: np.ndarray, io: IOConfig, stream: int, ctr: int) -> np.ndarray:
        """One tile's analog output current ``s (W x_q + noise)`` in units of ``W x``: DAC and noise, no ADC."""
        if io.perfect:
            return matmul(x, w.T)
        batch = x.shape[0]
        xq = np.empty_like(x)
        scale = np.zeros(batch, dtype=np.float64)
        prepare_input(x, xq, scale, np.ones(batch), self._read_params(io, False), (self.seed, stream, ctr * 16))
        y = matmul(xq, w.T)
        finalize_output(y, np.ones(batch, dtype=np.bool_), self._weight_noise_std(xq, w, False, io),
                        (io.out_noise, 0.0, np.inf), (self.seed, stream, ctr * 16), True)
        y *= scale.astype(np.float32)[:, None]
        return y

    def _sense_read(self, x: np.ndarray) -> np.ndarray:
        """Forward read ending in sense amplifiers; input tiles merged by ``output_stage.tile_merge``."""
        w = self._read_weights()
        ctr = int(self._rng[RNG_FORWARD])
        self._rng[RNG_FORWARD] += 1
        batch = x.shape[0]
        votes = np.zeros((batch, self.rows), dtype=np.float32)
        for t, (r0, r1, c0, c1) in enumerate(self.tiles):
            k = c0 // self.tile_cols
            cur = self._analog_current(np.ascontiguousarray(x[:, c0:c1]), w[r0:r1, c0:c1], self.io,
                                       STREAM_FORWARD + TILE_STREAMS * t, ctr)
            votes[:, r0:r1] += sense_amp_decisions(cur, self._sa_threshold[k, r0:r1], self._sa_sign[k, r0:r1])
        self._book_reads(False, batch)
        self._counts[K_SENSE_AMP] += batch * self.rows * self.n_input_tiles
        if self.output_stage.tile_merge == "majority":
            return np.where(votes >= 0, np.float32(1.0), np.float32(-1.0))
        return votes

    def backward(self, d: Any) -> np.ndarray:
        """Transposed read ``z = W^T d`` for ``d`` (batch, rows) -> (batch, cols), float32.

        The backward periphery never applies bound management (as in aihwkit).
        """
        self.settle()
        return self._tiled_read(self._as_batch("d", d, self.rows), transposed=True)

    # ---------------------------------------------------------------- updates
    def update(self, x: Any, d: Any, lr: float) -> int:
        """Pulsed update with ``E[dW] = -lr d^T x``; samples are applied one after another.

        Returns the number of pulses applied (0 for :class:`IdealDevice`, whose update is exact).
        Several arrays are updated concurrently by :func:`xbarsim.crossbar.update_arrays`.
        """
        jobs = self.plan_update(x, d, lr)
        for job in jobs:
            job.run()
        return self.finish_update(jobs)

    def plan_update(self, x: Any, d: Any, lr: float) -> list:
        """First half of :meth:`update`: validate, draw the bit streams, return one pulse job per tile.

        Run every job (:meth:`xbarsim.crossbar.kernels.PulseJob.run`, in any order or
        concurrently), then call :meth:`finish_update` with them.
        """
        return [plan_pulses(tile) for tile in self.tile_update_args(x, d, lr)]

    def tile_update_args(self, x: Any, d: Any, lr: float) -> list[TileUpdate]:
        """Validate an update, advance the random streams, return :func:`plan_pulses` arguments per tile.

        The tiles' planning and pulsing may then run in any order or concurrently.
        An :class:`IdealDevice` array is updated exactly here and returns no tiles.
        """
        x, d, lr = self.check_update_args(x, d, lr)
        batch = x.shape[0]
        step0 = int(self._rng[RNG_UPDATE])
        self._rng[RNG_UPDATE] += batch
        self._counts[K_UPDATES] += batch
        out: list[TileUpdate] = []
        if not self.device.pulsed:
            self._w -= np.float32(lr) * matmul(d.T, x)
        elif lr > 0:
            single = len(self.tiles) == 1
            step = self.device.pulse_step
            for t, (r0, r1, c0, c1) in enumerate(self.tiles):
                out.append(TileUpdate(self._state, x if single else np.ascontiguousarray(x[:, c0:c1]),
                                      d if single else np.ascontiguousarray(d[:, r0:r1]), lr, self._update,
                                      TileAt(r0, c0, TILE_STREAMS * t, step0), step))
        return out

    def check_update_args(self, x: Any, d: Any, lr: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Validated ``(x (batch, cols), d (batch, rows), lr)`` of an update; raises ``ValueError``."""
        self.settle()
        x = self._as_batch("x", x, self.cols)
        d = self._as_batch("d", d, self.rows)
        if x.shape[0] != d.shape[0]:
            raise ValueError(f"CrossbarArray.update: x and d batch sizes differ ({x.shape[0]} vs {d.shape[0]})")
        require_number("CrossbarArray.update", "lr", float(lr), 0.0, None)
        for name, a in (("x", x), ("d", d)):
            if not np.isfinite(a).all():
                bad = np.argwhere(~np.isfinite(a))[0]
                raise ValueError(f"CrossbarArray.update: {name} contains a non-finite value ({a[tuple(bad)]} at "
                                 f"sample {bad[0]}, index {bad[1]}); no cell was changed")
        return x, d, float(lr)

    def finish_update(self, jobs: list) -> int:
        """Second half of :meth:`update`, after its jobs ran: counters, decay/diffusion; returns the pulses."""
        total = sum(job.pulses for job in jobs)
        if len(jobs) == len(self.tiles):
            self._state.tile_pulses[:] = [job.pulses for job in jobs]
        self._counts[K_PULSE_TOTAL] += total
        self._post_update()
        self._invalidate()
        return total

    # ------------------------------------------------- compiled training loops
    def loop_state(self, batch: int) -> LoopView | None:
        """What a compiled training loop needs to read and update this array itself (:class:`LoopView`).

        The loop calls the same kernels as :meth:`forward`, :meth:`backward` and :meth:`update`
        (:func:`read_tiles`, :func:`xbarsim.crossbar.pulse_helper.update_tiles`), which advance
        the streams and counters in the array's own state.  ``None`` where batches of ``batch``
        samples do not take that path: an ideal device (exact updates), a sense-amp output
        stage, reads of more than ``FUSED_READ_MAX_BATCH`` samples, perfect or weight-noise
        IO, or decay and diffusion after updates.
        """
        self.settle()
        if (not self.device.pulsed or self.output_stage.kind != "adc" or batch > FUSED_READ_MAX_BATCH
                or self._decays or not (self._fuses(self.io) and self._fuses(self.backward_io))):
            return None
        ref = _EMPTY2 if self._reference is None else np.ascontiguousarray(
            np.broadcast_to(self._reference, (self.rows, self.cols)))
        return LoopView(state=self._state, read=self._read_weights(), reference=ref,
                        fwd=self._read_params(self.io, False), bwd=self._read_params(self.backward_io, True),
                        update=self._update, step=self.device.pulse_step)

    @property
    def last_tile_pulses(self) -> list[int]:
        """Pulses per tile of the last update; :mod:`xbarsim.crossbar.schedule` sizes row blocks by it."""
        return [int(p) for p in self._state.tile_pulses]

    def _post_update(self) -> None:
        """Decay and diffusion, once per update call (aihwkit: once per mini-batch)."""
        if self._decays:
            self._rng[RNG_DECAY] += 1
            before = self._w.copy() if self._w_read is not self._w else None
            decay_and_diffuse(self._w, self._cell, self.seed, int(self._rng[RNG_DECAY]))
            if before is not None:
                self._w_read += self._w - before

    def decay(self, n: int = 1) -> None:
        """Apply ``n`` decay/diffusion calls (drift of an idle array)."""
        self.settle()
        for _ in range(int(n)):
            self._post_update()
        self._invalidate()

    def apply_pulses(self, up_mask: Any, n: Any = 1) -> None:
        """Raw pulses for device characterisation: ``n`` up pulses where ``up_mask``, else down.

        ``n`` is an int or a (rows, cols) integer array (0 = no pulse).
        """
        self.settle()
        if not self.device.pulsed:
            raise ValueError("CrossbarArray.apply_pulses: IdealDevice is not pulsed")
        up_mask = np.asarray(up_mask, dtype=bool)
        if up_mask.shape != (self.rows, self.cols):
            raise ValueError(f"CrossbarArray.apply_pulses: up_mask must have shape {(self.rows, self.cols)}")
        n_arr = np.broadcast_to(np.asarray(n, dtype=np.int64), (self.rows, self.cols))
        if np.any(n_arr < 0):
            raise ValueError("CrossbarArray.apply_pulses: n must be >= 0")
        check_counter_range("CrossbarArray.apply_pulses", "pulses per cell n", int(n_arr.max(initial=0)))
        counts = np.where(up_mask, n_arr, -n_arr).astype(np.int64)
        self._rng[RNG_UPDATE] += 1
        apply_pulse_counts(self.device, self._w, self._w_read, counts, self._cell, self._pulses,
                           (self.seed, (1 << 40) + int(self._rng[RNG_UPDATE]), 0, 0, self.cols))
        self._counts[K_PULSE_TOTAL] += int(np.abs(counts).sum())
        self._invalidate()

    # --------------------------------------------------------------- counters
    @property
    def counters(self) -> dict:
        """Operation counters: MVMs (per tile), DAC/ADC conversions, sense-amp decisions, updates, pulses per
        cell, programmed cells and programming calls."""
        self.settle()
        out: dict[str, Any] = {k: int(v) for k, v in zip(COUNTER_NAMES, self._counts)}
        out["pulses"] = self._pulses
        return out

    def reset_counters(self) -> None:
        self.settle()
        self._counts[...] = 0
        self._pulses[...] = 0

    # ------------------------------------------------------------------ state
    def config_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "device": self.device.to_dict(), "io": self.io.to_dict(),
                "backward_io": self.backward_io.to_dict(), "update": self.update_config.to_dict(),
                "tile_rows": self.tile_rows, "tile_cols": self.tile_cols, "seed": self.seed,
                "output_stage": self.output_stage.to_dict()}

    def state_dict(self) -> dict:
        """Everything needed to resume bit-identically (copies)."""
        self.settle()
        return {
            "config": self.config_dict(),
            "weights": self._w.copy(),
            "weights_read": self._w_read.copy(),
            "cell": self._cell.copy(),
            "reference": None if self._reference is None else self._reference.copy(),
            "pulses": self._pulses.copy(),
            "counters": {k: int(v) for k, v in zip(COUNTER_NAMES, self._counts)},
            "rng": {k: int(v) for k, v in zip(RNG_NAMES, self._rng)},
            "sense_amp_threshold": self._sa_threshold.copy(),
            "sense_amp_sign": self._sa_sign.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.settle()
        cfg = state["config"]
        if (cfg["rows"], cfg["cols"]) != (self.rows, self.cols):
            raise ValueError(f"CrossbarArray.load_state_dict: shape {(cfg['rows'], cfg['cols'])} does not match "
                             f"{(self.rows, self.cols)}")
        self._w[...] = state["weights"]
        if self._w_read is not self._w:
            self._w_read[...] = state["weights_read"]
        self._cell[...] = state["cell"]
        ref = state.get("reference")
        self._reference = None if ref is None else np.array(ref, dtype=np.float32)
        self._pulses[...] = state["pulses"]
        for k, v in state["counters"].items():
            self._counts[COUNTER_NAMES.index(k)] = int(v)
        for k, v in state["rng"].items():
            self._rng[RNG_NAMES.index(k)] = int(v)
        if "sense_amp_threshold" in state:
            self.set_sense_amp(state["sense_amp_threshold"], state["sense_amp_sign"])
        self._invalidate()

    @classmethod
    def from_state_dict(cls, state: dict) -> "CrossbarArray":
        cfg = state["config"]
        arr = cls(cfg["rows"], cfg["cols"], device=DeviceConfig.from_dict(cfg["device"]),
                  io=IOConfig.from_dict(cfg["io"]), update=UpdateConfig.from_dict(cfg["update"]), seed=cfg["seed"],
                  backward_io=IOConfig.from_dict(cfg["backward_io"]), tile_rows=cfg["tile_rows"],
                  tile_cols=cfg["tile_cols"], output_stage=OutputStage.from_dict(cfg.get("output_stage", {})))
        arr.load_state_dict(state)
        return arr


__all__ = ["CrossbarArray"]
