r"""A trained BNN deployed on :class:`~xbarsim.crossbar.CrossbarArray` s with 1-bit sense amplifiers.

Each :class:`~xbarsim.mapping.bnn_layers.BinaryBlock` becomes crossbar arrays
(CrossSim-style: one small core per mapping scheme):

* every ±1 weight is a complementary cell pair
  (:class:`~xbarsim.devices.BinaryCellConfig`), stored as the array's conductance
  ``G+`` with the per-weight reference ``G-``, so a read sees ``G+ - G-``;
  the cells are sampled from the config and a seed (one Monte Carlo device sample);
* a hidden block with ``G`` input groups is one array per group (a
  ``CrossbarArray`` input tile of the group's size); every output line of every
  group ends in a sense amplifier whose threshold is the group's folded BatchNorm
  threshold times the nominal pair contrast ``G_on - G_off``, with the comparison
  flipped for ``gamma < 0`` (:func:`~xbarsim.mapping.bnn_layers.fold_threshold`);
* unpooled blocks merge the groups in the array (``OutputStage(tile_merge="majority")``);
  pooled conv blocks read each group's array separately, max-pool the decisions
  digitally (``c maxpool(c a)``: OR of the decisions for ``c = +1``, AND for ``c = -1``,
  which equals pooling the currents before the comparison) and then take the
  majority (:func:`xbarsim.crossbar.majority`);
* the classifier (unsplit) is read through an ADC; its currents, divided by the
  nominal contrast, go through the block's BatchNorm digitally.

There is no ADC anywhere but at the classifier.  With the ideal cell
(``BinaryCellConfig()``) every current is the exact integer pre-activation and the
deployed network returns the eval-mode torch network's logits bit for bit.
Read noise enters as the array's output noise (:meth:`BinaryCellConfig.output_noise`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import CrossbarArray, IOConfig, OutputStage, majority
from xbarsim.devices import BinaryCellConfig, IdealDevice

from .bnn_layers import BinaryBlock, PixelQuant, numpy_thresholds

__all__ = ["DeployedBlock", "DeployedBNN", "deploy_bnn"]

PIXEL_BOUND = 255.0


def _io(cells: BinaryCellConfig, n_rows: int, bound: float) -> IOConfig:
    if cells.read_noise == 0:
        return IOConfig(perfect=True)
    return IOConfig(inp_bound=bound, inp_res=0.0, out_noise=cells.output_noise(n_rows, bound), out_res=0.0,
                    noise_management="none", bound_management="none")


def _program(arr: CrossbarArray, wb: np.ndarray, cells: BinaryCellConfig, seed: int) -> None:
    g_plus, g_minus = cells.sample_pairs(wb, seed)
    arr.set_reference(g_minus)
    arr.set_weights(g_plus - g_minus)  # stores G = W + G_ref = G+


@dataclass
class DeployedBlock:
    """One block on arrays: ``arrays`` (one, or one per group when pooled), its thresholds and BN."""

    block: BinaryBlock
    arrays: list[CrossbarArray]
    contrast: float

    def program(self, cells: BinaryCellConfig, seed: int) -> None:
        """Sample and write the cells of every array (one Monte Carlo device sample) and set its sense amps."""
        blk = self.block
        wb = blk.binary_weight().detach().numpy()
        bound = PIXEL_BOUND if blk.real_input else 1.0
        self.contrast = cells.contrast
        theta, sign = (None, None) if blk.classifier else numpy_thresholds(blk)
        if len(self.arrays) > 1 or (blk.pool > 1 and not blk.classifier):  # one array per group
            for g, (arr, (a, b)) in enumerate(zip(self.arrays, blk.groups)):
                arr.io = _io(cells, b - a, bound)
                _program(arr, wb[:, a:b], cells, seed + 7919 * g)
                arr.set_sense_amp(theta[g] * np.float32(cells.contrast), sign[g])
            return
        arr = self.arrays[0]
        arr.io = _io(cells, arr.tile_cols, bound)
        _program(arr, wb, cells, seed)
        if theta is not None:
            arr.set_sense_amp(theta * np.float32(cells.contrast), sign)

    def currents_to_logits(self, y: np.ndarray) -> torch.Tensor:
        s = torch.from_numpy(y / np.float32(self.contrast) if self.contrast != 1.0 else y)
        return self.block.bn(s)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x``: (B, N) for linear or (B, C, H, W) for conv -> ±1 outputs (or logits for the classifier)."""
        blk = self.block
        if blk.kind == "linear":
            rows, (ho, wo) = np.ascontiguousarray(x, dtype=np.float32), (1, 1)
        else:
            rows, (ho, wo) = im2col(x, blk.kernel_size, blk.padding)
        if blk.classifier:
            return self.currents_to_logits(self.arrays[0].forward(rows)).numpy()
        if blk.pool <= 1:  # unpooled: the array's sense amps and majority merge
            out = self.arrays[0].forward(rows)
            return out if blk.kind == "linear" else _to_maps(out, x.shape[0], ho, wo)
        decisions = []
        for arr, (a, b) in zip(self.arrays, blk.groups):
            d = _to_maps(arr.forward(np.ascontiguousarray(rows[:, a:b])), x.shape[0], ho, wo)
            c = arr.sense_amp_sign[0][None, :, None, None]
            decisions.append(c * F.max_pool2d(torch.from_numpy(c * d), blk.pool).numpy())
        return majority(np.stack(decisions, axis=0), axis=0)


