r"""Reference devices and zero-shifting (xbarsim.mapping.reference) against closed forms.

Oracles
-------
* Symmetry point of a soft-bound cell, closed form
  ``w* = (alpha_+ - alpha_-)/(alpha_+/b_max - alpha_-/b_min)`` (Kim et al.,
  arXiv:1907.10228), per cell from its own d2d parameters.
* Noise-free, a settled cell zig-zags between two states one step apart whose
  mean is ``w*`` up to ``O(alpha * rate)``: the measurement is within ``2 dw_min``.
* With c2c noise ``sigma`` the measurement is the mean of an AR(1) process with
  contraction ``rate = alpha_+/b_max + alpha_-/|b_min|`` per pair and per-pair noise
  ``sigma sqrt(2) (alpha_+ + alpha_-)/2``, so its standard error is
  ``step_std / (rate sqrt(n_average))`` (as tests/test_devices.py).
* Program-and-verify stops within the tolerance or one pulse past the target, so
  a reachable target is missed by at most one step at the final state, times
  ``1 + 5 sigma`` with c2c noise.
"""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import CrossbarArray, IOConfig
from xbarsim.devices import SoftBounds, sample_cells, symmetry_point
from xbarsim.devices.kernels import C_B_MAX, C_B_MIN, C_SCALE_DOWN, C_SCALE_UP, C_SLOPE_DOWN, C_SLOPE_UP
from xbarsim.mapping import AnalogConfig, ReferenceConfig, apply_reference, convert_to_analog, program_reference
from xbarsim.mapping.reference import measure_array_symmetry_point, program_cells
from xbarsim.training import AnalogSGD

# moderate d2d spread: every cell its own parameters, but no almost-immobile cells
D2D = dict(dw_min_dtod=0.1, up_down_dtod=0.05, w_max_dtod=0.1, w_min_dtod=0.1)


def _array(up_down, dw_min=0.002, dw_min_std=0.0, rows=64, cols=48, seed=3, **kw):
    dev = SoftBounds(dw_min=dw_min, up_down=up_down, dw_min_std=dw_min_std, **{**D2D, **kw})
    return CrossbarArray(rows, cols, device=dev, io=IOConfig(perfect=True), seed=seed)


def _steps(cell, w):
    """Noise-free up and down step magnitudes of SoftBounds cells at weight ``w``."""
    c = cell.astype(np.float64)
    return c[..., C_SCALE_UP] + c[..., C_SLOPE_UP] * w, c[..., C_SCALE_DOWN] + c[..., C_SLOPE_DOWN] * w


@pytest.mark.parametrize("up_down", [0.0, 0.4, -0.6, 0.8])
def test_measured_symmetry_point_of_every_cell_matches_closed_form(up_down):
    arr = _array(up_down)
    closed = symmetry_point(arr.device, arr.cell_params)
    # settle_quantile=1: wait for the slowest cell, so every cell is settled
    measured = measure_array_symmetry_point(arr, ReferenceConfig(settle_quantile=1.0), seed=1)
    assert measured.shape == (64, 48)
    assert np.max(np.abs(measured - closed)) <= 2 * arr.device.dw_min
    # the test has teeth: the symmetry points spread over many steps
    if up_down != 0:
        assert np.ptp(closed) > 20 * arr.device.dw_min


def test_measured_symmetry_point_with_c2c_noise_within_standard_error():
    arr = _array(0.4, dw_min=0.004, dw_min_std=0.3)
    n_avg = 20_000
    cfg = ReferenceConfig(settle_quantile=1.0, n_average=n_avg)
    measured = measure_array_symmetry_point(arr, cfg, seed=5)
    c = arr.cell_params.astype(np.float64)
    a_up, a_dn, b_max, b_min = c[..., C_SCALE_UP], c[..., C_SCALE_DOWN], c[..., C_B_MAX], c[..., C_B_MIN]
    rate = a_up / b_max + a_dn / np.abs(b_min)
    step_std = arr.device.dw_min_std * np.sqrt(2) * (a_up + a_dn) / 2
    se = step_std / (rate * np.sqrt(n_avg))
    z = (measured - symmetry_point(arr.device, arr.cell_params)) / se
    # 3072 cells: P(max |z| > 5) ~ 3072 * 5.7e-7 ~ 2e-3 under the AR(1) model
    assert np.max(np.abs(z)) < 5
    assert abs(np.mean(z ** 2) - 1) < 0.5  # the standard error is the right scale, not just an upper bound


