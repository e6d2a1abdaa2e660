r"""BasisN-style global basis decomposition of every layer's kernels.

Reconstructed from the BasisN abstract (Eldebiky et al., ICCAD 2024, arXiv
2407.03738) and its public analogue, Learning Filter Basis (Li et al., ICCV 2019);
call it *BasisN-style*.  The choices not given by the paper are fields of
:class:`BasisDecomposition`.

Segments.  A layer's weight is unrolled to ``W`` of shape ``(C_out, F)`` (conv:
``F = C_in k_h k_w`` in torch's ``weight.view(C_out, -1)`` order; linear:
``F = in_features``), zero-padded to ``S R`` columns, ``S = ceil(F / R)``, and cut
into ``S`` segments per output of length ``R = segment_rows`` (the array's word
lines).  Each segment is a combination of ``M`` bases:

.. math::
    W[o, sR:(s+1)R] \approx \sum_{i=1}^{M} c_{o s i}\, b_i, \qquad b_i \in \mathbb{R}^R .

With ``sharing="global"`` one basis set serves every layer; ``"per_stage"``
gives a set per stage and ``"per_layer"`` one per layer (for comparison).

Layer output.  With the input cut the same way, ``x_s = x[sR:(s+1)R]``,

.. math::
    y_o = \sum_s \sum_i c_{o s i}\,(b_i^\top x_s) = (W x)_o ,

so the crossbars only compute the projections ``p_{s i} = b_i^T x_s`` (bases are
array columns; an input segment drives the word lines) and a digital unit does the
coefficient MACs ``y = \sum_{s,i} c_{o s i} p_{s i}``.

Initialisation.  ``init="svd"``: the stacked segments of all layers sharing a set
(each layer's segments divided by that layer's RMS weight, so small layers count)
give the bases as their top-``M`` right singular vectors; ``init="kmeans"``: ``M``
k-means centroids of the normalised segments.  Coefficients start at the
least-squares fit ``C = W_seg B^+``.  With ``M = R`` and SVD the bases are a complete
orthonormal basis and the decomposition is exact.

Coefficients.  ``coeff_bits = q > 0``: symmetric uniform quantisation with one scale
per output channel, :math:`s_o = \max_{s,i} |c_{osi}| / (2^{q-1}-1)`,
:math:`\hat c = s_o\,\mathrm{round}(c / s_o)`, trained through a straight-through
estimator (:math:`\partial \hat c / \partial c = 1`).  ``coeff_bits = 0`` keeps them
in float32 ("infinite bits").

Training.  :class:`BasisNet` is an ``nn.Module`` whose conv/linear layers compute
with the reconstructed weights ``W = C B`` (digital, fast), so bases and
coefficients train jointly by plain SGD (``train_bases=False`` freezes the bases).
:class:`BasisNModel` then runs the same network with the bases on
:class:`xbarsim.crossbar.CrossbarArray`\ s (all read nonidealities of their
``IOConfig``) and the coefficient MACs digital in torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import IOConfig
from xbarsim.devices import DeviceConfig
from xbarsim.devices.validation import Serialisable, require_bool, require_choice, require_number

from .layers import unfold_input
from .provider import ArrayBank

__all__ = ["BasisDecomposition", "BasisLayer", "BasisNet", "BasisNModel", "segment_weight", "init_bases",
           "quantize_coefficients", "relative_error", "SHARING", "INITS"]

SHARING = ("global", "per_stage", "per_layer")
INITS = ("svd", "kmeans")


@dataclass(frozen=True)
class BasisDecomposition(Serialisable):
    """How every layer's kernels are written as combinations of shared bases.

    Attributes:
        n_bases: ``M``, bases per basis set (vectors of length ``segment_rows``).
        segment_rows: ``R``, segment length = crossbar word lines driven per read.
        coeff_bits: ``q``, bits of the signed coefficients (per-output scale);
            ``0`` = float32 (infinite bits).
        sharing: ``"global"`` (one set for all layers, BasisN), ``"per_stage"``, ``"per_layer"``.
        init: ``"svd"`` or ``"kmeans"`` of the layers' segments.
        train_bases: ``False`` freezes the bases after initialisation (only coefficients train).
        kmeans_iters: Lloyd iterations of the k-means initialisation.
    """

    n_bases: int = 16
    segment_rows: int = 32
    coeff_bits: int = 8
    sharing: str = "global"
    init: str = "svd"
    train_bases: bool = True
    kmeans_iters: int = 25

    def __post_init__(self) -> None:
        n = "BasisDecomposition"
        require_number(n, "n_bases", self.n_bases, 1, 4096, integer=True)
        require_number(n, "segment_rows", self.segment_rows, 1, 4096, integer=True)
        require_number(n, "coeff_bits", self.coeff_bits, 0, 16, integer=True)
        if self.coeff_bits == 1:
            raise ValueError("BasisDecomposition.coeff_bits = 1 is outside the allowed values {0} U [2, 16] "
                             "(signed symmetric coefficients need at least 2 bits; 0 = float)")
        require_choice(n, "sharing", self.sharing, SHARING)
        require_choice(n, "init", self.init, INITS)
        require_bool(n, "train_bases", self.train_bases)
        require_number(n, "kmeans_iters", self.kmeans_iters, 1, 10000, integer=True)


# ----------------------------------------------------------------------------- segments
def segment_weight(w2d: torch.Tensor, segment_rows: int) -> torch.Tensor:
    """``(C_out, F) -> (C_out, S, R)``, zero-padded to ``S R = ceil(F/R) R`` columns."""
    c_out, fan_in = w2d.shape
    s = math.ceil(fan_in / segment_rows)
    pad = s * segment_rows - fan_in
    if pad:
        w2d = F.pad(w2d, (0, pad))
    return w2d.reshape(c_out, s, segment_rows)


def init_bases(segment_sets: list, n_bases: int, method: str = "svd", iters: int = 25,
               seed: int = 0) -> torch.Tensor:
    """Bases ``(M, R)`` fitted to the stacked segments (each entry ``(N_l, R)``, already normalised).

    ``svd``: top-``M`` right singular vectors (orthonormal; if ``M > R`` the extra
    bases are random unit vectors).  ``kmeans``: ``M`` Lloyd centroids, seeded by
    ``M`` distinct segments drawn with ``seed``.
    """
    x = torch.cat([s.reshape(-1, s.shape[-1]) for s in segment_sets]).double()
    r = x.shape[1]
    gen = torch.Generator().manual_seed(int(seed))
    if method == "svd":
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        b = vh[:min(n_bases, r)]
        if n_bases > r:
            extra = torch.randn(n_bases - r, r, generator=gen, dtype=torch.float64)
            b = torch.cat([b, extra / extra.norm(dim=1, keepdim=True)])
        return b.float()
    if method == "kmeans":
        idx = torch.randperm(x.shape[0], generator=gen)[:n_bases]
        cent = x[idx].clone()
        if cent.shape[0] < n_bases:
            cent = torch.cat([cent, torch.randn(n_bases - cent.shape[0], r, generator=gen, dtype=torch.float64)])
        for _ in range(iters):
            assign = torch.cdist(x, cent).argmin(dim=1)
            for k in range(n_bases):
                members = x[assign == k]
                if len(members):
                    cent[k] = members.mean(dim=0)
        return cent.float()
    raise ValueError(f"init_bases: method must be one of {INITS}, got {method!r}")


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: D102
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        return g


def quantize_coefficients(c: torch.Tensor, bits: int) -> torch.Tensor:
    r"""Signed ``bits``-bit coefficients with one scale per output (first dim), straight-through gradient.

    :math:`s_o = \max|c_o| / (2^{q-1}-1)`, :math:`\hat c = s_o\,\mathrm{round}(c/s_o)`;
    ``bits = 0`` returns ``c`` unchanged.
    """
    if bits == 0:
        return c
    levels = 2 ** (bits - 1) - 1
    scale = c.detach().abs().reshape(c.shape[0], -1).amax(dim=1).clamp_min(1e-12) / levels
    scale = scale.reshape(-1, *([1] * (c.dim() - 1)))
    return _RoundSTE.apply(c / scale) * scale


# ----------------------------------------------------------------------------- layers
class BasisLayer(nn.Module):
    """A conv or linear layer whose weight is ``C B``: coefficients ``(C_out, S, M)`` times shared bases.

    ``basis_set`` names the set of :class:`BasisNet` it draws its bases from.
    ``forward(x, bases)`` computes digitally with the reconstructed weight.
    """

    def __init__(self, module: nn.Module, basis_set: str, coefficients: torch.Tensor, segment_rows: int,
                 coeff_bits: int) -> None:
        super().__init__()
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise ValueError(f"BasisLayer supports groups=1 only, got {module}")
            self.kind = "conv"
            self.conv_args = dict(kernel_size=module.kernel_size, stride=module.stride, padding=module.padding,
                                  dilation=module.dilation)
            self.weight_shape = tuple(module.weight.shape)
        elif isinstance(module, nn.Linear):
            self.kind = "linear"
            self.conv_args = {}
            self.weight_shape = tuple(module.weight.shape)
        else:
            raise ValueError(f"BasisLayer wraps nn.Conv2d or nn.Linear, got {type(module).__name__}")
        self.out_features = self.weight_shape[0]
        self.fan_in = int(np.prod(self.weight_shape[1:]))
        self.segment_rows = segment_rows
        self.n_segments = math.ceil(self.fan_in / segment_rows)
        self.coeff_bits = coeff_bits
        self.basis_set = basis_set
        self.coefficients = nn.Parameter(coefficients.clone().float())
        self.bias = None if module.bias is None else nn.Parameter(module.bias.detach().clone())

    def quantized_coefficients(self) -> torch.Tensor:
        return quantize_coefficients(self.coefficients, self.coeff_bits)

    def weight(self, bases: torch.Tensor) -> torch.Tensor:
        """Reconstructed weight ``(C_out, ...)`` from quantised coefficients and ``bases`` ``(M, R)``."""
        w = torch.einsum("osm,mr->osr", self.quantized_coefficients(), bases)
        w = w.reshape(self.out_features, -1)[:, :self.fan_in]
        return w.reshape(self.weight_shape)

    def forward(self, x: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
        w = self.weight(bases)
        if self.kind == "conv":
            a = self.conv_args
            return F.conv2d(x, w, self.bias, stride=a["stride"], padding=a["padding"], dilation=a["dilation"])
        return F.linear(x, w, self.bias)

    def segments_of_input(self, x: torch.Tensor):
        """The input as segments ``(N * S, R)`` plus what :meth:`combine` needs to rebuild the output."""
        if self.kind == "conv":
            x2, geometry = unfold_input(x, tuple(self.conv_args["kernel_size"]), tuple(self.conv_args["stride"]),
                                        self.conv_args["padding"], tuple(self.conv_args["dilation"]))
        else:
            geometry = x.shape[:-1]
            x2 = x.reshape(-1, self.fan_in)
        pad = self.n_segments * self.segment_rows - self.fan_in
        if pad:
            x2 = F.pad(x2, (0, pad))
        return x2.reshape(-1, self.segment_rows), (x2.shape[0], geometry)

    def combine(self, projections: torch.Tensor, info) -> torch.Tensor:
        """Digital coefficient MACs: ``y_o = sum_{s,i} c_osi p_si`` (+ bias), in the layer's output layout."""
        n, geometry = info
        p = projections.reshape(n, self.n_segments, -1)
        y = torch.einsum("nsm,osm->no", p, self.quantized_coefficients())
        if self.bias is not None:
            y = y + self.bias
        if self.kind == "conv":
            b, n_pos, h_out, w_out = geometry
            return y.reshape(b, n_pos, -1).transpose(1, 2).reshape(b, -1, h_out, w_out)
        return y.reshape(*geometry, -1)

    def extra_repr(self) -> str:
        return (f"{self.kind}, weight={self.weight_shape}, segments={self.n_segments}x{self.segment_rows}, "
                f"bases={self.basis_set!r}, coeff_bits={self.coeff_bits or 'float'}")


