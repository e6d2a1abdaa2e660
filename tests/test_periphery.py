"""The read periphery, compiled (``CrossbarArray.forward`` / ``backward``) and in torch
(:mod:`xbarsim.crossbar.periphery_torch`), against one reference written here.

Oracles:
* noise off: both equal :func:`reference_read`, a plain numpy float64 transcription of the
  IOConfig stages (noise management, DAC grid and clipping, matmul, ADC grid and clipping,
  iterative bound management), for every noise-management and bound-management mode;
  a sample is compared exactly (to float32) unless one of its ADC inputs lies within
  1e-4 steps of a rounding boundary, where float32 summation order may pick either side;
* noise on (``out_noise``, ``inp_noise``, ``w_noise`` of both types): without quantisation
  the output mean is ``W x`` and the variance has a closed form, tested on both
  implementations with the standard errors of the sample mean (``sqrt(var/R)``) and
  variance (``var sqrt(2/(R-1))``, Gaussian); with quantisation the two implementations'
  means and variances agree within their combined standard errors (fourth moments
  estimated from the data);
* non-finite inputs (issue 29): a NaN input makes its sample's outputs NaN; ``+-inf`` is
  clipped by the DAC, noise management's scale running over the finite inputs.

Every test is seeded; tolerances are 5 standard errors.
"""
import math

import numpy as np
import pytest
import torch

from xbarsim.crossbar import CrossbarArray, IOConfig, periphery_torch
from xbarsim.devices import IdealDevice

Z = 5.0  # standard errors
N_OUT, N_IN = 16, 40
AMBIGUOUS = 1e-4  # steps from a rounding boundary within which float32 summation order may decide


# --------------------------------------------------------------------------- the reference
def _nm_scale(x: np.ndarray, io: IOConfig) -> np.ndarray:
    if io.noise_management == "abs_max":
        a = np.where(np.isfinite(x), np.abs(x), 0.0)
        s = a.max(axis=1) if x.shape[1] else np.zeros(x.shape[0])
        return np.minimum(s, io.nm_thres) if io.nm_thres > 0 else s
    return np.full(x.shape[0], io.nm_thres if io.noise_management == "constant" else 1.0)


