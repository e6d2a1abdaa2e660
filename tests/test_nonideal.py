"""Inference nonidealities: each mechanism against its equation, statistics against standard errors."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import IOConfig
from xbarsim.devices import IdealDevice, SoftBounds
from xbarsim.mapping.nonideal import (ADCQuantization, ConductanceLevels, DeviceProgramming, LognormalVariation,
                                      Nonideality, ProgrammingNoise, ReadNoise, StuckCells, evaluate_mc,
                                      layer_sensitivity, perturbed_forward, program, sample_weights)


def _ones_linear(rows=200, cols=250):
    m = nn.Sequential(nn.Linear(cols, rows, bias=False))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    return m


def _small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()


def test_lognormal_mean_matches_exp_sigma_squared_over_two_within_standard_errors():
    sigma = 0.5
    w = sample_weights(_ones_linear(), Nonideality(lognormal=LognormalVariation(sigma)), seed=3)["0.weight"]
    n = w.numel()
    expected = math.exp(sigma ** 2 / 2)
    se = math.sqrt((math.exp(sigma ** 2) - 1) * math.exp(sigma ** 2) / n)  # std of exp(theta) / sqrt(n)
    assert abs(float(w.double().mean()) - expected) < 4 * se
    # and log w is N(0, sigma^2): its std within the SE of a sample std
    assert abs(float(torch.log(w.double()).std()) - sigma) < 4 * sigma / math.sqrt(2 * (n - 1))


def test_differentiable_draw_is_the_same_chip_and_its_gradient_is_exp_theta():
    """Variation-aware training: w' = w e^theta keeps the graph, d(sum w')/dw = e^theta = w'/w exactly."""
    m = _small_cnn(1)
    nid = Nonideality(lognormal=LognormalVariation(0.7), programming=ProgrammingNoise(0.0))
    fixed = sample_weights(m, nid, seed=5)
    live = sample_weights(m, nid, seed=5, differentiable=True)
    assert all(torch.equal(fixed[k], live[k].detach()) and live[k].requires_grad for k in fixed)
    assert not any(v.requires_grad for v in fixed.values())
    sum(v.sum() for v in live.values()).backward()
    for name, layer in (("0", m[0]), ("3", m[3])):
        ratio = fixed[f"{name}.weight"] / layer.weight.detach()
        assert torch.allclose(layer.weight.grad, ratio, rtol=1e-5, atol=0)
    # additive noise: gradient 1 (w_max is a constant of the draw)
    m.zero_grad()
    sum(v.sum() for v in sample_weights(m, Nonideality(programming=ProgrammingNoise(0.1)), 2,
                                        differentiable=True).values()).backward()
    assert torch.equal(m[0].weight.grad, torch.ones_like(m[0].weight))
    with pytest.raises(ValueError, match="device programming"):
        sample_weights(m, Nonideality(device=DeviceProgramming(device=IdealDevice())), 0, differentiable=True)


def test_programming_noise_is_additive_relative_to_the_largest_weight():
    m = _ones_linear()
    with torch.no_grad():
        m[0].weight[0, 0] = 2.0  # max|W| = 2
    w = sample_weights(m, Nonideality(programming=ProgrammingNoise(0.1)), seed=1)["0.weight"]
    d = (w - m[0].weight.detach()).double().flatten()[1:]
    n = d.numel()
    assert abs(float(d.std()) - 0.2) < 4 * 0.2 / math.sqrt(2 * (n - 1))
    assert abs(float(d.mean())) < 4 * 0.2 / math.sqrt(n)


def test_conductance_levels_put_every_weight_on_the_grid():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(30, 20))
    w = sample_weights(m, Nonideality(levels=ConductanceLevels(5)), seed=0)["0.weight"]
    wmax = float(m[0].weight.detach().abs().max())
    grid = torch.tensor([-wmax, -wmax / 2, 0.0, wmax / 2, wmax])
    assert torch.allclose((w[..., None] - grid).abs().min(-1).values, torch.zeros_like(w), atol=1e-6)
    assert float((w - m[0].weight.detach()).abs().max()) <= wmax / 4 + 1e-6  # rounding error at most half a step


