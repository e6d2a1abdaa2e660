r"""CorrectNet-style Lipschitz regularization: keep every layer's Lipschitz constant near 1.

Under weight variations each layer adds an error to its output, and a layer with a
large Lipschitz constant amplifies the errors of the layers before it.  CorrectNet
(Eldebiky et al., DATE 2023) suppresses that amplification by a regularizer during
training; the paper gives its role, not its exact form, so the two forms here are
reconstructed (orthogonality / Parseval-style, Cisse et al., ICML 2017).

Every weight of an ``nn.Linear`` or ``nn.ConvNd`` (any subclass; any model) is seen
as a matrix :math:`W \in \mathbb{R}^{m\times n}`, a convolution kernel reshaped to
``C_out x (C_in k_h k_w)``.

``orthogonal`` (default):

.. math::
    R = \frac{\beta}{2}\sum_{\text{layers}} \lVert W^T W - I \rVert_F^2,
    \qquad \frac{\partial R}{\partial W} = 2\beta\, W (W^T W - I).

It is computed with the smaller Gram matrix: for :math:`m < n`,
:math:`\lVert W^TW - I_n\rVert_F^2 = \lVert WW^T - I_m\rVert_F^2 + (n - m)` (the
:math:`n-m` zero eigenvalues of :math:`W^TW`), so both have the same gradient and
the penalty reported here is 0 exactly when the rows (or columns) of ``W`` are
orthonormal.  A departure from the literal formula by that constant only.

``spectral``:

.. math::
    R = \frac{\beta}{2}\sum_{\text{layers}} \big(\sigma_{max}(W) - 1\big)^2

with :math:`\sigma_{max}` the largest singular value (``torch.linalg.matrix_norm(W, 2)``,
differentiable), the Lipschitz constant of the layer's linear map (of the
im2col matrix for a convolution: an upper-bound proxy of the convolution's own).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Tuple

import torch
from torch import nn

from xbarsim.devices.validation import Serialisable, require_choice, require_number

__all__ = ["LipschitzRegularizer", "regularized_weights", "orthogonality_penalty", "spectral_penalty",
           "orthogonality_gradient"]

KINDS = ("orthogonal", "spectral")


def regularized_weights(model: nn.Module) -> Iterator[Tuple[str, torch.Tensor]]:
    """``(name, W as an m x n matrix)`` for every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` (and subclasses) weight."""
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)) and isinstance(getattr(m, "weight", None), torch.Tensor):
            w = m.weight
            yield name, w.reshape(w.shape[0], -1)


def orthogonality_penalty(w: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert G - I\rVert_F^2` with :math:`G` the smaller of :math:`W^TW` and :math:`WW^T` (no :math:`\beta/2`)."""
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    return ((g - eye) ** 2).sum()


def orthogonality_gradient(w: torch.Tensor, beta: float) -> torch.Tensor:
    r"""Closed form :math:`\partial/\partial W\; \frac{\beta}{2}\lVert W^TW - I\rVert_F^2 = 2\beta W(W^TW - I)`."""
    eye = torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
    return 2.0 * beta * w @ (w.T @ w - eye)


def spectral_penalty(w: torch.Tensor) -> torch.Tensor:
    r""":math:`(\sigma_{max}(W) - 1)^2` (no :math:`\beta/2`)."""
    return (torch.linalg.matrix_norm(w, ord=2) - 1.0) ** 2


@dataclass(frozen=True)
class LipschitzRegularizer(Serialisable):
    """``R(model)``: the penalty of the module docstring, summed over layers.

    ``kind``: ``orthogonal`` or ``spectral``; ``beta``: strength :math:`\\beta`
    (dimensionless, per unit of the cross-entropy loss).  ``beta = 0`` returns 0.
    Use: ``loss = criterion(model(x), y) + reg(model)``.
    """

    kind: str = "orthogonal"
    beta: float = 1e-3

    def __post_init__(self) -> None:
        require_choice("LipschitzRegularizer", "kind", self.kind, KINDS)
        require_number("LipschitzRegularizer", "beta", self.beta, 0.0, None)

    def __call__(self, model: nn.Module) -> torch.Tensor:
        total = torch.zeros(())
        if self.beta == 0:
            return total
        per = orthogonality_penalty if self.kind == "orthogonal" else spectral_penalty
        for _, w in regularized_weights(model):
            total = total + per(w)
        return 0.5 * self.beta * total

    def per_layer(self, model: nn.Module) -> dict:
        """``{layer name: penalty}`` (floats, including ``beta/2``), for logging."""
        per = orthogonality_penalty if self.kind == "orthogonal" else spectral_penalty
        with torch.no_grad():
            return {name: float(0.5 * self.beta * per(w)) for name, w in regularized_weights(model)}