def _near_tie(v: np.ndarray, step: float) -> np.ndarray:
    if step <= 0:
        return np.zeros(v.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.abs(np.abs(v / step - np.floor(v / step)) - 0.5) < AMBIGUOUS


def reference_read(x, w, io: IOConfig, bound_management: bool):
    """``(y, clear)``: the read of ``x`` (N, n_in) through ``w`` (n_out, n_in) in float64, and which samples
    have no ADC input within ``AMBIGUOUS`` steps of a rounding boundary (the DAC runs in float64 in all three)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    s = _nm_scale(x, io)
    limit = io.max_bm_factor if io.inp_res <= 0 else min(io.max_bm_factor, io.max_bm_res / io.inp_res)
    y = np.zeros((x.shape[0], w.shape[0]))
    clear = np.ones(x.shape[0], dtype=bool)
    for b in range(x.shape[0]):
        if s[b] == 0:
            y[b] = np.nan if np.isnan(x[b]).any() else 0.0
            continue
        f = 1.0
        while True:
            # the engine's float64 arithmetic order, x (1/(s f)) (1/step): exact ties (the halved largest input
            # lands on one, 63 steps being odd) then round alike
            a = x[b] * (1.0 / (s[b] * f))
            if io.inp_step > 0:
                a = np.rint(a * (1.0 / io.inp_step)) * io.inp_step
            a = np.clip(a, -io.inp_bound, io.inp_bound)
            v = w @ a
            clear[b] &= not _near_tie(v, io.out_step).any()
            if io.out_step > 0:
                v = np.rint(v / io.out_step) * io.out_step
            saturated = bool((np.abs(v) > io.out_bound).any())
            v = np.clip(v, -io.out_bound, io.out_bound)
            if not (bound_management and io.bound_management == "iterative" and saturated and 2 * f <= limit):
                break
            f *= 2.0
        y[b] = s[b] * f * v
    return y, clear


# --------------------------------------------------------------------------- the two implementations
def _array(w: np.ndarray, io: IOConfig, seed: int = 0) -> CrossbarArray:
    arr = CrossbarArray(w.shape[0], w.shape[1], device=IdealDevice(), io=io, seed=seed,
                        tile_rows=w.shape[0], tile_cols=w.shape[1])  # one tile
    arr.set_weights(w)
    return arr


def compiled_read(x, w, io, transposed=False, seed=0):
    arr = _array(w, io, seed)
    return arr.backward(x) if transposed else arr.forward(x)


def torch_read(x, w, io, transposed=False, seed=0):
    wt = torch.from_numpy(np.ascontiguousarray(w.T if transposed else w))
    g = torch.Generator().manual_seed(seed)
    return periphery_torch.read(torch.from_numpy(x), wt, io, g, bound_management=not transposed).numpy()


READS = {"compiled": compiled_read, "torch": torch_read}


def _data(batch, seed, n_in=N_IN, n_out=N_OUT):
    rng = np.random.default_rng(seed)
    w = (0.3 * rng.standard_normal((n_out, n_in))).astype(np.float32)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)
    x[0] = 0.0  # an all-zero sample: s = 0 under abs_max
    return w, x


def _assert_matches_reference(y, ref, clear, io, s_f_max):
    assert clear.mean() >= 0.9, "too few unambiguous samples: pick other data"
    np.testing.assert_allclose(y[clear], ref[clear], rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max())))
    # an ambiguous sample is off by at most one ADC step (in output units) per output
    step = max(io.out_step, 1e-6) * s_f_max
    assert np.all(np.abs(y[~clear] - ref[~clear]) <= step * 1.001 + 1e-5)


QUIET = dict(out_noise=0.0, inp_noise=0.0, w_noise=0.0)
CONFIGS = {
    "abs_max, bm iterative": IOConfig(**QUIET, out_bound=1.0, bound_management="iterative"),
    "abs_max, bm stops at max_bm_factor": IOConfig(**QUIET, out_bound=0.3, max_bm_factor=4.0),
    "abs_max, bm none": IOConfig(**QUIET, out_bound=1.0, bound_management="none"),
    "abs_max capped at nm_thres": IOConfig(**QUIET, nm_thres=0.8, bound_management="none"),
    "abs_max, aihwkit defaults": IOConfig(**QUIET),
    "none, DAC clipping": IOConfig(**QUIET, noise_management="none", out_bound=3.0),
    "none, bm iterative": IOConfig(**QUIET, noise_management="none", out_bound=1.0, inp_res=1 / 64),
    "constant": IOConfig(**QUIET, noise_management="constant", nm_thres=1.5, out_bound=2.0),
    "unquantised": IOConfig(**QUIET, inp_res=0.0, out_res=0.0, out_bound=2.0, bound_management="none"),
}


# --------------------------------------------------------------------------- noise off
@pytest.mark.parametrize("impl", sorted(READS))
@pytest.mark.parametrize("batch", [24, 80])  # the compiled read's fused path (<= 32) and its GEMM path
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_read_equals_the_reference(impl, batch, name):
    io = CONFIGS[name]
    w, x = _data(batch, seed=batch)
    ref, clear = reference_read(x, w, io, bound_management=True)
    y = READS[impl](x, w, io)
    limit = io.bm_limit if io.bound_management == "iterative" else 1.0
    s_max = float(_nm_scale(x, io).max())
    _assert_matches_reference(y, ref, clear, io, s_max * limit)


def test_the_cases_exercise_bound_management_and_clipping():
    w, x = _data(80, seed=80)
    arr = _array(w, CONFIGS["abs_max, bm iterative"])
    arr.forward(x)
    assert arr.counters["bm_repeats"] > 0
    ref, _ = reference_read(x, w, CONFIGS["abs_max, bm iterative"], bound_management=True)
    ref_none, _ = reference_read(x, w, CONFIGS["abs_max, bm none"], bound_management=True)
    assert not np.allclose(ref, ref_none)
    assert np.abs(x).max() > 1.0  # inputs beyond inp_bound = 1: "none" clips at the DAC


@pytest.mark.parametrize("impl", sorted(READS))
@pytest.mark.parametrize("name", ["abs_max, bm iterative", "none, DAC clipping", "constant"])
def test_backward_read_equals_the_reference_without_bound_management(impl, name):
    io = CONFIGS[name]
    w, _ = _data(1, seed=5)
    d = np.random.default_rng(6).standard_normal((24, N_OUT)).astype(np.float32)
    ref, clear = reference_read(d, w.T, io, bound_management=False)
    y = READS[impl](d, w, io, transposed=True)
    _assert_matches_reference(y, ref, clear, io, float(_nm_scale(d, io).max()))


def test_straight_through_gradients_of_the_torch_read():
    io = IOConfig(out_noise=0.05, out_bound=1000.0)  # quantised and noisy, never saturating
    w, x = _data(8, seed=2)
    xt, wt = torch.from_numpy(x[1:]).requires_grad_(), torch.from_numpy(w).requires_grad_()
    d = torch.randn(7, N_OUT, generator=torch.Generator().manual_seed(3))
    periphery_torch.read(xt, wt, io, torch.Generator().manual_seed(4)).backward(d)
    torch.testing.assert_close(xt.grad, d @ wt.detach(), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- noise on
R = 4000  # independent reads of one sample (a batch of R copies: every sample gets its own noise)


def _draws(impl, x1, w, io, chunk=None):
    xs = np.repeat(x1[None, :], R, axis=0)
    if impl == "torch":
        return torch_read(xs, w, io, seed=11).astype(np.float64)
    arr = _array(w, io, seed=11)
    if chunk is None:
        return arr.forward(xs).astype(np.float64)
    return np.concatenate([arr.forward(xs[i:i + chunk]) for i in range(0, R, chunk)]).astype(np.float64)


def _noise_case(seed=21):
    rng = np.random.default_rng(seed)
    w = (0.3 * rng.standard_normal((8, N_IN))).astype(np.float32)
    x1 = rng.standard_normal(N_IN).astype(np.float32)
    return w, x1


FREE = dict(inp_res=0.0, out_res=0.0, out_bound=1e6, inp_bound=10.0, bound_management="none")
NOISES = {
    "out_noise": (IOConfig(**FREE, out_noise=0.1),
                  lambda w, x, s: np.full(w.shape[0], (0.1 * s) ** 2)),
    "inp_noise": (IOConfig(**FREE, out_noise=0.0, inp_noise=0.05),
                  lambda w, x, s: (0.05 * s) ** 2 * (w.astype(np.float64) ** 2).sum(1)),
    "w_noise additive_constant": (IOConfig(**FREE, out_noise=0.0, w_noise=0.04, w_noise_type="additive_constant"),
                                  lambda w, x, s: np.full(w.shape[0], 0.04 ** 2 * (x.astype(np.float64) ** 2).sum())),
    "w_noise pcm_read": (IOConfig(**FREE, out_noise=0.0, w_noise=0.04, w_noise_type="pcm_read"),
                         lambda w, x, s: 0.04 ** 2 * np.abs(w.astype(np.float64)) @ (x.astype(np.float64) ** 2)),
}


@pytest.mark.parametrize("impl, chunk", [("compiled", None), ("compiled", 32), ("torch", None)])
@pytest.mark.parametrize("name", sorted(NOISES))
def test_noise_has_the_closed_form_mean_and_variance(impl, chunk, name):
    io, variance = NOISES[name]
    w, x1 = _noise_case()
    y = _draws(impl, x1, w, io, chunk)
    s = float(np.abs(x1).max())
    mean, var = w.astype(np.float64) @ x1.astype(np.float64), variance(w, x1, s)
    assert np.all(np.abs(y.mean(0) - mean) < Z * np.sqrt(var / R))
    assert np.all(np.abs(y.var(0, ddof=1) - var) < Z * var * math.sqrt(2 / (R - 1)))


def _moments(y):
    m = y.mean(0)
    v = y.var(0, ddof=1)
    m4 = ((y - m) ** 4).mean(0)
    return m, v, (m4 - v ** 2) / R


@pytest.mark.parametrize("name, io", [
    ("quantised out_noise", IOConfig(out_noise=0.06, bound_management="none")),
    ("quantised inp_noise + out_noise", IOConfig(inp_noise=0.02, out_noise=0.03, bound_management="none")),
    ("quantised pcm_read", IOConfig(out_noise=0.0, w_noise=0.03, w_noise_type="pcm_read", bound_management="none")),
])
def test_quantised_noise_statistics_agree_between_the_implementations(name, io):
    w, x1 = _noise_case(seed=22)
    mc, vc, var_vc = _moments(_draws("compiled", x1, w, io))
    mt, vt, var_vt = _moments(_draws("torch", x1, w, io))
    assert np.all(np.abs(mc - mt) < Z * np.sqrt((vc + vt) / R))
    assert np.all(np.abs(vc - vt) < Z * np.sqrt(var_vc + var_vt))
    assert np.all(vc > 0)  # the noise spans several ADC steps, so the case tests something


# --------------------------------------------------------------------------- non-finite inputs
NF_IO = {"abs_max": IOConfig(**QUIET, out_bound=3.0, bound_management="none"),
         "abs_max, bm iterative": IOConfig(**QUIET, out_bound=1.0),
         "none": IOConfig(**QUIET, noise_management="none", out_bound=3.0, bound_management="none")}


def _non_finite_input(case, batch):
    w, x = _data(batch, seed=31)
    if case == "nan":
        x[1, 3] = np.nan
    elif case == "+inf":
        x[1, 3] = np.inf
    elif case == "-inf":
        x[1, 3] = -np.inf
    elif case == "+-inf":
        x[1, 3], x[2, 7] = np.inf, -np.inf
    elif case == "all nan":
        x[1] = np.nan
    elif case == "nan and inf":
        x[1, 3], x[1, 5] = np.nan, np.inf
    return w, x


# what the compiled periphery does not follow yet: under abs_max its noise management takes max|x| over an inf
# too (then inf / inf = NaN), and a sample whose finite inputs are all 0 reads 0 even with a NaN among them


def _nf_params():
    out = []
    for impl in sorted(READS):
        for nm in sorted(NF_IO):
            for case in ("nan", "+inf", "-inf", "+-inf", "all nan", "nan and inf"):
                out.append(pytest.param(impl, nm, case, id=f"{impl}-{nm}-{case}"))
    return out


@pytest.mark.parametrize("batch", [6, 40])
@pytest.mark.parametrize("impl, nm, case", _nf_params())
def test_non_finite_inputs_nan_propagates_and_inf_saturates_the_dac(impl, case, batch, nm):
    io = NF_IO[nm]
    w, x = _non_finite_input(case, batch)
    y = READS[impl](x, w, io)
    ref, clear = reference_read(x, w, io, bound_management=True)
    nan_rows = np.isnan(x).any(axis=1)
    assert np.all(np.isnan(y[nan_rows])) and not np.isnan(y[~nan_rows]).any()
    assert np.all(np.isfinite(y[~nan_rows]))
    ok = ~nan_rows & clear
    np.testing.assert_allclose(y[ok], ref[ok], rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref[ok]).max())))


@pytest.mark.parametrize("impl", ["compiled", "torch"])
def test_an_inf_input_reads_like_an_input_at_the_dac_bound(impl):
    io = IOConfig(**QUIET, out_bound=3.0, bound_management="none")
    w, x = _data(4, seed=41)
    x[1, 3] = np.inf
    at_bound = x.copy()
    at_bound[1, 3] = np.abs(np.delete(x[1], 3)).max()  # s x_j/s = s: the largest finite input, i.e. inp_bound
    np.testing.assert_array_equal(READS[impl](x, w, io), READS[impl](at_bound, w, io))


def test_the_torch_read_keeps_finite_gradients_beside_an_inf_input():
    io = IOConfig(out_noise=0.0, out_bound=1000.0)
    w, x = _data(4, seed=42)
    x[1, 3] = np.inf
    xt, wt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    periphery_torch.read(xt, wt, io).sum().backward()
    assert torch.isfinite(wt.grad).all() and torch.isfinite(xt.grad).all()
    assert xt.grad[1, 3] == 0  # clipped by the DAC: no gradient


def test_the_inference_fast_path_scales_each_sample_by_its_finite_inputs():
    """``mapping.nonideal``'s read noise and ADC (these stages, in full-scale units): a NaN or inf input
    leaves the other samples' outputs as they were, a NaN reaches its own sample's outputs, and an inf
    (there is no DAC on this path: ``W x`` is already infinite) saturates the ADC of the finite full scale."""
    from torch import nn

    from xbarsim.mapping.nonideal import ADCQuantization, ReadNoise, apply_read_periphery
    w, x = _data(6, seed=51)
    lin = nn.Linear(N_IN, N_OUT)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(w))
        lin.bias.fill_(0.25)
    bad = x.copy()
    bad[1, 3], bad[2, 5] = np.nan, np.inf
    outs = []
    with torch.no_grad():
        for inp in (x, bad):
            xt = torch.from_numpy(inp)
            outs.append(apply_read_periphery(lin, xt, lin(xt), ReadNoise(0.05), ADCQuantization(6),
                                             torch.Generator().manual_seed(0), lin.weight.detach().abs().max()))
    others = [0, 3, 4, 5]
    assert torch.equal(outs[0][others], outs[1][others])
    assert bool(torch.isnan(outs[1][1]).all())
    u = float(np.abs(np.delete(x[2], 5)).max() * np.abs(w).max())
    torch.testing.assert_close((outs[1][2] - 0.25).abs(), torch.full((N_OUT,), 12.0 * u), rtol=1e-6, atol=0)
