"""Deployment on drifting conductances: program once, drift_to(t), drift compensation, IR drop on read."""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import IOConfig
from xbarsim.crossbar.ir_drop import ResistiveCrossbar, WireParasitics
from xbarsim.devices import IdealDevice, PCMLikeDrift, RRAMRelaxation
from xbarsim.mapping import AnalogConfig, convert_to_analog
from xbarsim.mapping.inference_physics import IRDropConfig, program

DAY, YEAR = 86400.0, 365.25 * 86400.0


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 10))


def _weights(model):
    return [m.weight.detach().clone() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def test_noiseless_cells_give_back_the_trained_weights_and_leave_the_original_alone():
    net = _net()
    quiet = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    dep = program(net, quiet, seed=1)
    deployed = dep.drift_to(YEAR)
    for a, b in zip(_weights(deployed), _weights(net)):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert deployed is not net


@pytest.mark.parametrize("noise", [PCMLikeDrift(), RRAMRelaxation()], ids=["pcm", "rram"])
def test_same_seed_same_weights_in_any_call_order(noise):
    a, b = program(_net(), noise, seed=3), program(_net(), noise, seed=3)
    w_a_day = _weights(a.drift_to(DAY))
    a.drift_to(YEAR)
    w_b_year = _weights(b.drift_to(YEAR))
    w_b_day = _weights(b.drift_to(DAY))
    for x, y in zip(w_a_day, w_b_day):
        assert torch.equal(x, y)
    for x, y in zip(_weights(a.drift_to(YEAR)), w_b_year):
        assert torch.equal(x, y)
    c = program(_net(), noise, seed=4)
    assert not torch.equal(_weights(c.drift_to(DAY))[1], w_a_day[1])


def test_drift_only_pcm_decays_each_weight_by_its_power_law():
    net = _net()
    m = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0)
    dep = program(net, m, seed=0)
    w = _weights(dep.drift_to(YEAR))[1].double().numpy()
    w0 = _weights(net)[1].double().numpy()
    plus, minus = dep.layers[1].cells
    nu = np.where(w0 >= 0, plus.evolution, minus.evolution)
    np.testing.assert_allclose(w, w0 * ((YEAR + m.t_0) / m.t_0) ** (-nu), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("how", ["global", "per_column"])
def test_compensation_restores_the_reference_readout(how):
    net = _net()
    dep = program(net, PCMLikeDrift(), seed=2, compensation=how)
    for t in (0.0, DAY, YEAR):
        w = _weights(dep.drift_to(t))[1].double().numpy()
        ref = dep.reference[1]
        if how == "global":
            assert np.abs(w).mean() == pytest.approx(ref, rel=1e-6)
        else:
            np.testing.assert_allclose(np.abs(w).mean(axis=1), ref, rtol=1e-6)


def test_compensation_is_the_identity_right_after_programming():
    plain = _weights(program(_net(), PCMLikeDrift(), seed=5).drift_to(0.0))
    comp = _weights(program(_net(), PCMLikeDrift(), seed=5, compensation="global").drift_to(0.0))
    for a, b in zip(plain, comp):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


def test_global_compensation_undoes_a_uniform_drift():
    # one drift exponent for every cell (set by hand: the fit's spread never reaches 0): the compensated
    # weights at any t equal the trained ones, the uncompensated ones decay by ((t + t0)/t0)^-nu
    net = nn.Linear(8, 4, bias=False)
    m = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0)
    w0 = net.weight.detach().double().numpy()
    for how in ("global", "none"):
        dep = program(net, m, compensation=how)
        layer = dep.layers[0]
        layer.cells = tuple(c._replace(evolution=np.full_like(c.evolution, 0.07)) for c in layer.cells)
        drifted = dep.drift_to(YEAR).weight.detach().double().numpy()
        decay = 1.0 if how == "global" else ((YEAR + m.t_0) / m.t_0) ** -0.07
        np.testing.assert_allclose(drifted, w0 * decay, rtol=1e-6, atol=1e-7)


def test_ir_solve_mode_matches_a_tiled_network_solve_and_vanishes_with_the_wire():
    torch.manual_seed(0)
    lin = nn.Linear(10, 6, bias=False)
    quiet = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    cfg = IRDropConfig(mode="solve", array_size=8, r_wire=1e-2, r_source=1e-2, r_load=1e-2)
    w_ir = program(lin, quiet, ir_drop=cfg).drift_to(0.0).weight.detach().double().numpy()
    w = lin.weight.detach().double().numpy()
    w_max = np.abs(w).max()
    # tile (rows 0..7, outputs 0..3) by hand: G+ and G- interleaved, in units of g_max
    tile = np.zeros((8, 8))
    tile[:, 0::2] = np.maximum(w[:4, :8], 0).T / w_max
    tile[:, 1::2] = np.maximum(-w[:4, :8], 0).T / w_max
    t = ResistiveCrossbar(tile, WireParasitics(1e-2, 1e-2, 1e-2)).transfer
    np.testing.assert_allclose(w_ir[:4, :8], (t[0::2] - t[1::2]) * w_max, rtol=1e-5, atol=1e-7)
    assert np.abs(w_ir - w).max() > 1e-3 * w_max  # the drop is visible
    tiny = IRDropConfig(mode="solve", array_size=8, r_wire=1e-9)
    w_tiny = program(lin, quiet, ir_drop=tiny).drift_to(0.0).weight.detach().double().numpy()
    np.testing.assert_allclose(w_tiny, w, rtol=0, atol=1e-6 * w_max)


def test_ir_approx_mode_runs_on_convolutions_and_is_exact_without_drop():
    net = _net()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    quiet = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    off = program(net, quiet, ir_drop=IRDropConfig(mode="approx", ir_drop=0.0, array_size=16)).drift_to(0.0)
    torch.testing.assert_close(off(x), net(x), rtol=1e-5, atol=1e-5)
    on = program(net, quiet, ir_drop=IRDropConfig(mode="approx", ir_drop=1.0, r_wire=1e-3, array_size=16))
    assert (on.drift_to(0.0)(x) - net(x)).abs().max() > 1e-4


def test_converted_analog_layers_are_deployed_too():
    net = _net()
    cfg = AnalogConfig(device=IdealDevice(), io=IOConfig(perfect=True))
    analog = convert_to_analog(net, cfg)
    quiet = PCMLikeDrift(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(program(analog, quiet).drift_to(DAY)(x), net(x), rtol=1e-4, atol=1e-5)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="compensation"):
        program(_net(), PCMLikeDrift(), compensation="sometimes")
    with pytest.raises(ValueError, match="IRDropConfig.mode"):
        IRDropConfig(mode="maybe")
    with pytest.raises(ValueError, match="array_size"):
        IRDropConfig(array_size=7)
    with pytest.raises(ValueError, match="drift_to.t"):
        program(_net(), PCMLikeDrift()).drift_to(-1.0)
