r"""Binary neural-network layers (BinaryNet-style) with input splitting built in.

Courbariaux, Hubara, Soudry, El-Yaniv & Bengio, "Binarized neural networks",
arXiv 1602.02830 (2016); splitting after Kim, Kim & Kim, "Neural
network-hardware co-design for scalable RRAM-based BNN accelerators", arXiv
1811.02187 (2018), whose public Torch7 code fixes the details below.

Binarisation (straight-through estimators):

* weights: ``w_b = +1 if w >= 0 else -1``; the real latent ``w`` receives the
  gradient unchanged (:class:`SignSTE`);
* activations: ``a = sign(HardTanh(y))``, ties to +1; backward passes the gradient
  where ``|y| <= 1`` (the clipped STE, :class:`BinaryActivation`).

A :class:`BinaryBlock` is one layer of a BNN: binary weights ``(out, N)`` over an
unrolled fan-in of ``N`` inputs (conv: ``N = C_in k k`` in that order, torch's
``weight.view(out, -1)``), cut into ``G`` contiguous *groups* (``G = 1``:
unsplit).  Group ``g`` computes its own pre-activation over its inputs only,

.. math:: s_{g,j} = \sum_{n \in g} w_{b,jn} x_n ,

then (conv) max-pooling, then its own BatchNorm and sign,
``a_{g,j} = sign(BN_{g,j}(s_{g,j}))``, and the groups are merged by a majority
vote ``y_j = +1 if sum_g a_{g,j} >= 0 else -1`` whose backward copies the
gradient to every group (:class:`MajorityMerge`).  With ``G = 1`` this is an
ordinary BinaryNet layer (conv -> pool -> BN -> sign).  The classifier block ends
in a BatchNorm (no sign), as in BinaryNet.  Per-group biases are omitted: the
BatchNorm shift absorbs them.

Inference through folded thresholds.  For ``gamma != 0``,
``BN(s) = gamma (s - mu)/sqrt(var + eps) + beta >= 0`` is ``c s >= c theta`` with
``theta = mu - beta sqrt(var + eps)/gamma`` and ``c = sign(gamma)``
(:func:`fold_threshold`).  Every pre-activation in these networks is an integer
(±1 inputs times ±1 weights; the first layer reads 8-bit pixels as integers
0..255, :class:`PixelQuant`), so the threshold is rounded to the integer
``ceil(theta)`` (``c = +1``) or ``floor(theta)`` (``c = -1``) without changing any
decision; ``gamma = 0`` gives a constant ``sign(beta)``.  In ``eval()`` mode the
blocks decide through these integer thresholds, which is exactly what a sense
amplifier with that threshold does (:mod:`xbarsim.mapping.bnn_deploy`), so an
ideal deployment reproduces the eval-mode network bit for bit.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SignSTE", "BinaryActivation", "MajorityMerge", "PixelQuant", "BinaryBlock", "fold_threshold",
           "threshold_decisions", "group_bounds", "equal_group_count", "THRESHOLD_LIMIT"]

THRESHOLD_LIMIT = float(2 ** 24)  # |theta| is clamped here: float32 integers are exact below it


def _pm1(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class SignSTE(torch.autograd.Function):
    """Weight binarisation ``+1 if w >= 0 else -1``; the gradient passes straight through."""

    @staticmethod
    def forward(ctx, w):  # type: ignore[override]
        return _pm1(w)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g


class BinaryActivation(torch.autograd.Function):
    """``sign(HardTanh(y))`` (ties to +1); backward ``g * 1{|y| <= 1}`` (clipped STE)."""

    @staticmethod
    def forward(ctx, y):  # type: ignore[override]
        ctx.save_for_backward(y)
        return _pm1(y)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        return g.masked_fill(y.abs() > 1, 0.0)


class MajorityMerge(torch.autograd.Function):
    """``y = +1 if sum_g a_g >= 0 else -1`` over dim 1 (ties to +1); backward copies ``dy`` to every group."""

    @staticmethod
    def forward(ctx, a):  # type: ignore[override]
        ctx.groups = a.shape[1]
        return _pm1(a.sum(dim=1))

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g.unsqueeze(1).expand(-1, ctx.groups, *g.shape[1:]).contiguous()


class PixelQuant(nn.Module):
    """8-bit input: ``round(255 x)`` for pixels ``x`` in [0, 1] (integers 0..255, exact in float32)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 255.0)