def im2col(x: np.ndarray, k: int, padding: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Unrolled conv input: rows ``(B H_out W_out, C k k)`` in torch's ``(C, kh, kw)`` order, and the output size."""
    xp = np.pad(np.asarray(x, dtype=np.float32), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))  # (B, C, Ho, Wo, k, k)
    b, c, ho, wo = win.shape[:4]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * ho * wo, c * k * k), (ho, wo)


def _to_maps(y: np.ndarray, batch: int, ho: int, wo: int) -> np.ndarray:
    return np.ascontiguousarray(y.reshape(batch, ho, wo, -1).transpose(0, 3, 1, 2))


def _deploy_block(blk: BinaryBlock, cells: BinaryCellConfig, seed: int) -> DeployedBlock:
    """Build the block's arrays (one per group for pooled conv blocks) and program them."""
    out, n = blk.out_features, blk.fan_in
    common = dict(device=IdealDevice(), tile_rows=out, seed=seed)  # the seed drives the read-noise streams
    if blk.classifier:
        arrays = [CrossbarArray(out, n, tile_cols=n, **common)]
    elif blk.pool > 1 and blk.kind == "conv":
        arrays = [CrossbarArray(out, b - a, tile_cols=b - a, output_stage=OutputStage(kind="sense_amp"),
                                **dict(common, seed=seed + 7919 * g)) for g, (a, b) in enumerate(blk.groups)]
    else:
        size = blk.groups[0][1] - blk.groups[0][0]
        arrays = [CrossbarArray(out, n, tile_cols=size, output_stage=OutputStage(kind="sense_amp",
                                                                                 tile_merge="majority"), **common)]
    dep = DeployedBlock(blk, arrays, cells.contrast)
    dep.program(cells, seed)
    return dep


class DeployedBNN:
    """A BNN (``nn.Sequential`` of PixelQuant, BinaryBlocks and Flatten) on crossbar arrays.

    ``forward(x)`` takes the torch model's input (pixels in [0, 1]) and returns logits (torch, float32).
    """

    def __init__(self, model: nn.Sequential, cells: BinaryCellConfig | None = None, seed: int = 0) -> None:
        self.cells = cells if cells is not None else BinaryCellConfig()
        self.stages: list = []
        model = model.eval()
        for i, m in enumerate(model):
            if isinstance(m, BinaryBlock):
                self.stages.append(_deploy_block(m, self.cells, seed + 1_000_003 * i))
            elif isinstance(m, (PixelQuant, nn.Flatten)):
                self.stages.append(m)
            else:
                raise ValueError(f"DeployedBNN: cannot deploy a {type(m).__name__}")

    def program(self, cells: BinaryCellConfig, seed: int = 0) -> None:
        """Re-program every array with a new device sample (``cells``, ``seed``); the arrays are reused."""
        self.cells = cells
        for i, stage in enumerate(self.stages):
            if isinstance(stage, DeployedBlock):
                stage.program(cells, seed + 1_000_003 * i)

    @property
    def arrays(self) -> list[CrossbarArray]:
        return [a for s in self.stages if isinstance(s, DeployedBlock) for a in s.arrays]

    def counters(self) -> dict:
        """Summed op counters of all arrays (mvm, dac, adc, sense_amp, ...)."""
        keys = ("forward_mvm", "dac", "adc", "sense_amp")
        return {k: int(sum(a.counters[k] for a in self.arrays)) for k in keys}

    @torch.no_grad()
    def forward(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Logits of ``x``, in chunks of ``batch_size`` images (default: 2000 for an MLP, 100 for a CNN)."""
        if batch_size is None:
            batch_size = 100 if x.dim() > 2 else 2000
        outs = []
        for i in range(0, x.shape[0], batch_size):
            h: np.ndarray | torch.Tensor = x[i:i + batch_size]
            for stage in self.stages:
                if isinstance(stage, DeployedBlock):
                    h = stage.forward(h.numpy() if isinstance(h, torch.Tensor) else h)
                else:
                    h = stage(torch.from_numpy(h) if isinstance(h, np.ndarray) else h)
            outs.append(torch.as_tensor(h))
        return torch.cat(outs)

    __call__ = forward


def deploy_bnn(model: nn.Sequential, cells: BinaryCellConfig | None = None, seed: int = 0) -> DeployedBNN:
    """Program ``model`` (eval mode) onto arrays of ``cells``; one Monte Carlo device sample per ``seed``."""
    return DeployedBNN(model, cells, seed)
