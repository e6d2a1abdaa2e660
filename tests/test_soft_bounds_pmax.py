"""SoftBoundsPmax: soft bounds parametrised by p_max, checked against closed forms and aihwkit's code."""
import math

import numpy as np
import pytest

from xbarsim.devices import DeviceConfig, SoftBoundsPmax, pulse_response, symmetry_point

FIT = dict(p_max=400, alpha=0.004, range_min=-0.8, range_max=0.9)
QUIET = dict(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0)


def _b(p_max, alpha, range_min, range_max):
    return (range_max - range_min) / (1.0 - math.exp(-p_max * alpha))


def test_derived_parameters_follow_aihwkits_code():
    dev = SoftBoundsPmax(**FIT)
    b = _b(**FIT)
    assert dev.w_min == FIT["range_min"]
    assert dev.w_max == pytest.approx(FIT["range_min"] + b, rel=1e-15)
    assert dev.dw_min == pytest.approx(b * FIT["alpha"], rel=1e-15)
    assert dev.up_down == pytest.approx(1.0 + 2.0 * FIT["range_min"] / b, rel=1e-15)


def test_noise_free_response_is_the_closed_form():
    """Up: b_max - (b_max - w0)(1 - B alpha / b_max)^n; down: r_min + (w - r_min)(1 - 2 alpha)^n."""
    n = 300
    dev = SoftBoundsPmax(**FIT, **QUIET)
    b = _b(**FIT)
    r_min, b_max = FIT["range_min"], FIT["range_min"] + b
    w0 = r_min
    trace = pulse_response(dev, n_up=n, n_down=n, n_cells=2, seed=1, w0=w0)[:, 0].astype(np.float64)
    k = np.arange(n + 1)
    up = b_max - (b_max - w0) * (1.0 - b * FIT["alpha"] / b_max) ** k
    down = r_min + (up[-1] - r_min) * (1.0 - 2.0 * FIT["alpha"]) ** k
    expected = np.concatenate([up, down[1:]])
    tol = 2 * n * np.finfo(np.float32).eps * max(abs(r_min), b_max)  # float32 storage after every pulse
    np.testing.assert_allclose(trace, expected, rtol=0, atol=tol)


def test_symmetry_point_is_the_soft_bound_one():
    dev = SoftBoundsPmax(**FIT, **QUIET)
    a_up, a_dn = _b(**FIT) * FIT["alpha"], -2.0 * FIT["alpha"] * FIT["range_min"]
    expected = (a_up - a_dn) / (a_up / dev.w_max - a_dn / dev.w_min)
    assert symmetry_point(dev) == pytest.approx(expected, rel=1e-12)


def test_round_trip_and_errors_name_the_field():
    dev = SoftBoundsPmax(**FIT)
    assert DeviceConfig.from_dict(dev.to_dict()) == dev
    with pytest.raises(ValueError, match="SoftBoundsPmax.w_max = 3.0 is derived"):
        SoftBoundsPmax(**FIT, w_max=3.0)
    with pytest.raises(ValueError, match="SoftBoundsPmax.range_min"):
        SoftBoundsPmax(range_min=0.0)
    with pytest.raises(ValueError, match="SoftBoundsPmax.p_max"):
        SoftBoundsPmax(p_max=0)


def test_noise_free_response_equals_aihwkit_step_by_step():
    pytest.importorskip("aihwkit")
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.configs.devices import SoftBoundsPmaxDevice
    from aihwkit.utils.visualization import compute_pulse_response, get_tile_for_plotting

    n = 300
    config = SingleRPUConfig(device=SoftBoundsPmaxDevice(**FIT, **QUIET))
    tile = get_tile_for_plotting(config, 1, noise_free=True, w_init=FIT["range_min"])
    ref = compute_pulse_response(tile, np.array([1.0] * n + [-1.0] * n))[:, 0, 0]
    ours = pulse_response(SoftBoundsPmax(**FIT, **QUIET), n_up=n, n_down=n, n_cells=1, seed=0,
                          w0=FIT["range_min"])[1:, 0]
    tol = 4 * n * np.finfo(np.float32).eps  # both store float32 after every pulse
    np.testing.assert_allclose(ours, ref, rtol=0, atol=tol)