def group_bounds(n_inputs: int, array_rows: int | None, equal_groups: bool = False) -> list[tuple[int, int]]:
    """Contiguous groups ``[(start, stop), ...]`` of at most ``array_rows`` inputs covering ``0..n_inputs``.

    ``array_rows=None`` (or ``>= n_inputs``): one group.  Default rule: groups of
    ``array_rows`` inputs, the last one shorter.  ``equal_groups``: the authors'
    rule, ``G`` = the smallest integer ``>= ceil(N/A)`` dividing ``N``, all groups ``N/G``.
    """
    if array_rows is None or array_rows >= n_inputs:
        return [(0, n_inputs)]
    if array_rows < 1:
        raise ValueError(f"group_bounds: array_rows must be >= 1, got {array_rows}")
    size = n_inputs // equal_group_count(n_inputs, array_rows) if equal_groups else array_rows
    return [(a, min(a + size, n_inputs)) for a in range(0, n_inputs, size)]


def equal_group_count(n_inputs: int, array_rows: int) -> int:
    """The smallest ``G >= ceil(N/A)`` that divides ``N`` (Kim et al.'s conv rule)."""
    g = -(-n_inputs // array_rows)
    while n_inputs % g:
        g += 1
    return g


def fold_threshold(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer sense-amp thresholds ``theta`` and comparison signs ``c`` equal to ``sign(BN(s))`` for integer ``s``.

    Computed in float64 from the running statistics: ``theta = mu - beta sqrt(var + eps)/gamma``,
    rounded up (``c = +1``, ``gamma > 0``) or down (``c = -1``, ``gamma < 0``); ``gamma = 0``
    gives ``theta = -/+ THRESHOLD_LIMIT`` (always +1 if ``beta >= 0``, else always -1).
    Returns float32 tensors of shape ``(features,)``.
    """
    gamma = bn.weight.detach().double()
    beta = bn.bias.detach().double()
    mu = bn.running_mean.detach().double()
    std = torch.sqrt(bn.running_var.detach().double() + bn.eps)
    safe = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
    theta = mu - beta * std / safe
    sign = torch.where(gamma < 0, -torch.ones_like(gamma), torch.ones_like(gamma))
    theta = torch.where(sign > 0, torch.ceil(theta), torch.floor(theta))
    const = torch.where(beta >= 0, -THRESHOLD_LIMIT, THRESHOLD_LIMIT)
    theta = torch.where(gamma == 0, const.to(theta.dtype), theta)
    return theta.clamp(-THRESHOLD_LIMIT, THRESHOLD_LIMIT).float(), sign.float()


def threshold_decisions(s: torch.Tensor, theta: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """``+1 if c s >= c theta else -1``; ``theta``/``sign`` index dim 1 of ``s`` (features)."""
    shape = (1, -1) + (1,) * (s.dim() - 2)
    th, c = theta.view(shape), sign.view(shape)
    return _pm1(c * (s - th))


class BinaryBlock(nn.Module):
    """One BNN layer: binary weights over ``G`` input groups, (pool,) per-group BN, sign, majority merge.

    Args:
        kind: ``"linear"`` or ``"conv"`` (``kernel_size`` x ``kernel_size``, stride 1, ``padding``).
        in_features: ``N`` for linear, ``C_in`` for conv.
        out_features: outputs (``C_out`` for conv).
        groups: ``[(start, stop), ...]`` over the unrolled fan-in (default: one group).
        pool: max-pool size applied to each group's pre-activation before its BN (conv; 0 = none).
        real_input: the first layer; its input is not ±1 (8-bit pixels).
        classifier: end in BN only (logits), no sign; must be unsplit.
    """

    def __init__(self, kind: str, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1,
                 groups: list[tuple[int, int]] | None = None, pool: int = 0, real_input: bool = False,
                 classifier: bool = False) -> None:
        super().__init__()
        if kind not in ("linear", "conv"):
            raise ValueError(f"BinaryBlock.kind = {kind!r} is not allowed; choose 'linear' or 'conv'")
        self.kind, self.in_features, self.out_features = kind, int(in_features), int(out_features)
        self.kernel_size, self.padding = (int(kernel_size), int(padding)) if kind == "conv" else (1, 0)
        self.fan_in = self.in_features * self.kernel_size ** 2
        self.groups = [tuple(g) for g in (groups or [(0, self.fan_in)])]
        if self.groups[0][0] != 0 or self.groups[-1][1] != self.fan_in or \
                any(a[1] != b[0] for a, b in zip(self.groups, self.groups[1:])) or any(a >= b for a, b in self.groups):
            raise ValueError(f"BinaryBlock.groups must be contiguous, non-empty and cover 0..{self.fan_in}, "
                             f"got {self.groups}")
        sizes = [b - a for a, b in self.groups]
        if any(z != sizes[0] for z in sizes[:-1]) or sizes[-1] > sizes[0]:
            raise ValueError(f"BinaryBlock.groups must all have the first group's size except a shorter last one, "
                             f"got sizes {sizes}")
        if classifier and len(self.groups) > 1:
            raise ValueError("BinaryBlock: the classifier stays unsplit")
        self.pool, self.real_input, self.classifier = int(pool), bool(real_input), bool(classifier)
        shape = (out_features, in_features) if kind == "linear" else (out_features, in_features, kernel_size,
                                                                      kernel_size)
        self.weight = nn.Parameter(torch.empty(shape))
        bound = math.sqrt(6.0 / (self.fan_in + out_features))  # Glorot uniform, clipped to the [-1, 1] latent range
        nn.init.uniform_(self.weight, -min(bound, 1.0), min(bound, 1.0))
        n_bn = len(self.groups) * out_features
        self.bn = nn.BatchNorm1d(n_bn) if kind == "linear" else nn.BatchNorm2d(n_bn)
        self._max_group = max(b - a for a, b in self.groups)

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def extra_repr(self) -> str:
        k = f", kernel={self.kernel_size}, padding={self.padding}" if self.kind == "conv" else ""
        return (f"{self.kind}, in={self.in_features}, out={self.out_features}{k}, groups={self.n_groups}, "
                f"pool={self.pool}, real_input={self.real_input}, classifier={self.classifier}")

    def binary_weight(self) -> torch.Tensor:
        """``(out, N)`` ±1 weights (STE to the latent weights)."""
        return SignSTE.apply(self.weight).reshape(self.out_features, -1)

    def unfold(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Conv input as rows ``(B, L, N)`` with its output size; linear input unchanged ``(B, 1, N)``."""
        if self.kind == "linear":
            return x.unsqueeze(1), (1, 1)
        h, w = x.shape[-2:]
        cols = F.unfold(x, self.kernel_size, padding=self.padding)  # (B, N, L)
        ho, wo = h + 2 * self.padding - self.kernel_size + 1, w + 2 * self.padding - self.kernel_size + 1
        return cols.transpose(1, 2), (ho, wo)

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """Per-group sums ``s``: linear ``(B, G*out)``; conv ``(B, G*out, H, W)`` (before pooling)."""
        wb = self.binary_weight()
        G, out = self.n_groups, self.out_features
        if G == 1:
            if self.kind == "linear":
                return F.linear(x, wb)
            return F.conv2d(x, wb.view_as(self.weight), padding=self.padding)
        if self.kind == "conv":  # one conv over group-masked copies of the weights (the authors' masking)
            mask = torch.zeros(G, 1, self.fan_in, dtype=wb.dtype)
            for g, (a, b) in enumerate(self.groups):
                mask[g, :, a:b] = 1.0
            wg = (wb.unsqueeze(0) * mask).reshape(G * out, *self.weight.shape[1:])
            return F.conv2d(x, wg, padding=self.padding)
        n = self._max_group
        N = self.fan_in
        if n * G == N:  # equal groups: views, no copies
            xs, ws = x.view(-1, G, n), wb.view(out, G, n).permute(1, 2, 0)
        else:  # zero-padded groups (zero inputs times zero weights add nothing)
            xs = F.pad(x, (0, n * G - N)).view(-1, G, n)
            ws = F.pad(wb, (0, n * G - N)).view(out, G, n).permute(1, 2, 0)
        s = torch.bmm(xs.transpose(0, 1), ws)  # (G, B, out)
        return s.permute(1, 0, 2).reshape(x.shape[0], G * out)

    def pooled(self, s: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(s, self.pool) if self.pool > 1 else s

    def merge(self, a: torch.Tensor) -> torch.Tensor:
        """Majority of the groups' ±1 outputs (identity for one group)."""
        if self.n_groups == 1:
            return a
        return MajorityMerge.apply(a.view(a.shape[0], self.n_groups, self.out_features, *a.shape[2:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.pooled(self.preactivation(x))
        if self.classifier:
            return self.bn(s)
        if self.training:
            a = BinaryActivation.apply(self.bn(s))
        else:
            a = threshold_decisions(s, *fold_threshold(self.bn))
        return self.merge(a)


def numpy_thresholds(block: BinaryBlock) -> tuple[np.ndarray, np.ndarray]:
    """Folded ``(theta, c)`` of a block as float32 ``(G, out)`` arrays (group-major, as its BN features)."""
    theta, sign = fold_threshold(block.bn)
    shape = (block.n_groups, block.out_features)
    return theta.numpy().reshape(shape), sign.numpy().reshape(shape)
