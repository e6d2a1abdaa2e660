"""Device physics against closed forms and standard errors."""
import math

import numba
import numpy as np
import pytest
from scipy import stats

from xbarsim.devices import (ConstantStep, ExpStep, IdealDevice, LinearStep, PiecewiseStep, PowStep, SoftBounds,
                     DeviceConfig, device_from_name, measure_symmetry_point, pulse_response, sample_cells,
                     symmetry_point)
from xbarsim.devices.kernels import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP
from xbarsim.devices.rng import make_key, normal, normals_into, uniform

NO_C2C = dict(dw_min_std=0.0)


def _cells(dev, n=6, seed=0):
    return sample_cells(dev, (1, n), seed)[0]


@pytest.mark.parametrize("up_down", [0.0, 0.4, -0.3])
def test_softbounds_pulse_response_matches_closed_form(up_down):
    dev = SoftBounds(dw_min=0.002, up_down=up_down, **NO_C2C)  # d2d on: every cell its own parameters
    n_up, n_down, n = 300, 400, 6
    tr = pulse_response(dev, n_up, n_down, n_cells=n, seed=3).astype(np.float64)
    c = _cells(dev, n, seed=3).astype(np.float64)
    a_up, a_dn, b_max, b_min = c[:, C_SCALE_UP], c[:, C_SCALE_DOWN], c[:, C_B_MAX], c[:, C_B_MIN]
    k = np.arange(n_up + 1)[:, None]
    w0 = b_min
    expected_up = b_max - (b_max - w0) * (1 - a_up / b_max) ** k
    np.testing.assert_allclose(tr[: n_up + 1], expected_up, rtol=0, atol=2e-5)
    w1 = tr[n_up]
    k = np.arange(n_down + 1)[:, None]
    expected_dn = b_min + (w1 - b_min) * (1 - a_dn / np.abs(b_min)) ** k
    np.testing.assert_allclose(tr[n_up:], expected_dn, rtol=0, atol=2e-5)


def test_constant_step_is_linear_and_clipped():
    dev = ConstantStep(dw_min=0.01, w_max=0.5, w_min=-0.5, **NO_C2C)
    tr = pulse_response(dev, 200, 0, n_cells=4, seed=1, w0=0.0).astype(np.float64)
    c = _cells(dev, 4, seed=1).astype(np.float64)
    k = np.arange(201)[:, None]
    expected = np.minimum(k * c[:, C_SCALE_UP], c[:, C_B_MAX])
    np.testing.assert_allclose(tr, expected, atol=1e-5)


def test_powstep_gamma_one_is_soft_bound_over_full_range():
    dev = PowStep(dw_min=0.005, pow_gamma=1.0, pow_gamma_dtod=0.0, **NO_C2C)
    tr = pulse_response(dev, 150, 0, n_cells=3, seed=2).astype(np.float64)
    c = _cells(dev, 3, seed=2).astype(np.float64)
    rng_ = c[:, C_B_MAX] - c[:, C_B_MIN]
    k = np.arange(151)[:, None]
    expected = c[:, C_B_MAX] - (c[:, C_B_MAX] - c[:, C_B_MIN]) * (1 - c[:, C_SCALE_UP] / rng_) ** k
    np.testing.assert_allclose(tr, expected, atol=2e-5)


def test_expstep_step_follows_its_formula():
    dev = ExpStep(dw_min=0.004, dw_min_dtod=0, up_down_dtod=0, w_max_dtod=0, w_min_dtod=0, **NO_C2C)
    tr = pulse_response(dev, 50, 50, n_cells=1, seed=0, w0=0.0)[:, 0].astype(np.float64)
    w = tr[0]
    for k in range(50):
        z = 2 * dev.a * w / (dev.w_max - dev.w_min) + dev.b
        w = min(w + dev.dw_min * max(1 - dev.A_up * math.exp(dev.gamma_up * z), 0), dev.w_max)
        assert tr[k + 1] == pytest.approx(w, abs=1e-6)
    for k in range(50, 100):
        z = 2 * dev.a * w / (dev.w_max - dev.w_min) + dev.b
        w = max(w - dev.dw_min * max(1 - dev.A_down * math.exp(-dev.gamma_down * z), 0), dev.w_min)
        assert tr[k + 1] == pytest.approx(w, abs=1e-6)