def test_ideal_zero_shifting_makes_the_symmetry_point_the_zero_weight():
    """Drive every cell from its upper bound with alternating pulses: W settles at 0 (and at w* without)."""
    arr = _array(0.6, rows=8, cols=8)
    closed = symmetry_point(arr.device, arr.cell_params)
    stats = program_reference(arr, ReferenceConfig(mode="symmetry_point", ideal=True), seed=0)
    np.testing.assert_allclose(arr.reference, closed, atol=1e-7)
    assert stats["program_error_max_steps"] == 0
    arr.set_weights(np.zeros((8, 8)))
    np.testing.assert_allclose(arr.get_conductances(), closed, atol=1e-7)  # G parked at w*: W = 0
    up, down = np.ones((8, 8), bool), np.zeros((8, 8), bool)
    arr.set_weights(np.full((8, 8), 10.0))  # clipped: every G at its upper bound
    from xbarsim.devices.symmetry import convergence_pairs
    n_pairs = convergence_pairs(arr.cell_params)
    trace = []
    for k in range(n_pairs + 200):
        arr.apply_pulses(up)
        if k >= n_pairs:
            trace.append(arr.get_weights())
        arr.apply_pulses(down)
        if k >= n_pairs:
            trace.append(arr.get_weights())
    w_mean = np.mean(trace, axis=0)
    assert np.max(np.abs(w_mean)) < 0.5 * arr.device.dw_min
    # without the reference the same protocol lands on w*, far from 0
    arr.set_reference(None)
    assert np.max(np.abs(arr.get_weights() - closed)) < 2 * arr.device.dw_min
    assert np.min(np.abs(closed)) > 20 * arr.device.dw_min


@pytest.mark.parametrize("dw_min_std", [0.0, 0.3])
def test_programmed_reference_carries_about_one_step_of_error(dw_min_std):
    arr = _array(0.4, dw_min_std=dw_min_std)
    cfg = ReferenceConfig(mode="symmetry_point")
    target = measure_array_symmetry_point(arr, cfg, seed=2)  # the same measurement program_reference makes
    stats = program_reference(arr, cfg, seed=2)
    ref = arr.reference.astype(np.float64)
    ref_cells = sample_cells(arr.device, (64, 48), 2 + cfg.seed_offset)
    up, down = _steps(ref_cells, ref)
    reachable = (target < ref_cells[..., C_B_MAX] - 5 * arr.device.dw_min) & \
                (target > ref_cells[..., C_B_MIN] + 5 * arr.device.dw_min)
    assert reachable.mean() > 0.99
    bound = np.maximum(np.maximum(up, down), cfg.program_tolerance * arr.device.dw_min) * (1 + 5 * dw_min_std)
    err = np.abs(ref - target)
    assert np.all(err[reachable] <= bound[reachable] + 1e-6)
    dw = arr.device.dw_min
    assert stats["program_error_rms_steps"] < 1.0
    assert np.max(err[reachable]) < 3 * dw
    assert stats["not_converged"] == 0
    # not ideal: the error is really there
    assert stats["program_error_rms_steps"] > 0.05


