"""Conductance over time: PCM-like drift and RRAM relaxation against their own equations.

The statistics tests draw many cells programmed to one target, read them at
1 hour, 1 day and 1 year, and compare the sample mean and standard deviation with
the moments the model's equations give (closed forms and 1-D quadratures written
out here, independently of the sampler), within Z standard errors.
"""
import math

import numpy as np
import pytest
from scipy import integrate, special

from xbarsim.devices import PCMLikeDrift, RRAMRelaxation, RRAMWan2022, conductance_time_model_from_dict

HOUR, DAY, YEAR = 3600.0, 86400.0, 365.25 * 86400.0
N_CELLS = 40_000
#: 5 targets x 3 times x 2 statistics x 3 models = 90 comparisons; at 4.5 standard errors
#: a correct model fails one of them with probability about 90 * 7e-6
Z = 4.5


def _normal_expectation(f):
    """E[f(z)] for z ~ N(0, 1), by adaptive quadrature."""
    val, _ = integrate.quad(lambda z: f(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), -12, 12,
                            limit=200, epsabs=1e-13, epsrel=1e-11)
    return val


def _folded_normal_mgf(c, mu, s):
    """E[exp(-c |X|)], X ~ N(mu, s^2): closed form."""
    phi = special.ndtr
    return (math.exp(-c * mu + 0.5 * c * c * s * s) * phi(mu / s - c * s)
            + math.exp(c * mu + 0.5 * c * c * s * s) * phi(-mu / s - c * s))


def _pcm_moments(m: PCMLikeDrift, g_t: float, t: float) -> tuple[float, float]:
    """Mean and std of g(t) from the PCM equations (the clip of g(t) at 0 is negligible for these targets)."""
    sp = m.prog_noise_scale * (0.26348 + 1.9650 * (g_t / m.g_max) - 1.1731 * (g_t / m.g_max) ** 2) \
        * m.g_max / m.prog_coeff_g_max_reference
    g_r = g_t / m.g_max
    mu = min(max(-0.0155 * math.log(g_r) + 0.0244, 0.049), 0.1)
    s = min(max(-0.0125 * math.log(g_r) - 0.0059, 0.008), 0.045)
    a = m.drift_scale * math.log((t + m.t_0) / m.t_0)
    log_f = math.log((t + m.t_0 + m.t_read) / (2 * m.t_read))

    def q(g):
        return min(0.0088 / max((abs(g) / m.g_max) ** 0.65, 1e-3), 0.2)

    def gp(z):
        return max(g_t + sp * z, 0.0)

    e1 = _normal_expectation(gp)
    e2 = _normal_expectation(lambda z: gp(z) ** 2 * (1 + (m.read_noise_scale * q(gp(z))) ** 2 * log_f))
    mean = e1 * _folded_normal_mgf(a, mu, s)
    second = e2 * _folded_normal_mgf(2 * a, mu, s)
    return mean, math.sqrt(second - mean * mean)


def _rram_moments(m: RRAMRelaxation, g_t: float, t: float) -> tuple[float, float]:
    """Mean and std of g(t) from the RRAM equations (the clip to [g_min, g_max] is negligible here)."""
    a0, a1 = {0.2: (8.1107e-4, 1.06879e-3), 2.0: (1.12185391e-2, 1.129027418e-2)}[m.acceptance_range]
    sp = m.prog_noise_scale * (a0 + a1 * g_t)
    s1, s0 = m.relax_std
    shift = m.drift_scale * m.relax_mean * math.log(t)
    s_rel = m.drift_scale * abs(s1 * math.log(t) + s0)
    s_drift = math.hypot(sp, s_rel)
    log_f = math.log((t + m.t_read) / (2 * m.t_read))
    e_log2 = _normal_expectation(lambda z: math.log10(g_t + shift + s_drift * z) ** 2)
    var = s_drift ** 2 + (m.read_noise_scale * m.read_k) ** 2 * log_f * e_log2
    return g_t + shift, math.sqrt(var)


def _wan_moments(m: RRAMWan2022, g_t: float, t: float) -> tuple[float, float]:
    """Mean and std of a Wan 2022 read: the target with the fitted spread (interpolated in ln t, held past
    2 days), clipped at 0."""
    fits = {1.0: (0.348, 16.030, -43.853, 45.393, -16.815),
            86400.0: (0.701, 22.086, -50.773, 47.095, -16.458),
            172800.0: (0.782, 20.274, -43.507, 37.062, -11.934)}
    x = g_t / m.g_max
    sig = {tk: sum(c * x ** i for i, c in enumerate(cs)) for tk, cs in fits.items()}
    if t <= 86400.0:
        w = math.log(t) / math.log(86400.0)
        s = (1 - w) * sig[1.0] + w * sig[86400.0]
    elif t <= 172800.0:
        w = math.log(t / 86400.0) / math.log(2.0)
        s = (1 - w) * sig[86400.0] + w * sig[172800.0]
    else:
        s = sig[172800.0]
    # the read is clipped at 0 (a spread of a few µS reaches it at small targets): censored normal moments
    s *= m.noise_scale
    a = g_t / s
    cdf, pdf = special.ndtr(a), math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    mean = g_t * cdf + s * pdf
    second = (g_t * g_t + s * s) * cdf + g_t * s * pdf
    return mean, math.sqrt(second - mean * mean)


