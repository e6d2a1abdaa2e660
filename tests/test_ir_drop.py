"""IR drop: the network solve against resistor-ladder closed forms, an independent direct solve, and R -> 0.

Also aihwkit's approximate model (``ir_drop_approx``) against its formula.
"""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from xbarsim.crossbar.ir_drop import ResistiveCrossbar, WireParasitics, ideal_currents
from xbarsim.crossbar.ir_drop_approx import ir_drop_approx


# -- closed forms -------------------------------------------------------------------------
def test_single_row_is_a_resistor_ladder_with_cosh_solution():
    # one driven row of C identical cells, each column a single node behind r_load:
    # shunt g' = 1/(1/G + r_load); the open far end makes u_j = A cosh(theta (j - C + 1/2)),
    # 2 (cosh theta - 1) = g'/g_w, and the source end fixes A.
    c, g, r_w, r_s, r_l, v = 40, 0.7, 0.01, 0.05, 0.2, 1.3
    xbar = ResistiveCrossbar(np.full((1, c), g), WireParasitics(r_w, r_s, r_l))
    g_w, g_s, g_sh = 1 / r_w, 1 / r_s, 1 / (1 / g + r_l)
    theta = math.acosh(1 + g_sh / (2 * g_w))

    def shape(j):
        return math.cosh(theta * (j - c + 0.5))

    a = g_s * v / (g_s * shape(0) + g_w * (shape(-1) - shape(0)))
    expected = np.array([g_sh * a * shape(j) for j in range(c)])
    np.testing.assert_allclose(xbar.column_currents([[v]])[0], expected, rtol=1e-11)


def test_single_column_is_a_resistor_ladder_with_cosh_solution():
    # R rows all driven at V into one column: each node gets g' (V - w_i), g' = 1/(r_source + 1/G);
    # w_i - V = A cosh(theta (i + 1/2)) (open top end), and the load at the bottom fixes A.
    r, g, r_w, r_s, r_l, v = 30, 0.4, 0.02, 0.1, 0.3, 0.9
    xbar = ResistiveCrossbar(np.full((r, 1), g), WireParasitics(r_w, r_s, r_l))
    g_w, g_l, g_sh = 1 / r_w, 1 / r_l, 1 / (r_s + 1 / g)
    theta = math.acosh(1 + g_sh / (2 * g_w))

    def shape(i):
        return math.cosh(theta * (i + 0.5))

    a = -g_l * v / (g_w * (shape(r) - shape(r - 1)) + g_l * shape(r - 1))
    expected = g_l * (v + a * shape(r - 1))
    np.testing.assert_allclose(xbar.column_currents(np.full((1, r), v))[0, 0], expected, rtol=1e-11)


# -- an independent direct solve -------------------------------------------------------------
def _direct_solve(g: np.ndarray, par: WireParasitics, v: np.ndarray) -> np.ndarray:
    """Column currents by nodal analysis of an edge list, built here from the circuit description alone."""
    rows, cols = g.shape
    names: dict = {}
    count = [0]

    def node(key):
        if key not in names:
            names[key] = count[0]
            count[0] += 1
        return names[key]

    for i in range(rows):  # drivers: a zero source resistance makes the row's first node the driver itself
        if par.r_source == 0:
            names[("drv", i)] = node(("row", i, 0))
    for j in range(cols):
        if par.r_load == 0:
            names[("sense", j)] = node(("col", rows - 1, j))
    edges = []
    for i in range(rows):
        for j in range(cols):
            edges.append((node(("row", i, j)), node(("col", i, j)), g[i, j]))
            if j + 1 < cols:
                edges.append((node(("row", i, j)), node(("row", i, j + 1)), 1 / par.r_wire))
            if i + 1 < rows:
                edges.append((node(("col", i, j)), node(("col", i + 1, j)), 1 / par.r_wire))
        if par.r_source > 0:
            edges.append((node(("drv", i)), node(("row", i, 0)), 1 / par.r_source))
    for j in range(cols):
        if par.r_load > 0:
            edges.append((node(("col", rows - 1, j)), node(("sense", j)), 1 / par.r_load))
    n = count[0]
    out = np.zeros((v.shape[0], cols))
    for b in range(v.shape[0]):
        known = {names[("drv", i)]: v[b, i] for i in range(rows)}
        known.update({names[("sense", j)]: 0.0 for j in range(cols)})
        free = [k for k in range(n) if k not in known]
        pos = {k: p for p, k in enumerate(free)}
        lap = sp.lil_matrix((len(free), len(free)))
        rhs = np.zeros(len(free))
        for a, c, cond in edges:
            for x, y in ((a, c), (c, a)):
                if x in pos:
                    lap[pos[x], pos[x]] += cond
                    if y in pos:
                        lap[pos[x], pos[y]] -= cond
                    else:
                        rhs[pos[x]] += cond * known[y]
        sol = spla.spsolve(lap.tocsc(), rhs)
        volt = np.array([known[k] if k in known else sol[pos[k]] for k in range(n)])
        for j in range(cols):
            s = names[("sense", j)]
            out[b, j] = sum(cond * (volt[c if a == s else a] - 0.0) for a, c, cond in edges if s in (a, c))
    return out


_PARASITICS = {"rs_rl": WireParasitics(2e-3, 5e-2, 1e-1), "ideal_ends": WireParasitics(1e-2, 0.0, 0.0),
               "rl_only": WireParasitics(5e-3, 0.0, 2e-1)}
_CASES = [(shape, kind) for shape in [(4, 4), (8, 32), (32, 8), (16, 16)] for kind in _PARASITICS]
_CASES += [((64, 64), "rs_rl"), ((64, 64), "ideal_ends")]  # the edge-list reference is slow at 64 x 64


