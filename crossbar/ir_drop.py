r"""IR drop by nodal analysis of the crossbar's resistive network.

The network (``R`` driven rows, ``C`` sensed columns; all quantities in one
consistent unit system, e.g. siemens and ohms, or conductances in units of a
cell's on-conductance ``g_on`` and resistances in units of ``R_on = 1/g_on``):

* cell ``(i, j)`` is a conductance ``G[i, j] >= 0`` between row node ``u[i, j]``
  and column node ``w[i, j]``;
* row ``i`` is driven at its left end (``j = 0``) by an ideal source ``V_i``
  behind a source resistance ``r_source``; neighbouring row nodes ``(i, j)``,
  ``(i, j+1)`` are joined by one wire segment ``r_wire``;
* column ``j`` is sensed at its bottom end (``i = R - 1``) by a sense node held at
  0 V behind a load resistance ``r_load`` (the transimpedance amplifier's input);
  neighbouring column nodes ``(i, j)``, ``(i+1, j)`` are joined by ``r_wire``;
* the output is the column current ``I_j = w[R-1, j] / r_load`` (for
  ``r_load = 0``, the current into the held node).

Kirchhoff's current law at every node gives a linear system ``M v = b`` in the
``2 R C`` node voltages (Chua & Lin, *Computer-Aided Analysis of Electronic
Circuits*, 1975, ch. 2; for crossbars e.g. Chen, *IEEE Trans. Electron Devices*
60:1318, 2013).  ``M`` depends only on the conductances and wires, so the map
from drive voltages to column currents is one fixed matrix, ``I = T V``.

:class:`ResistiveCrossbar` computes ``T`` once per programming, exactly, by
Kron reduction (a Schur complement onto the ports), sweeping the rows from top to
bottom:

1. each row line (its wire, source and cells, with the column nodes held) reduces
   to a Norton equivalent seen from its ``C`` column nodes: a conductance matrix
   ``K_i = D_i - D_i A_i^{-1} D_i`` and a short-circuit current ``f_i V_i``
   (``A_i`` the row line's tridiagonal nodal matrix, ``D_i = diag(G[i, :])``);
2. everything above row ``i``, seen from row ``i``'s column nodes, is a Norton
   equivalent ``(E_i, J_i)``:  ``E_0 = K_0``, ``J_0 = f_0 e_0^T`` and, through one
   column-wire segment,

       E_i = K_i + (I + r_wire E_{i-1})^{-1} E_{i-1},
       J_i = f_i e_i^T + (I + r_wire E_{i-1})^{-1} J_{i-1};

3. the load closes the columns: ``T = (I + r_load E_{R-1})^{-1} J_{R-1}``.

Every matrix inverted is symmetric positive definite and close to the identity
(no cancellation of the large wire conductances), so Cholesky solves keep the
result to about ``1e-12`` relative.  Rows without a conducting cell carry no
current, so their column-wire segments merge into one series resistance and cost
nothing.  The cost is ``O(R C^3)`` once (about 3 s for 256 x 256 on one core);
a read of a batch is then one matrix product, the same
work as an ideal read.  :meth:`ResistiveCrossbar.node_voltages` solves the full
``2 R C`` system with a cached sparse LU instead, for the node voltages.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from xbarsim.devices.validation import Serialisable, require_number

__all__ = ["WireParasitics", "ResistiveCrossbar", "network_matrix", "ideal_currents"]


@dataclass(frozen=True)
class WireParasitics(Serialisable):
    """Wire, source and load resistances of a crossbar (inverse units of the conductances).

    Fields:
        r_wire: resistance of one wire segment between neighbouring cells (> 0).
        r_source: series resistance of each row driver (>= 0; 0 = ideal source).
        r_load: input resistance of each column's sense node (>= 0; 0 = ideal virtual ground).
    """

    r_wire: float = 1e-4
    r_source: float = 0.0
    r_load: float = 0.0

    def __post_init__(self) -> None:
        n = "WireParasitics"
        require_number(n, "r_wire", self.r_wire, 0.0, None, lo_open=True)
        require_number(n, "r_source", self.r_source, 0.0, None)
        require_number(n, "r_load", self.r_load, 0.0, None)


def ideal_currents(conductances: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Column currents of the ideal array (no wire, source or load resistance): ``I = V G``."""
    return np.asarray(v, dtype=np.float64) @ np.asarray(conductances, dtype=np.float64)


