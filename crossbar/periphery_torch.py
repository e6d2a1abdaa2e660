r"""The read periphery in torch: the autograd twin of the engine's compiled read.

One read ``y = W x`` of a sample ``x`` (``n_in`` inputs) through a tile ``W``
(``n_out x n_in``) under an :class:`xbarsim.crossbar.IOConfig` ``io`` goes through these
stages, in this order (aihwkit's analog MVM, ``simulator/tiles/analog_mvm.py``, with its
``IOParameters`` names):

1. noise management (:func:`noise_management_scale`): ``s = max_{j: x_j finite} |x_j|``
   (``abs_max``; capped at ``nm_thres`` when that is > 0), ``s = nm_thres`` (``constant``)
   or ``s = 1`` (``none``);
2. DAC (:func:`dac`): :math:`x_q = \mathrm{clip}(\mathrm{round}(x/(s f)/\Delta_{in})\,\Delta_{in},
   \pm b_{in}) + \sigma_{in}\xi`, with :math:`\Delta_{in}` = ``inp_res * 2 * inp_bound``
   (no rounding when ``inp_res <= 0``), :math:`b_{in}` = ``inp_bound``, :math:`\sigma_{in}` =
   ``inp_noise`` and ``f`` the bound-management factor (1 on the first read);
3. analog MVM: :math:`y = W x_q`;
4. read noise (:func:`add_noise`): :math:`y_i \mathrel{+}= \sqrt{\sigma_{out}^2 + \sigma_{w,i}^2}\,\xi_i`,
   :math:`\sigma_{out}` = ``out_noise`` and (:func:`weight_noise_std`) :math:`\sigma_{w,i}` =
   ``w_noise`` :math:`\lVert x_q\rVert_2` (``additive_constant``) or ``w_noise``
   :math:`\sqrt{\sum_j |W_{ij}|\,x_{qj}^2}` (``pcm_read``);
5. ADC (:func:`quantize`, :func:`clip`): :math:`y_q = \mathrm{clip}(\mathrm{round}(y/\Delta_{out})\,
   \Delta_{out}, \pm b_{out})`, :math:`\Delta_{out}` = ``out_res * 2 * out_bound``;
6. bound management (``iterative``, forward reads only): a sample with any output
   :math:`|\mathrm{round}(y/\Delta_{out})\,\Delta_{out}| > b_{out}` is read again from stage 2
   with :math:`f \leftarrow 2f`, while :math:`2f \le` ``io.bm_limit``;
7. the digital result :math:`s f\, y_q`; a sample with ``s = 0`` reads 0.

``round`` is round-half-to-even (``numpy.rint``), computed as ``round(v * (1/step)) * step``
like the compiled kernels, so that both put ties on the same side.  The conversions run in
float64 and the MVM in the input's dtype, as the engine does; with the noise off,
:func:`read` then equals ``CrossbarArray.forward`` / ``backward`` up to float32 summation
order (``tests/test_periphery.py``).  Random numbers come from a ``torch.Generator``, not
the engine's counter-based streams, so with noise on the two agree in distribution only.

Autograd: rounding is straight-through (forward: the rounded value; backward: identity),
clipping passes no gradient beyond its bounds, ``s``, ``f`` and the weight-noise std are
constants.

Non-finite inputs: a NaN reaches every output it touches, as in a matmul (a sample with a
NaN input reads NaN everywhere, also when ``s = 0``); ``+-inf`` is an out-of-range input
that the DAC clips to ``+-inp_bound``, so ``s`` is taken over the finite inputs only.

The compiled twin is :func:`xbarsim.crossbar.kernels._read_tiles` (and ``CrossbarArray._read``).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from .config import IOConfig

__all__ = ["read", "noise_management_scale", "dac", "weight_noise_std", "add_noise", "quantize", "clip",
           "ste_round", "finite_abs"]

Scale = Union[float, torch.Tensor]  # a stage parameter: one value, or one per sample / output


def _needs_grad(v: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and v.requires_grad


def ste_round(v: torch.Tensor, step: Scale) -> torch.Tensor:
    r"""Straight-through rounding to the grid: forward ``round(v * (1/step)) * step`` exactly, backward identity."""
    q = torch.round(v.detach() * (1.0 / step)) * step
    # v - v.detach() is 0 with gradient 1, except for an infinite v (inf - inf = NaN): there it is 0 with gradient 0
    return q + (v - v.detach()).nan_to_num(0.0)


def quantize(v: torch.Tensor, step: Scale, inplace: bool = False) -> torch.Tensor:
    r""":math:`\mathrm{round}(v/\Delta)\,\Delta` (round half to even); a float ``step <= 0``: ``v`` unchanged.

    ``step`` may be a tensor broadcasting against ``v`` (a grid in the units of a per-read full
    scale, as :mod:`xbarsim.mapping.nonideal` uses; it must be > 0).  Straight-through when ``v``
    needs a gradient; otherwise in place on ``v`` if ``inplace``.
    """
    if not isinstance(step, torch.Tensor) and step <= 0:
        return v
    if _needs_grad(v):
        return ste_round(v, step)
    if inplace:
        return v.mul_(1.0 / step).round_().mul_(step)
    return torch.round(v * (1.0 / step)) * step


def clip(v: torch.Tensor, bound: Scale, inplace: bool = False) -> torch.Tensor:
    r""":math:`\mathrm{clip}(v, \pm b)`; NaN stays NaN, ``+-inf`` becomes ``+-b``; in place if ``inplace`` and no gradient.

    ``bound`` may be a tensor broadcasting against ``v``.
    """
    if inplace and not _needs_grad(v):
        return v.clamp_(-bound, bound)
    return v.clamp(-bound, bound)


def add_noise(v: torch.Tensor, std: Scale, generator: Optional[torch.Generator] = None,
              inplace: bool = False) -> torch.Tensor:
    r""":math:`v + \sigma\,\xi`, :math:`\xi \sim N(0, 1)` per element from ``generator``; ``std`` a float or a
    tensor broadcasting against ``v``.  One ``randn(v.shape)`` draw."""
    xi = torch.randn(v.shape, generator=generator, dtype=v.dtype, device=v.device)
    if inplace and not _needs_grad(v):
        return v.add_(xi.mul_(std))
    return v + std * xi


def finite_abs(x: torch.Tensor) -> torch.Tensor:
    """``|x|`` with NaN and ``+-inf`` entries set to 0 (what noise management's maximum runs over); no gradient."""
    return x.detach().abs().nan_to_num_(0.0, 0.0, 0.0)


def noise_management_scale(x: torch.Tensor, io: IOConfig) -> torch.Tensor:
    """Stage 1: the per-sample scale ``s`` of ``x`` (N, n_in), shape (N, 1), float64, without gradient."""
    n = x.shape[0]
    if io.noise_management == "abs_max":
        s = finite_abs(x).to(torch.float64).amax(dim=1, keepdim=True) if x.shape[1] else \
            torch.zeros((n, 1), dtype=torch.float64)
        return s.clamp(max=io.nm_thres) if io.nm_thres > 0 else s
    value = float(io.nm_thres) if io.noise_management == "constant" else 1.0
    return torch.full((n, 1), value, dtype=torch.float64, device=x.device)


def dac(x: torch.Tensor, inv_scale: torch.Tensor, io: IOConfig,
        generator: Optional[torch.Generator] = None) -> torch.Tensor:
    r"""Stage 2: :math:`\mathrm{clip}(\mathrm{round}(x \cdot \mathrm{inv\_scale}/\Delta_{in})\,\Delta_{in},
    \pm b_{in}) + \sigma_{in}\xi`, in float64 (``inv_scale = 1/(s f)``, shape (N, 1))."""
    v = clip(quantize(x.to(torch.float64) * inv_scale, io.inp_step), io.inp_bound, inplace=True)
    if io.inp_noise > 0:
        v = add_noise(v, io.inp_noise, generator, inplace=True)
    return v


def weight_noise_std(io: IOConfig, w: torch.Tensor, xq: torch.Tensor) -> Optional[torch.Tensor]:
    r"""Stage 4: per-output std :math:`\sigma_{w}` (N, n_out) of the read-time weight noise, or None.

    ``additive_constant``: ``w_noise ||x_q||_2``; ``pcm_read``: ``w_noise sqrt(sum_j |W_ij| x_qj^2)``.
    ``w`` is (n_out, n_in); no gradient.
    """
    if io.w_noise <= 0 or io.w_noise_type == "none":
        return None
    if io.w_noise_type == "additive_constant":
        return io.w_noise * xq.detach().norm(dim=1, keepdim=True).expand(-1, w.shape[0])
    return io.w_noise * torch.sqrt((xq.detach() ** 2) @ w.detach().abs().T)


def read(x: torch.Tensor, w: torch.Tensor, io: IOConfig, generator: Optional[torch.Generator] = None,
         bound_management: bool = True) -> torch.Tensor:
    """One read ``x (N, n_in) -> (N, n_out)`` of ``w (n_out, n_in)`` through ``io`` (stages 1-7 above).

    ``bound_management=False`` skips stage 6 whatever ``io.bound_management`` says (the
    engine's transposed read: pass ``w = W^T`` and ``False`` for ``CrossbarArray.backward``).
    ``io.perfect``: ``x @ w.T`` exactly.
    """
    if io.perfect:
        return x @ w.T
    dtype = x.dtype
    s = noise_management_scale(x, io)
    zero = s == 0
    s_safe = torch.where(zero, torch.ones_like(s), s)
    w_noise = io.w_noise > 0 and io.w_noise_type != "none"

    def once(f: torch.Tensor):
        xq = dac(x, 1.0 / (s_safe * f), io, generator).to(dtype)
        y = (xq @ w.T).to(torch.float64)
        std = weight_noise_std(io, w, xq) if w_noise else None
        if io.out_noise > 0 or std is not None:
            y = add_noise(y, io.out_noise if std is None else
                          torch.sqrt(io.out_noise ** 2 + std.to(torch.float64) ** 2), generator, inplace=True)
        y = quantize(y, io.out_step, inplace=True)
        yd = y.detach()
        saturated = ((yd > io.out_bound) | (yd < -io.out_bound)).any(dim=1, keepdim=True) & ~zero
        return clip(y, io.out_bound, inplace=True).to(dtype), saturated

    f = torch.ones_like(s)
    y, sat = once(f)
    if bound_management and io.bound_management == "iterative":
        limit = io.bm_limit
        while bool(sat.any()):
            retry = sat & (2 * f <= limit)
            if not bool(retry.any()):
                break
            f = torch.where(retry, 2 * f, f)
            y_new, sat_new = once(f)
            y = torch.where(retry, y_new, y)
            sat = retry & sat_new
    # s = 0 zeroes the sample, except where a NaN input made its outputs NaN
    return y * (s * f).to(dtype)