@pytest.mark.parametrize("shape,kind", _CASES, ids=[f"{r}x{c}-{k}" for (r, c), k in _CASES])
def test_network_solve_matches_an_independent_direct_solve(shape, kind):
    par = _PARASITICS[kind]
    rng = np.random.default_rng(11)
    g = rng.uniform(0.02, 1.0, shape)
    v = rng.uniform(-1.0, 1.0, (2, shape[0]))
    ours = ResistiveCrossbar(g, par).column_currents(v)
    ref = _direct_solve(g, par, v)
    assert np.max(np.abs(ours - ref)) <= 1e-9 * np.max(np.abs(ref))
    # the drop is not negligible at these settings, so the test discriminates
    assert np.max(np.abs(ref - ideal_currents(g, v))) > 1e-3 * np.max(np.abs(ref))


def test_full_nodal_solve_agrees_with_the_kron_reduction():
    rng = np.random.default_rng(2)
    g = rng.uniform(0.0, 1.0, (24, 40))
    v = rng.uniform(-1.0, 1.0, (5, 24))
    for par in (WireParasitics(3e-3, 1e-2, 1e-2), WireParasitics(3e-3, 0.0, 0.0)):
        xbar = ResistiveCrossbar(g, par)
        np.testing.assert_allclose(xbar.column_currents(v), xbar.direct_currents(v), rtol=0,
                                   atol=1e-10 * np.abs(xbar.direct_currents(v)).max())


def test_vanishing_wire_resistance_gives_the_ideal_mvm():
    rng = np.random.default_rng(5)
    g = rng.uniform(0.0, 1.0, (64, 48))
    v = rng.uniform(-1.0, 1.0, (4, 64))
    ideal = ideal_currents(g, v)
    errs = []
    for eps in (1e-6, 1e-8, 1e-10):
        i = ResistiveCrossbar(g, WireParasitics(eps, eps, eps)).column_currents(v)
        errs.append(np.max(np.abs(i - ideal)) / np.max(np.abs(ideal)))
    # first order in the resistance (the second-order term is ~ (R C r g)^2 < 1e-5 here): each factor
    # 100 in r cuts the error by 100, and it vanishes (1e-10 resistances, ~1e-7 relative error)
    assert errs[0] / errs[1] == pytest.approx(100, rel=0.01)
    assert errs[1] / errs[2] == pytest.approx(100, rel=0.01)
    assert errs[2] < 1e-6


def test_more_wire_resistance_means_less_current():
    g = np.full((32, 32), 0.5)
    v = np.ones((1, 32))
    currents = [ResistiveCrossbar(g, WireParasitics(r, 0.0, 0.0)).column_currents(v).sum() for r in (1e-4, 1e-3, 1e-2)]
    assert currents[0] > currents[1] > currents[2]
    # the far column (from the drivers) loses most
    per_col = ResistiveCrossbar(g, WireParasitics(1e-3, 0.0, 0.0)).column_currents(v)[0]
    assert np.all(np.diff(per_col) < 0)


def test_parasitics_validate_and_round_trip():
    with pytest.raises(ValueError, match=r"WireParasitics.r_wire"):
        WireParasitics(r_wire=0.0)
    with pytest.raises(ValueError, match=r"WireParasitics.r_load.*-1"):
        WireParasitics(r_load=-1.0)
    p = WireParasitics(1e-3, 2e-3, 3e-3)
    assert WireParasitics.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="conductances"):
        ResistiveCrossbar(-np.ones((2, 2)), p)


# -- aihwkit's approximation -------------------------------------------------------------------
def test_approx_without_ir_drop_is_the_matmul():
    rng = np.random.default_rng(0)
    w, x = rng.uniform(-1, 1, (5, 7)), rng.uniform(-1, 1, (3, 7))
    np.testing.assert_allclose(ir_drop_approx(w, x, 0.0), x @ w.T, rtol=1e-15)


def test_approx_follows_the_aihwkit_formula_by_hand():
    w = np.array([[0.5, -1.0, 0.25, 1.0]])
    x = np.array([[1.0, 0.5, -1.0, 0.75]])
    n, ratio, scale = 4, 10.0, 2.0
    a = n / ratio * (0.5 * 1 + 1.0 * 0.5 + 0.25 * 1 + 1.0 * 0.75)
    c = 0.05 * a ** 3 - 0.2 * a ** 2 + 0.5 * a
    xp = [x[0, j] * (1 - (1 - j / n) ** 2) for j in range(n)]
    expected = float(w[0] @ x[0]) - scale * c * float(w[0] @ np.array(xp))
    assert ir_drop_approx(w, x, scale, g_ratio=ratio)[0, 0] == pytest.approx(expected, rel=1e-14)


def test_empty_rows_merge_into_series_wire_resistance():
    # a tile in the top-left corner of a taller array: the empty rows below it are only wire
    rng = np.random.default_rng(9)
    tile = rng.uniform(0.1, 1.0, (6, 5))
    big = np.zeros((20, 5))
    big[2:8] = tile
    par = WireParasitics(1e-2, 1e-2, 5e-2)
    v = rng.uniform(-1, 1, (3, 20))
    xbar = ResistiveCrossbar(big, par)
    np.testing.assert_allclose(xbar.column_currents(v), xbar.direct_currents(v), rtol=1e-10)
    # the same as the tile alone with its load moved 12 segments further away
    alone = ResistiveCrossbar(tile, WireParasitics(1e-2, 1e-2, 5e-2 + 12 * 1e-2))
    np.testing.assert_allclose(xbar.column_currents(v), alone.column_currents(v[:, 2:8]), rtol=1e-12)