def test_stuck_cells_fractions_within_standard_errors():
    st = StuckCells(p_off=0.1, p_on=0.05)
    w = sample_weights(_ones_linear(), Nonideality(stuck=st), seed=2)["0.weight"]
    n = w.numel()
    frac_off = float((w == 0).double().mean())
    frac_on_neg = float((w == -1).double().mean())
    assert abs(frac_off - 0.1) < 4 * math.sqrt(0.1 * 0.9 / n)
    # stuck-on weights equal +-max|W| = +-1; the +1 ones are indistinguishable from unchanged weights,
    # so check the -1 half: probability p_on / 2
    assert abs(frac_on_neg - 0.025) < 4 * math.sqrt(0.025 * 0.975 / n)


def test_read_noise_std_is_sigma_times_full_scale():
    m = nn.Sequential(nn.Linear(10, 400, bias=False))
    with torch.no_grad():
        m[0].weight.uniform_(-0.5, 0.5)
        m[0].weight[0, 0] = 0.5
    x = torch.zeros(50, 10)
    x[:, 0] = 2.0  # max|x| = 2, so the full scale u = 2 * 0.5 = 1
    nid = Nonideality(read=ReadNoise(0.1))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        y = perturbed_forward(m, x, {}, nid, gen)
    d = (y - m(x).detach()).double().flatten()
    n = d.numel()
    assert abs(float(d.std()) - 0.1) < 4 * 0.1 / math.sqrt(2 * (n - 1))


def test_adc_outputs_lie_on_the_grid_and_clip_at_the_bound():
    m = nn.Sequential(nn.Linear(8, 16, bias=False))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
    adc = ADCQuantization(bits=4, out_bound=3.0)  # step 6/14 of the full scale u = max|x| * 1
    x = torch.rand(20, 8) * 0.9 + 0.1
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        y = perturbed_forward(m, x, {}, Nonideality(adc=adc), gen)
    u = x.abs().amax(1, keepdim=True)
    k = y / (u * adc.step)
    assert torch.allclose(k, torch.round(k), atol=1e-4)
    assert bool((y.abs() <= 3.0 * u + 1e-5).all())
    exact = m(x)
    inside = exact.abs() < 3.0 * u
    assert bool(((y - exact).abs()[inside] <= 0.5 * (u * adc.step).expand_as(y)[inside] + 1e-5).all())


def test_ideal_nonideality_changes_nothing_and_program_matches_the_fast_path():
    m = _small_cnn()
    x = torch.rand(7, 1, 6, 6)
    nid = Nonideality(lognormal=LognormalVariation(0.3), read=ReadNoise(0.05), adc=ADCQuantization(8))
    with torch.no_grad():
        assert torch.equal(perturbed_forward(m, x, {}, Nonideality(), torch.Generator()), m(x))
        deployed = program(m, Nonideality(lognormal=LognormalVariation(0.3)), seed=5)
        w = sample_weights(m, nid, seed=5)
        assert torch.equal(deployed[0].weight, w["0.weight"])
        assert torch.allclose(deployed(x), perturbed_forward(m, x, w, Nonideality(), torch.Generator()))


def test_device_programming_with_ideal_devices_returns_the_target_weights():
    m = _small_cnn()
    nid = Nonideality(device=DeviceProgramming(device=IdealDevice(), io=IOConfig(perfect=True)))
    deployed = program(m, nid, seed=0)
    for k in (0, 3):
        got = deployed[k].effective_weight()
        assert torch.allclose(got, m[k].weight.detach(), rtol=1e-6, atol=1e-7)
    x = torch.rand(4, 1, 6, 6)
    with torch.no_grad():
        assert torch.allclose(deployed(x), m(x), atol=1e-5)
    w = sample_weights(m, nid, seed=0)
    assert torch.allclose(w["3.weight"], m[3].weight.detach(), rtol=1e-6, atol=1e-7)