def _standard_errors(x: np.ndarray) -> tuple[float, float]:
    """Standard errors of the sample mean and of the sample std (delta method, fourth moment)."""
    n = x.size
    s = x.std(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return s / math.sqrt(n), math.sqrt(max(m4 - s ** 4, 0.0) / n) / (2 * s)


CASES = [
    (PCMLikeDrift(), (2.0, 5.0, 10.0, 17.5, 25.0), _pcm_moments),
    (RRAMRelaxation(), (20.0, 35.0, 50.0, 65.0, 80.0), _rram_moments),
    (RRAMWan2022(), (5.0, 10.0, 15.0, 20.0, 25.0), _wan_moments),
]


@pytest.mark.parametrize("model,targets,moments", CASES, ids=["pcm", "rram", "rram_wan2022"])
@pytest.mark.parametrize("t", [HOUR, DAY, YEAR], ids=["1h", "1day", "1year"])
def test_drifted_conductance_mean_and_std_match_the_equations(model, targets, moments, t):
    rng = np.random.default_rng(1234)
    for k, g_t in enumerate(targets):
        cells = model.program(np.full(N_CELLS, g_t), rng)
        g = model.at_time(cells, t, rng)
        mean, std = moments(model, g_t, t)
        se_mean, se_std = _standard_errors(g)
        assert abs(g.mean() - mean) <= Z * se_mean, (g_t, t, g.mean(), mean, se_mean)
        assert abs(g.std(ddof=1) - std) <= Z * se_std, (g_t, t, g.std(ddof=1), std, se_std)


def test_pcm_drift_alone_is_the_power_law():
    m = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0)
    g_t = np.linspace(1.0, 25.0, 50)
    cells = m.program(g_t, np.random.default_rng(0))
    np.testing.assert_array_equal(cells.g_prog, g_t)
    for t in (0.0, 1.0, YEAR):
        g = m.at_time(cells, t, np.random.default_rng(1))
        np.testing.assert_allclose(g, g_t * ((t + m.t_0) / m.t_0) ** (-cells.evolution), rtol=1e-14)


def test_pcm_drift_exponent_statistics_follow_the_fit():
    m = PCMLikeDrift()
    g_t = 5.0
    nu = m.program(np.full(N_CELLS, g_t), np.random.default_rng(3)).evolution
    g_r = g_t / m.g_max
    mu, s = -0.0155 * math.log(g_r) + 0.0244, -0.0125 * math.log(g_r) - 0.0059  # both inside their clips
    # folded normal mean: s sqrt(2/pi) exp(-mu^2 / 2 s^2) + mu (1 - 2 Phi(-mu/s))
    folded_mean = s * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * s * s)) + mu * (1 - 2 * special.ndtr(-mu / s))
    assert abs(nu.mean() - folded_mean) <= Z * nu.std() / math.sqrt(nu.size)


def test_rram_relaxation_without_noise_is_the_log_time_shift():
    m = RRAMRelaxation(prog_noise_scale=0.0, read_noise_scale=0.0, relax_std=(0.0, 0.0))
    g_t = np.linspace(20.0, 80.0, 7)
    cells = m.program(g_t, np.random.default_rng(0))
    np.testing.assert_array_equal(m.at_time(cells, 0.0, np.random.default_rng(1)), g_t)
    for t in (1.0, DAY, YEAR):
        np.testing.assert_allclose(m.at_time(cells, t, np.random.default_rng(1)),
                                   g_t + m.relax_mean * math.log(t), rtol=1e-14)


@pytest.mark.parametrize("model", [PCMLikeDrift(), RRAMRelaxation(), RRAMWan2022()], ids=["pcm", "rram", "wan"])
def test_same_seed_same_conductances_and_round_trip(model):
    g_t = np.linspace(10.0, 25.0, 30)

    def draw():
        rng = np.random.default_rng(7)
        cells = model.program(g_t, rng)
        return model.at_time(cells, DAY, rng)

    np.testing.assert_array_equal(draw(), draw())
    assert conductance_time_model_from_dict(model.to_dict()) == model


def test_bad_values_name_the_field_and_range():
    with pytest.raises(ValueError, match=r"PCMLikeDrift.t_0.*-1.0"):
        PCMLikeDrift(t_0=-1.0)
    with pytest.raises(ValueError, match=r"RRAMRelaxation.acceptance_range"):
        RRAMRelaxation(acceptance_range=1.0)
    with pytest.raises(ValueError, match=r"RRAMRelaxation.g_min"):
        RRAMRelaxation(g_min=100.0)
    with pytest.raises(ValueError, match=r"\.t "):
        PCMLikeDrift().at_time(PCMLikeDrift().program(np.ones(2), np.random.default_rng(0)), -1.0,
                               np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown"):
        conductance_time_model_from_dict({"type": "Nope"})


def test_wan2022_spread_at_the_fitted_times_is_the_published_polynomial():
    m = RRAMWan2022()
    # at g_T = g_max the polynomial is the sum of its coefficients
    for t, total in ((1.0, 1.103), (86400.0, 2.651), (172800.0, 2.677)):
        assert float(m.spread(np.array([m.g_max]), t)[0]) == pytest.approx(total, abs=1e-9)
    assert float(m.spread(np.array([0.0]), 3.0e7)[0]) == pytest.approx(0.782)  # held past 2 days
    assert float(RRAMWan2022(coeff_g_max_reference=40.0).spread(np.array([0.0]), 1.0)[0]) == \
        pytest.approx(0.348 * 25 / 40)