def test_program_cells_reports_unreachable_targets():
    dev = SoftBounds(dw_min=0.01, dw_min_std=0.0, **D2D)
    cell = sample_cells(dev, (1, 4), 0)
    target = np.array([[0.0, 0.1, 5.0, -5.0]])  # the last two lie beyond every cell's bounds
    w, stats = program_cells(dev, cell, target, seed=0)
    assert stats["not_converged"] == 0 and stats["saturated"] == 2
    assert np.all(np.abs(w[0, :2] - target[0, :2]) <= 2 * dev.dw_min)
    assert w[0, 2] > cell[0, 2, C_B_MAX] - dev.dw_min and w[0, 3] == pytest.approx(cell[0, 3, C_B_MIN])


def test_zero_mode_reads_g_minus_a_near_zero_reference():
    arr = _array(0.6)
    w0 = np.random.default_rng(0).uniform(-0.1, 0.1, (64, 48)).astype(np.float32)
    arr.set_weights(w0)
    stats = program_reference(arr, ReferenceConfig(mode="zero"), seed=1)
    ref = arr.reference
    assert ref.shape == (64, 48)
    np.testing.assert_array_equal(arr.get_weights(), arr.get_conductances() - ref)
    assert np.max(np.abs(ref)) < 3 * arr.device.dw_min
    assert np.max(np.abs(arr.get_weights() - arr.get_conductances())) < 3 * arr.device.dw_min
    np.testing.assert_allclose(arr.get_weights(), w0, atol=1e-6)  # the weights were re-programmed
    assert stats["measure_pairs"] == 0  # nothing measured
    ideal = _array(0.6)
    program_reference(ideal, ReferenceConfig(mode="zero", ideal=True), seed=1)
    assert np.all(ideal.reference == 0)


def test_none_mode_removes_the_reference_and_keeps_weights():
    arr = _array(0.4)
    program_reference(arr, ReferenceConfig(mode="symmetry_point", ideal=True))
    w = arr.get_weights()
    stats = program_reference(arr, ReferenceConfig(mode="none"))
    assert arr.reference is None and stats["cells"] == 0
    np.testing.assert_allclose(arr.get_weights(), w, atol=1e-6)
    np.testing.assert_array_equal(arr.get_weights(), arr.get_conductances())


def test_shared_column_holds_the_mean_over_outputs():
    arr = _array(0.6)
    closed = symmetry_point(arr.device, arr.cell_params)
    program_reference(arr, ReferenceConfig(mode="symmetry_point", placement="shared_column", ideal=True))
    assert arr.reference.shape == (48,)
    np.testing.assert_allclose(arr.reference, closed.mean(axis=0), atol=1e-6)
    # every output subtracts the same reference cell
    np.testing.assert_allclose(arr.get_weights(), arr.get_conductances() - arr.reference[None, :], atol=0)

    measured = _array(0.6)
    cfg = ReferenceConfig(mode="symmetry_point", placement="shared_column")
    target = measure_array_symmetry_point(measured, cfg, seed=4).mean(axis=0)
    shared = program_reference(measured, cfg, seed=4)
    assert measured.reference.shape == (48,) and shared["cells"] == 48
    assert np.max(np.abs(measured.reference - target)) < 3 * measured.device.dw_min
    # the shared column leaves the d2d spread of w* along each column: a larger residual attractor
    per_weight = program_reference(_array(0.6), ReferenceConfig(mode="symmetry_point"), seed=4)
    none = program_reference(_array(0.6), ReferenceConfig(mode="none"))
    assert per_weight["attractor_rms"] < shared["attractor_rms"] < none["attractor_rms"]
    spread = np.sqrt(np.mean((closed - closed.mean(axis=0)) ** 2))
    assert shared["attractor_rms"] == pytest.approx(spread, rel=0.1)


