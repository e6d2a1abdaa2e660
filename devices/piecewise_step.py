r"""Step size interpolated from measured nodes (aihwkit ``PiecewiseStepDevice``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np

from .base import PulsedDevice
from .layout import C_B_MAX, C_B_MIN, C_SCALE_UP, G_MODEL_PARAMS
from .validation import require_number

G_PW_NODES = G_MODEL_PARAMS  # n, then the n up values, then the n down values


@numba.njit(cache=True, inline="always")
def _node(g, up, n, k):
    return g[G_PW_NODES + 1 + k] if up else g[G_PW_NODES + 1 + n + k]


@numba.njit(cache=True, inline="always")
def piecewise_step(w, up, cellf, base, g):
    """``alpha_± ((1 - q) v_±[i] + q v_±[i + 1])`` at node position ``i + q`` of ``w`` in ``[b_min, b_max]``."""
    o = np.uint64(0) if up else np.uint64(1)
    scale = np.float64(cellf[base + np.uint64(C_SCALE_UP) + o])
    n = int(g[G_PW_NODES])
    if n == 1:
        return scale * _node(g, up, n, 0)
    b_min = np.float64(cellf[base + np.uint64(C_B_MIN)])
    rng = np.float64(cellf[base + np.uint64(C_B_MAX)]) - b_min
    if rng <= 0.0:
        return 0.0
    pos = (w - b_min) / rng * (n - 1)
    if pos <= 0.0:
        return scale * _node(g, up, n, 0)
    if pos >= n - 1:
        return scale * _node(g, up, n, n - 1)
    k = int(pos)
    q = pos - k
    return scale * ((1.0 - q) * _node(g, up, n, k) + q * _node(g, up, n, k + 1))


@dataclass(frozen=True)
class PiecewiseStep(PulsedDevice):
    r"""Step size interpolated from measured nodes (aihwkit ``PiecewiseStepDevice``).

    ``piecewise_up``/``piecewise_down`` hold the step, relative to ``dw_min``, at
    ``n`` nodes equally spaced over each cell's ``[b_min, b_max]``.  With
    :math:`i, q` the node index and position of ``w`` between nodes:

    .. math:: w \leftarrow w \pm \alpha_\pm\big((1-q) v_\pm[i] + q\, v_\pm[i+1]\big)(1+\sigma\xi)

    Build one from a measured pulse response with :meth:`from_pulse_response`.  The node
    tables travel in the kernel parameters; the model planes are unused.
    """

    pulse_step: ClassVar[Any] = piecewise_step
    piecewise_up: tuple = (1.0,)
    piecewise_down: tuple = (1.0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "piecewise_up", tuple(float(v) for v in self.piecewise_up))
        object.__setattr__(self, "piecewise_down", tuple(float(v) for v in self.piecewise_down))
        super().__post_init__()

    def _validate_model(self) -> None:
        n = self.name
        if len(self.piecewise_up) == 0 or len(self.piecewise_up) != len(self.piecewise_down):
            raise ValueError(f"{n}.piecewise_up and piecewise_down must be non-empty and of equal length, "
                             f"got {len(self.piecewise_up)} and {len(self.piecewise_down)}")
        for f in ("piecewise_up", "piecewise_down"):
            for k, v in enumerate(getattr(self, f)):
                require_number(n, f"{f}[{k}]", v, 0.0, None)

    def kernel_params(self) -> np.ndarray:
        g = super().kernel_params()
        return np.concatenate([g, [len(self.piecewise_up)], self.piecewise_up, self.piecewise_down])

    @classmethod
    def from_pulse_response(cls, up_trace, down_trace, n_nodes: int = 16, **overrides: Any) -> "PiecewiseStep":
        """Fit a piecewise step model to a measured pulse response.

        Args:
            up_trace: weights (normalised conductance) after 0, 1, 2, ... up pulses.
            down_trace: the same for down pulses.
            n_nodes: number of interpolation nodes over ``[w_min, w_max]``.
            overrides: other fields (e.g. ``dw_min_dtod=0``); ``w_min``, ``w_max``
                default to the extremes of the traces and ``dw_min`` to the
                mean step magnitude at the node nearest ``w = 0``.

        The step ``|w[k+1] - w[k]|`` is attributed to ``w[k]`` and averaged per
        node bin; empty bins are filled by linear interpolation.
        """
        up = np.asarray(up_trace, dtype=np.float64)
        dn = np.asarray(down_trace, dtype=np.float64)
        if up.ndim != 1 or dn.ndim != 1 or up.size < 3 or dn.size < 3:
            raise ValueError("PiecewiseStep.from_pulse_response: up_trace and down_trace must be 1-D with >= 3 points")
        if not (np.all(np.isfinite(up)) and np.all(np.isfinite(dn))):
            raise ValueError("PiecewiseStep.from_pulse_response: traces contain NaN or inf")
        require_number(cls.__name__, "n_nodes", n_nodes, 2, 64, integer=True)
        w_min = float(overrides.pop("w_min", min(up.min(), dn.min())))
        w_max = float(overrides.pop("w_max", max(up.max(), dn.max())))
        nodes = np.linspace(w_min, w_max, n_nodes)

        def per_node(trace: np.ndarray) -> np.ndarray:
            steps = np.abs(np.diff(trace))
            pos = trace[:-1]
            idx = np.clip(np.rint((pos - w_min) / (w_max - w_min) * (n_nodes - 1)).astype(int), 0, n_nodes - 1)
            sums = np.bincount(idx, weights=steps, minlength=n_nodes)
            counts = np.bincount(idx, minlength=n_nodes)
            have = counts > 0
            vals = np.zeros(n_nodes)
            vals[have] = sums[have] / counts[have]
            return np.interp(nodes, nodes[have], vals[have])

        v_up, v_dn = per_node(up), per_node(dn)
        zero = int(np.argmin(np.abs(nodes)))
        dw_min = float(overrides.pop("dw_min", 0.5 * (v_up[zero] + v_dn[zero])))
        if not dw_min > 0:
            raise ValueError("PiecewiseStep.from_pulse_response: the traces show no step near w = 0")
        return cls(dw_min=dw_min, w_min=w_min, w_max=w_max,
                   piecewise_up=tuple(v_up / dw_min), piecewise_down=tuple(v_dn / dw_min), **overrides)