def _check_conductances(conductances) -> np.ndarray:
    g = np.asarray(conductances, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 1:
        raise ValueError(f"conductances must be a 2-D (rows, cols) array, got shape {g.shape}")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError("conductances must be finite and >= 0")
    return g


def _tridiagonal_inverse(diag: np.ndarray, off: float) -> np.ndarray:
    """Inverse of the symmetric tridiagonal matrix with ``diag`` and constant off-diagonal ``off``."""
    n = diag.size
    ab = np.zeros((3, n))
    ab[0, 1:] = off
    ab[1] = diag
    ab[2, :-1] = off
    return sla.solve_banded((1, 1), ab, np.eye(n), check_finite=False)


def _row_line_norton(g_row: np.ndarray, r_wire: float, r_source: float) -> tuple[np.ndarray, np.ndarray]:
    """Norton equivalent ``(K, f)`` of one row line seen from its column nodes.

    The current from the row line into column node ``j`` is ``(f V - K w)_j`` for
    drive voltage ``V`` and column-node voltages ``w``.
    """
    c = g_row.size
    g_w = 1.0 / r_wire
    if r_source > 0.0:
        nbrs = np.full(c, 2.0)
        nbrs[-1] = 1.0
        nbrs[0] = 1.0 if c > 1 else 0.0
        diag = g_row + g_w * nbrs
        diag[0] += 1.0 / r_source
        a_inv = _tridiagonal_inverse(diag, -g_w)
        k = np.diag(g_row) - g_row[:, None] * a_inv * g_row[None, :]
        return k, g_row * a_inv[:, 0] / r_source
    # ideal source: node 0 is held at V; nodes 1..C-1 hang off it through the wire
    k = np.zeros((c, c))
    f = np.zeros(c)
    k[0, 0] = f[0] = g_row[0]
    if c > 1:
        g1 = g_row[1:]
        nbrs = np.full(c - 1, 2.0)  # node 1 links to the held node 0 and to node 2
        nbrs[-1] = 1.0
        a_inv = _tridiagonal_inverse(g1 + g_w * nbrs, -g_w)
        k[1:, 1:] = np.diag(g1) - g1[:, None] * a_inv * g1[None, :]
        f[1:] = g_w * g1 * a_inv[:, 0]
    return k, f


def _series_through(e: np.ndarray, j: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Norton ``(E, J)`` seen through a series resistance ``r`` on every port: ``(I + r E)^{-1} (E, J)``."""
    if r == 0.0:
        return e, j
    a = np.eye(e.shape[0]) + r * e
    sol = sla.solve(a, np.concatenate([e, j], axis=1), assume_a="pos", check_finite=False)
    e_new = sol[:, : e.shape[0]]
    return 0.5 * (e_new + e_new.T), sol[:, e.shape[0]:]


def transfer_matrix(conductances, parasitics: WireParasitics) -> np.ndarray:
    """The exact ``(C, R)`` matrix ``T`` with column currents ``I = T V`` (see the module docstring)."""
    g = _check_conductances(conductances)
    rows, cols = g.shape
    r_w = parasitics.r_wire
    e = np.zeros((cols, cols))
    j = np.zeros((cols, rows))
    pending = 0.0  # column-wire resistance not yet passed through: rows with no conducting cell add no
    for i in range(rows):  # current, so their wire segments merge into one series resistance
        if i > 0:
            pending += r_w
        if not np.any(g[i]):
            continue
        if i > 0:
            e, j[:, :i] = _series_through(e, j[:, :i], pending)
        pending = 0.0
        k, f = _row_line_norton(g[i], r_w, parasitics.r_source)
        e = e + k
        j[:, i] = f
    _, t = _series_through(e, j, pending + parasitics.r_load)
    return t


def network_matrix(conductances, parasitics: WireParasitics) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """The full nodal system: ``(M, b_per_volt, out)``.

    Unknowns are the ``2 R C`` node voltages, row node ``(i, j)`` at index
    ``i C + j`` and column node ``(i, j)`` at ``R C + i C + j``.  With an ideal
    source (``r_source = 0``) node ``(i, 0)`` is held by a Dirichlet row.
    ``M v = b_per_volt @ V`` for drive voltages ``V`` (``(2RC, R)`` sparse), and the
    column currents are ``v[out] / r_load`` (``out`` the bottom column nodes); for
    ``r_load = 0`` the bottom column nodes are held at 0 V and the current is
    read from the KCL of the held node (see :meth:`ResistiveCrossbar.node_voltages`).
    """
    g = _check_conductances(conductances)
    rows, cols = g.shape
    n = rows * cols
    g_w = 1.0 / parasitics.r_wire
    idx = np.arange(n).reshape(rows, cols)
    rn, cn = idx, n + idx
    ii, jj, vv = [], [], []

    def link(a, b, cond):
        a, b = a.ravel(), b.ravel()
        cond = np.asarray(cond, dtype=np.float64).ravel() if np.ndim(cond) else np.full(a.size, float(cond))
        ii.extend([a, b, a, b])
        jj.extend([a, b, b, a])
        vv.extend([cond, cond, -cond, -cond])

    link(rn, cn, g)
    link(rn[:, :-1], rn[:, 1:], g_w)
    link(cn[:-1, :], cn[1:, :], g_w)
    held = np.zeros(2 * n, dtype=bool)
    ground = np.zeros(2 * n)
    b = sp.lil_matrix((2 * n, rows))
    if parasitics.r_source > 0:
        ground[rn[:, 0]] += 1.0 / parasitics.r_source
        for i in range(rows):
            b[rn[i, 0], i] = 1.0 / parasitics.r_source
    else:
        held[rn[:, 0]] = True
        for i in range(rows):
            b[rn[i, 0], i] = 1.0
    if parasitics.r_load > 0:
        ground[cn[-1, :]] += 1.0 / parasitics.r_load
    else:
        held[cn[-1, :]] = True
    ii.append(np.arange(2 * n))
    jj.append(np.arange(2 * n))
    vv.append(ground)
    m = sp.csr_matrix((np.concatenate(vv), (np.concatenate(ii), np.concatenate(jj))), shape=(2 * n, 2 * n))
    if held.any():
        m = m.tolil()
        for h in np.flatnonzero(held):
            m.rows[h] = [h]
            m.data[h] = [1.0]
        m = m.tocsr()
    return m.tocsc(), b.tocsc(), cn[-1, :].copy()


class ResistiveCrossbar:
    """A programmed crossbar with wire, source and load resistance; reads by the exact network solve.

    ``conductances`` is ``(rows, cols)``: rows are driven, columns sensed.  The
    transfer matrix ``T`` is computed once here (Kron reduction, module docstring);
    :meth:`column_currents` is then ``V @ T.T`` for a batch of drive voltages.
    """

    def __init__(self, conductances, parasitics: WireParasitics):
        self.conductances = _check_conductances(conductances)
        self.parasitics = parasitics
        self.transfer = transfer_matrix(self.conductances, parasitics)
        self._lu = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.conductances.shape

    def column_currents(self, v) -> np.ndarray:
        """Column currents ``(batch, cols)`` for drive voltages ``v`` ``(batch, rows)`` (or one ``(rows,)``)."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape[-1] != self.shape[0]:
            raise ValueError(f"drive voltages have {v.shape[-1]} entries per sample; the array has "
                             f"{self.shape[0]} rows")
        return v @ self.transfer.T

    def node_voltages(self, v) -> tuple[np.ndarray, np.ndarray]:
        """Solve the full nodal system (sparse LU, factored once): ``(row_nodes, col_nodes)``, each ``(batch, R, C)``."""
        v = np.atleast_2d(np.asarray(v, dtype=np.float64))
        if self._lu is None:
            m, b, out = network_matrix(self.conductances, self.parasitics)
            self._lu = (spla.splu(m, permc_spec="MMD_AT_PLUS_A"), b, out)
        lu, b, _ = self._lu
        x = lu.solve(np.asarray((b @ v.T)))
        rows, cols = self.shape
        n = rows * cols
        return x[:n].T.reshape(-1, rows, cols), x[n:].T.reshape(-1, rows, cols)

    def direct_currents(self, v) -> np.ndarray:
        """Column currents ``(batch, cols)`` from :meth:`node_voltages` (the direct solve, for checks)."""
        u, w = self.node_voltages(v)
        r_load = self.parasitics.r_load
        if r_load > 0:
            return w[:, -1, :] / r_load
        # held sense node: the current arriving from its cell and from the column wire above it
        above = w[:, -2, :] / self.parasitics.r_wire if self.shape[0] > 1 else 0.0
        return above + self.conductances[-1] * u[:, -1, :]