class _Slot(nn.Module):
    """Stands in the host network for a converted layer and forwards to its owner's basis layer."""

    def __init__(self, owner: "BasisNet", name: str) -> None:
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # not a submodule (no cycle in the module tree)
        self.layer_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._owner.run_layer(self.layer_name, x)


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent = root
    parts = name.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    setattr(parent, parts[-1], new)


class BasisNet(nn.Module):
    r"""A network whose every ``nn.Conv2d`` / ``nn.Linear`` is a :class:`BasisLayer` over shared bases.

    Args:
        model: a trained digital network; it is copied, not changed.
        decomposition: :class:`BasisDecomposition`.
        stages: ``{layer name: stage}`` for ``sharing="per_stage"`` (default: one stage per
            top-level child of ``model``).
        seed: seeds the k-means initialisation.

    ``bases[set_name]`` are ``nn.Parameter`` ``(M, R)``: ``"global"``, ``"stage<k>"`` or the
    layer's name.  ``layers[name]`` are the :class:`BasisLayer`\ s in execution order of
    ``model.named_modules()``.
    """

    def __init__(self, model: nn.Module, decomposition: BasisDecomposition, stages: Optional[dict] = None,
                 seed: int = 0) -> None:
        super().__init__()
        import copy

        if not isinstance(decomposition, BasisDecomposition):
            raise ValueError(f"decomposition must be a BasisDecomposition, got {decomposition!r}")
        self.decomposition = decomposition
        d = decomposition
        if type(model) in (nn.Conv2d, nn.Linear):
            raise ValueError("BasisNet needs a network around its layers; wrap a single layer in nn.Sequential")
        self.net = copy.deepcopy(model)
        names = [(n, m) for n, m in self.net.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]
        if not names:
            raise ValueError("BasisNet: the model has no nn.Conv2d or nn.Linear layer")
        self.layer_names = [n for n, _ in names]
        set_of = {}
        for n, _ in names:
            if d.sharing == "global":
                set_of[n] = "global"
            elif d.sharing == "per_layer":
                set_of[n] = n.replace(".", "_")
            else:
                stage = (stages or {}).get(n, n.split(".")[0])
                set_of[n] = f"stage_{stage}"
        self.set_of = set_of
        segs = {}
        for n, m in names:
            w = m.weight.detach().reshape(m.weight.shape[0], -1).float()
            rms = w.pow(2).mean().sqrt().clamp_min(1e-12)
            segs[n] = (segment_weight(w, d.segment_rows), rms)
        bases = {}
        for set_name in dict.fromkeys(set_of.values()):
            members = [segs[n][0].reshape(-1, d.segment_rows) / segs[n][1] for n in set_of if set_of[n] == set_name]
            b = init_bases(members, d.n_bases, d.init, d.kmeans_iters, seed)
            bases[set_name] = nn.Parameter(b, requires_grad=d.train_bases)
        self.bases = nn.ParameterDict(bases)
        self.layers = nn.ModuleDict()
        for n, m in names:
            b = self.bases[set_of[n]].detach().double()
            c = segs[n][0].double() @ torch.linalg.pinv(b)  # least squares per segment
            self.layers[n.replace(".", "_")] = BasisLayer(m, set_of[n], c.float(), d.segment_rows, d.coeff_bits)
            _set_submodule(self.net, n, _Slot(self, n))
        self.analog = None  # set by BasisNModel: callable (layer, segments) -> projections

    def layer(self, name: str) -> BasisLayer:
        return self.layers[name.replace(".", "_")]

    def run_layer(self, name: str, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer(name)
        if self.analog is None:
            return layer(x, self.bases[layer.basis_set])
        segments, info = layer.segments_of_input(x)
        return layer.combine(self.analog(name, layer, segments), info)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def relative_error(basis_net: BasisNet, model: nn.Module) -> dict:
    """``||W - C B||_F / ||W||_F`` per layer against the digital ``model`` the net was built from."""
    mods = dict(model.named_modules())
    out = {}
    with torch.no_grad():
        for n in basis_net.layer_names:
            w = mods[n].weight.detach()
            layer = basis_net.layer(n)
            w_hat = layer.weight(basis_net.bases[layer.basis_set])
            out[n] = float((w - w_hat).norm() / w.norm().clamp_min(1e-12))
    return out


# ----------------------------------------------------------------------------- on crossbars
class BasisNModel(nn.Module):
    r"""A :class:`BasisNet` running its basis projections on crossbar arrays (inference).

    Every basis set ``(M, R)`` is cut into groups of ``array_rows`` bases; group ``g`` is
    one block of an :class:`ArrayBank` of ``n_arrays`` arrays with ``array_rows``
    outputs (bit lines, one basis each) and ``array_cols = R`` inputs (word lines).
    Before programming, each group is divided by its largest magnitude ``a_g`` (cells
    hold ``b / a_g``) and the projections are multiplied back by ``a_g`` digitally.

    A layer's input segments ``(N S, R)`` are read through every group's array (the
    bank programs a group only if it is not resident: never, once the bases fit), the
    projections ``(N S, M)`` go to the layer's digital coefficient MACs.  With
    ``replicas > 1`` each group is programmed into that many arrays and a layer's
    segment reads are split evenly among the copies (parallel reads).

    ``programmed()`` programs every group up front (the one-time setup).
    """

    def __init__(self, basis_net: BasisNet, n_arrays: int, array_rows: int, device: DeviceConfig | None = None,
                 io: IOConfig | None = None, seed: int = 0, replicas: int = 1) -> None:
        super().__init__()
        self.basis_net = basis_net
        r = basis_net.decomposition.segment_rows
        self.bank = ArrayBank(n_arrays, array_rows, r, device=device, io=io, seed=seed)
        require_number("BasisNModel", "replicas", replicas, 1, n_arrays, integer=True)
        self.replicas = int(replicas)
        self.groups: dict[str, list] = {}
        with torch.no_grad():
            for set_name, b in basis_net.bases.items():
                b = b.detach().float().numpy()
                blocks = []
                for g0 in range(0, b.shape[0], array_rows):
                    blk = b[g0:g0 + array_rows]
                    scale = float(np.abs(blk).max()) or 1.0
                    blocks.append((g0, g0 + blk.shape[0], np.ascontiguousarray(blk / scale), scale))
                self.groups[set_name] = blocks
        basis_net.analog = self._project

    def group_keys(self) -> list:
        """Every block the bank may hold: ``(set, group, replica)``."""
        return [(s, g, k) for s, blocks in self.groups.items() for g in range(len(blocks))
                for k in range(self.replicas)]

    def program(self) -> None:
        """One-time setup: program every group (and replica) that fits, in order."""
        for s, g, k in self.group_keys():
            self.bank.load((s, g, k), self.groups[s][g][2])

    def _project(self, name: str, layer: BasisLayer, segments: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(segments.detach().float().numpy())
        out = np.empty((x.shape[0], self.basis_net.decomposition.n_bases), dtype=np.float32)
        chunks = np.array_split(np.arange(x.shape[0]), self.replicas)
        for g, (i0, i1, block, scale) in enumerate(self.groups[layer.basis_set]):
            for k, idx in enumerate(chunks):
                if len(idx) == 0:
                    continue
                arr = self.bank.load((layer.basis_set, g, k), block)
                y = arr.forward(x[idx[0]:idx[-1] + 1])
                out[idx[0]:idx[-1] + 1, i0:i1] = y[:, :i1 - i0] * scale
        return torch.from_numpy(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.basis_net(x)

    def detach(self) -> BasisNet:
        """Give the basis net back its digital forward."""
        self.basis_net.analog = None
        return self.basis_net