def test_training_leaves_the_reference_unchanged():
    torch.manual_seed(0)
    dev = SoftBounds(dw_min=0.002, up_down=0.5, **D2D)
    model = convert_to_analog(nn.Sequential(nn.Linear(32, 32), nn.Sigmoid(), nn.Linear(32, 3)),
                              AnalogConfig(device=dev, io=IOConfig(perfect=True)), seed=10)
    layers = [m for m in model.modules() if hasattr(m, "array")]
    w_before = [m.array.get_weights() for m in layers]
    stats = apply_reference(model, ReferenceConfig(mode="symmetry_point"), seed=3)
    assert list(stats) == ["0", "2"] and all(s["clipped"] == 0 for s in stats.values())
    for m, w in zip(layers, w_before):  # conversion's initial weights are kept
        np.testing.assert_allclose(m.array.get_weights(), w, atol=1e-6)
    refs = [m.array.reference.copy() for m in layers]
    g0 = [m.array.get_conductances() for m in layers]
    opt = AnalogSGD(model.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x, t = torch.rand(8, 32, generator=g), torch.randint(0, 3, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        opt.step()
    for m, r, g_start in zip(layers, refs, g0):
        np.testing.assert_array_equal(m.array.reference, r)
        assert np.any(m.array.get_conductances() != g_start)  # training did pulse G


def test_same_seed_same_reference_and_layers_get_their_own_seeds():
    def run(seed):
        torch.manual_seed(0)
        model = convert_to_analog(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)),
                                  AnalogConfig(device=SoftBounds(dw_min=0.004, up_down=0.3)), seed=0)
        apply_reference(model, ReferenceConfig(mode="symmetry_point"), seed=seed)
        return [m.array.reference for m in model if hasattr(m, "array")]
    a, b, c = run(7), run(7), run(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_config_round_trip():
    cfg = ReferenceConfig(mode="symmetry_point", placement="shared_column", ideal=True, n_average=50)
    assert ReferenceConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="has no field"):
        ReferenceConfig.from_dict({"mode": "zero", "modus": 1})


@pytest.mark.parametrize("kwargs,match", [
    (dict(mode="shifted"), r"ReferenceConfig.mode = 'shifted' is not allowed; choose one of \['none', 'zero'"),
    (dict(placement="row"), r"ReferenceConfig.placement = 'row' is not allowed"),
    (dict(ideal=1), r"ReferenceConfig.ideal must be True or False"),
    (dict(n_average=0), r"ReferenceConfig.n_average = 0 is outside the allowed range \[1, inf\)"),
    (dict(n_average=2.5), r"ReferenceConfig.n_average must be an integer"),
    (dict(max_pairs=-1), r"ReferenceConfig.max_pairs = -1 is outside"),
    (dict(settle_quantile=0.0), r"ReferenceConfig.settle_quantile = 0.0 is outside the allowed range \(0.0, 1.0\]"),
    (dict(seed_offset=-3), r"ReferenceConfig.seed_offset = -3 is outside"),
    (dict(program_tolerance=-0.1), r"ReferenceConfig.program_tolerance = -0.1 is outside"),
    (dict(max_program_pulses=0), r"ReferenceConfig.max_program_pulses = 0 is outside"),
])
def test_validation_errors_name_field_value_and_range(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReferenceConfig(**kwargs)


def test_misuse_is_reported():
    from xbarsim.devices import ExpStep, IdealDevice
    ideal_arr = CrossbarArray(2, 2, device=IdealDevice())
    with pytest.raises(ValueError, match="needs a pulsed device"):
        program_reference(ideal_arr, ReferenceConfig(mode="zero"))
    exp_arr = CrossbarArray(2, 2, device=ExpStep())
    with pytest.raises(ValueError, match="closed-form"):
        program_reference(exp_arr, ReferenceConfig(mode="symmetry_point", ideal=True))
    with pytest.raises(ValueError, match="config must be a xbarsim.mapping.ReferenceConfig"):
        program_reference(exp_arr, {"mode": "zero"})
    with pytest.raises(ValueError, match="no analog layers"):
        apply_reference(nn.Linear(2, 2), ReferenceConfig(mode="zero"))