def test_piecewise_from_measured_response_reproduces_it():
    ref = SoftBounds(dw_min=0.004, up_down=0.2, dw_min_dtod=0, up_down_dtod=0, w_max_dtod=0, w_min_dtod=0,
                     **NO_C2C)
    meas = pulse_response(ref, 600, 600, n_cells=1, seed=0)[:, 0]
    up_trace, down_trace = meas[:601], meas[600:]
    pw = PiecewiseStep.from_pulse_response(up_trace, down_trace, n_nodes=32, dw_min_dtod=0, up_down_dtod=0,
                                           w_max_dtod=0, w_min_dtod=0, dw_min_std=0.0)
    sim = pulse_response(pw, 600, 600, n_cells=1, seed=0, w0=float(meas[0]))[:, 0]
    # the fit interpolates the step over 32 nodes: the traces agree to a few steps
    assert np.max(np.abs(sim - meas)) < 5 * ref.dw_min


def _noise_free_with_d2d(up_down):
    return SoftBounds(dw_min=0.001, up_down=up_down, dw_min_std=0.0)


@pytest.mark.parametrize("up_down", [0.0, 0.2, -0.4, 0.6])
def test_measured_symmetry_point_equals_closed_form(up_down):
    dev = _noise_free_with_d2d(up_down)
    cell = sample_cells(dev, (16, 16), seed=7)
    closed = symmetry_point(dev, cell)
    measured = measure_symmetry_point(dev, cell, seed=1)  # settles the slowest cell first
    assert np.max(np.abs(measured - closed)) <= 2 * dev.dw_min


def test_measured_symmetry_point_with_c2c_noise_within_standard_error():
    dev = SoftBounds(dw_min=0.002, up_down=0.4, dw_min_std=0.3, dw_min_dtod=0.1, w_max_dtod=0.1, w_min_dtod=0.1)
    cell = sample_cells(dev, (8, 8), seed=2)
    closed = symmetry_point(dev, cell)
    n_pairs, n_avg = 40000, 30000
    measured = measure_symmetry_point(dev, cell, n_pairs=n_pairs, n_average=n_avg, seed=5)
    c = cell.astype(np.float64)
    a_up, a_dn, b_max, b_min = c[..., C_SCALE_UP], c[..., C_SCALE_DOWN], c[..., C_B_MAX], c[..., C_B_MIN]
    rate = a_up / b_max + a_dn / np.abs(b_min)               # contraction per pair
    step_std = dev.dw_min_std * np.sqrt(2) * (a_up + a_dn) / 2  # c2c noise per pair near w*
    se = step_std / (rate * np.sqrt(n_avg))                   # AR(1) mean standard error
    z = (measured - closed) / (se + 1e-12)
    assert np.max(np.abs(z)) < 5


def test_symmetry_point_nominal_formula():
    dev = SoftBounds(up_down=0.3, w_max=0.6, w_min=-0.6)
    a_up, a_dn = dev.dw_min, dev.dw_min * 0.7
    assert symmetry_point(dev) == pytest.approx(0.6 * (a_up - a_dn) / (a_up + a_dn))
    with pytest.raises(ValueError, match="closed-form"):
        symmetry_point(ExpStep())


def test_dtod_statistics():
    dev = SoftBounds(dw_min=0.001, dw_min_dtod=0.3, up_down=0.0, up_down_dtod=0.0, w_max_dtod=0.2)
    cell = sample_cells(dev, (100, 100), seed=0).astype(np.float64)
    g = cell[..., C_SCALE_UP] / dev.dw_min
    n = g.size
    # |1 + 0.3 xi| has mean ~1 (folding negligible at 3.3 sigma); std 0.3
    assert abs(g.mean() - 1.0) < 4 * 0.3 / math.sqrt(n)
    assert abs(g.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * n)
    assert abs(cell[..., C_B_MAX].mean() - 0.6) < 4 * 0.6 * 0.2 / math.sqrt(n)
    log_dev = SoftBounds(dw_min_dtod=0.3, dw_min_dtod_log_normal=True, up_down_dtod=0.0)
    lg = np.log(sample_cells(log_dev, (100, 100), seed=0)[..., C_SCALE_UP] / log_dev.dw_min)
    assert abs(lg.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * n)