def test_device_programming_on_soft_bounds_lands_within_a_few_steps_and_matches_the_fast_path():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(12, 6))
    dp = DeviceProgramming(device=SoftBounds(), io=IOConfig(perfect=True), weight_fraction=0.5)
    deployed = program(m, Nonideality(device=dp), seed=4)
    got = deployed[0].effective_weight()
    alpha = deployed[0].scale
    err_steps = ((got - m[0].weight.detach()) / alpha / dp.device.dw_min).abs()
    # verify stops within 0.5 dw_min or one (c2c-noisy, d2d-scaled) pulse past the target
    assert float(err_steps.max()) < 5.0
    assert float(err_steps.max()) > 0.0  # it is a real programming, not a copy
    w = sample_weights(m, Nonideality(device=dp), seed=4)["0.weight"]
    assert torch.allclose(w, got, atol=1e-6)


def test_evaluate_mc_is_reproducible_and_reports_every_chip():
    m = _small_cnn()
    x = torch.rand(64, 1, 6, 6)
    y = torch.randint(0, 5, (64,))
    nid = Nonideality(lognormal=LognormalVariation(0.5), read=ReadNoise(0.05))
    a = evaluate_mc(m, (x, y), nid, n_samples=4, seed=9)
    b = evaluate_mc(m, (x, y), nid, n_samples=4, seed=9)
    assert a.accuracies.shape == (4,)
    assert np.array_equal(a.accuracies, b.accuracies)
    assert a.mean == pytest.approx(float(np.mean(a.accuracies)))


@pytest.mark.parametrize("bad", [
    lambda: LognormalVariation(-0.1), lambda: StuckCells(0.6, 0.6), lambda: ConductanceLevels(1),
    lambda: ADCQuantization(bits=1), lambda: ReadNoise(-1.0), lambda: DeviceProgramming(weight_fraction=0.0),
    lambda: Nonideality(lognormal=0.5), lambda: Nonideality(device=DeviceProgramming(), read=ReadNoise()),
])
def test_bad_configs_raise_value_errors(bad):
    with pytest.raises(ValueError):
        bad()


def test_nonideality_round_trips_through_dicts():
    nid = Nonideality(levels=ConductanceLevels(9), lognormal=LognormalVariation(0.2), stuck=StuckCells(0.01, 0.0),
                      read=ReadNoise(0.02), adc=ADCQuantization(6, 10.0))
    assert Nonideality.from_dict(nid.to_dict()) == nid
    dev = Nonideality(device=DeviceProgramming(device=SoftBounds(dw_min_std=0.1)))
    assert Nonideality.from_dict(dev.to_dict()) == dev


def _identity_chain(n_layers):
    layers = [nn.Linear(2, 2, bias=False) for _ in range(n_layers)]
    for layer in layers:
        with torch.no_grad():
            layer.weight.copy_(torch.eye(2))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("n_layers, alone, recovery", [(1, 0.5, 0.5), (2, 0.5, 0.0)])
def test_layer_sensitivity_modes_match_their_closed_forms(n_layers, alone, recovery):
    # every cell stuck off: a varied layer outputs 0, argmax picks class 0, accuracy = share of label 0 = 1/2.
    # alone: 1 - 1/2 for every layer.  recovery: one exact layer wins back everything only when no other
    # layer still varies (1 layer: 1 - 1/2; 2 layers: 1/2 - 1/2).
    x = torch.eye(2).repeat(50, 1)
    y = torch.tensor([0, 1]).repeat(50)
    model = _identity_chain(n_layers)
    nid = Nonideality(stuck=StuckCells(p_off=1.0))
    a = layer_sensitivity(model, (x, y), nid, n_samples=2, seed=3, mode="alone")
    r = layer_sensitivity(model, (x, y), nid, n_samples=2, seed=3, mode="recovery")
    assert a == pytest.approx({f"{k}": alone for k in range(n_layers)})
    assert r == pytest.approx({f"{k}": recovery for k in range(n_layers)})


def test_layer_sensitivity_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="mode must be 'alone' or 'recovery'"):
        layer_sensitivity(_identity_chain(1), (torch.eye(2), torch.tensor([0, 1])), Nonideality(), mode="leave_out")