def test_stuck_devices_do_not_move():
    dev = SoftBounds(corrupt_devices_prob=0.5, dw_min=0.01)
    tr = pulse_response(dev, 50, 50, n_cells=400, seed=0)
    moved = np.any(tr != tr[0], axis=0)
    frac_stuck = 1 - moved.mean()
    assert abs(frac_stuck - 0.5) < 4 * math.sqrt(0.25 / 400)


def test_counter_rng_normal_statistics():
    @numba.njit
    def draw(n, key):
        out = np.empty(n)
        for i in range(n):
            out[i] = normal(key, i, 3)
        return out

    @numba.njit
    def draw_u(n, key):
        out = np.empty(n)
        for i in range(n):
            out[i] = uniform(key, i, 0)
        return out

    n = 200_000
    z = draw(n, make_key(11, 3, 5))
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.mean(np.abs(z) > 3) - 2 * stats.norm.sf(3)) < 4 * math.sqrt(0.0027 / n)
    u = draw_u(n, make_key(11, 3, 5))
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # same counter, same number; another key, another number
    assert np.array_equal(z, draw(n, make_key(11, 3, 5)))
    assert not np.array_equal(z[:100], draw(100, make_key(12, 3, 5)))


def test_vectorised_normals_equal_the_scalar_ones():
    """normals_into (two passes) gives normal(key, i, k) bit for bit, the rejected first draws included."""
    @numba.njit
    def scalar(key, i0, k, n):
        out = np.empty(n)
        for i in range(n):
            out[i] = normal(key, i0 + i, k)
        return out

    @numba.njit
    def vector(key, i0, k, n):
        out = np.empty(n)
        normals_into(key, i0, k, out)
        return out

    key = make_key(5, 4, 3)
    for i0, k, n in [(0, 0, 50_000), (123_457, 1, 777), (2**31, 5, 1000), (9, 0, 0)]:
        a, b = scalar(key, i0, k, n), vector(key, i0, k, n)
        assert np.array_equal(a, b)
    assert np.sum(np.abs(scalar(key, 0, 0, 50_000)) > 3.44) > 0  # the tail beyond the base layer is exercised


@pytest.mark.parametrize("kwargs,match", [
    (dict(dw_min=-0.001), r"dw_min = -0.001 is outside the allowed range \(0.0, inf\)"),
    (dict(dw_min=float("nan")), "dw_min must be a finite number"),
    (dict(w_min=0.7, w_max=0.6), "w_min = 0.7 is outside"),
    (dict(w_min=-0.5, w_max=-0.6), "w_max = -0.6 is outside"),
    (dict(corrupt_devices_prob=1.5), r"corrupt_devices_prob = 1.5 is outside the allowed range \[0.0, 1.0\]"),
    (dict(up_down=1.0), "up_down = 1.0 is outside"),
    (dict(dw_min_std=-0.1), "dw_min_std = -0.1 is outside"),
    (dict(lifetime=0.5), "lifetime"),
    (dict(mult_noise="yes"), "mult_noise must be True or False"),
])
def test_validation_errors_name_field_value_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SoftBounds(**kwargs)


def test_validation_other_models_and_lookup():
    with pytest.raises(ValueError, match="piecewise_up and piecewise_down"):
        PiecewiseStep(piecewise_up=(1, 2), piecewise_down=(1,))
    with pytest.raises(ValueError, match="pow_gamma"):
        PowStep(pow_gamma=0.0)
    with pytest.raises(ValueError, match="device 'rram' is unknown"):
        device_from_name("rram")
    with pytest.raises(ValueError, match="has no parameter 'dwmin'"):
        device_from_name("SoftBounds", dwmin=0.1)
    assert device_from_name("soft_bounds", up_down=0.2) == SoftBounds(up_down=0.2)


@pytest.mark.parametrize("dev", [SoftBounds(up_down=0.2), ConstantStep(), LinearStep(gamma_up=0.5),
                                 ExpStep(), PowStep(pow_gamma=1.5), PiecewiseStep(piecewise_up=(1, 2, 3),
                                                                                  piecewise_down=(3, 2, 1)),
                                 IdealDevice(lifetime=10.0)])
def test_config_round_trip(dev):
    assert DeviceConfig.from_dict(dev.to_dict()) == dev
