"""BasisN-style decomposition, its crossbar model, and the K-array schedules."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import IOConfig
from xbarsim.devices import IdealDevice
from xbarsim.mapping import AnalogConfig, ArrayBank, convert_to_analog
from xbarsim.mapping.basis import (BasisDecomposition, BasisNet, BasisNModel, quantize_coefficients,
                                   relative_error, segment_weight)
from xbarsim.crossbar.costs import HardwareParams, estimate
from xbarsim.mapping.basis_schedule import (LayerShape, Program, basisn_schedule, conventional_schedule,
                                            layer_shapes, schedule_inventory, schedule_op_counts)

PERFECT = IOConfig(perfect=True)
COUNTED = IOConfig(bound_management="none")  # ADC conversions = reads x outputs exactly


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 3 * 3, 5)).eval()


@pytest.mark.parametrize("sharing", ["global", "per_stage", "per_layer"])
def test_exact_bases_and_float_coefficients_reproduce_the_layers_on_ideal_crossbars(sharing):
    model = _cnn()
    x = torch.randn(3, 2, 8, 8)
    ref = model(x)
    net = BasisNet(model, BasisDecomposition(n_bases=8, segment_rows=8, coeff_bits=0, sharing=sharing))
    assert max(relative_error(net, model).values()) < 1e-6
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref, rtol=1e-5, atol=1e-5)
        analog = BasisNModel(net, n_arrays=16, array_rows=3, device=IdealDevice(), io=PERFECT)
        analog.program()
        torch.testing.assert_close(analog(x), ref, rtol=1e-5, atol=1e-5)


def test_truncated_svd_bases_leave_exactly_the_discarded_singular_values():
    torch.manual_seed(3)
    lin = nn.Sequential(nn.Linear(24, 10, bias=False))
    net = BasisNet(lin, BasisDecomposition(n_bases=3, segment_rows=6, coeff_bits=0))
    segs = segment_weight(lin[0].weight.detach().double(), 6).reshape(-1, 6)
    s = torch.linalg.svdvals(segs)
    expected = float(s[3:].pow(2).sum().sqrt() / s.pow(2).sum().sqrt())
    assert relative_error(net, lin)["0"] == pytest.approx(expected, rel=1e-4)


def test_quantized_coefficients_lie_on_a_per_output_grid_with_a_straight_through_gradient():
    c = torch.randn(5, 3, 4, requires_grad=True)
    q = quantize_coefficients(c, 4)
    scale = c.detach().abs().reshape(5, -1).amax(1) / 7
    steps = q.detach() / scale.view(-1, 1, 1)
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-4)
    assert steps.abs().max() <= 7 + 1e-4
    assert (q.detach() - c.detach()).abs().max() <= scale.max() / 2 + 1e-6
    q.sum().backward()
    torch.testing.assert_close(c.grad, torch.ones_like(c))
    assert quantize_coefficients(c, 0) is c


def test_bases_and_coefficients_train_jointly_unless_the_bases_are_frozen():
    model = _cnn()
    x = torch.randn(2, 2, 8, 8)
    net = BasisNet(model, BasisDecomposition(n_bases=4, segment_rows=8, coeff_bits=4))
    net(x).pow(2).sum().backward()
    assert net.bases["global"].grad.abs().sum() > 0
    assert all(layer.coefficients.grad.abs().sum() > 0 for layer in net.layers.values())
    frozen = BasisNet(model, BasisDecomposition(n_bases=4, segment_rows=8, train_bases=False, init="kmeans"))
    assert not frozen.bases["global"].requires_grad


@pytest.mark.parametrize("field,value", [("n_bases", 0), ("segment_rows", 0), ("coeff_bits", 1),
                                         ("coeff_bits", 17), ("sharing", "tiles"), ("init", "pca")])
def test_bad_decomposition_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        BasisDecomposition(**{field: value})


# ----------------------------------------------------------------------------- schedules
TWO_LAYERS = [LayerShape("a", out_features=6, fan_in=10, positions=4),
              LayerShape("b", out_features=3, fan_in=5, positions=1)]


def test_conventional_schedule_counts_a_hand_computed_two_layer_case():
    # 4x8 arrays: layer a is ceil(6/4) * ceil(10/8) = 4 blocks, layer b one block.
    over = conventional_schedule(TWO_LAYERS, n_arrays=2, array_rows=4, array_cols=8)
    c = over.counts()
    assert c["program_calls"] == 5 and c["cells_programmed"] == 5 * 32     # everything rewritten
    assert c["mvm"] == 4 * 4 + 1 and c["dac"] == 17 * 8 and c["adc"] == 17 * 4
    assert c["digital_adds"] == 4 * 6 * 1                                  # a's two column blocks summed
    fits = conventional_schedule(TWO_LAYERS, n_arrays=5, array_rows=4, array_cols=8)
    assert fits.writes_in_inference() == 0 and len(fits.setup) == 5
    assert fits.counts()["mvm"] == c["mvm"]


def test_basisn_schedule_counts_a_hand_computed_two_layer_case():
    # R = 8: a has 2 segments x 4 positions = 8 segment reads, b 1; M = 8 bases = two groups of 4.
    s = basisn_schedule(TWO_LAYERS, n_bases=8, segment_rows=8, n_arrays=2, array_rows=4)
    c = s.counts()
    assert c["cells_programmed"] == 0 and s.counts("setup")["cells_programmed"] == 2 * 32
    assert c["mvm"] == (8 + 1) * 2 and c["dac"] == 18 * 8 and c["adc"] == 18 * 4
    assert c["digital_macs"] == 8 * 8 * 6 + 1 * 8 * 3


def test_cost_model_on_the_hand_computed_two_layer_case():
    hw = HardwareParams(array_rows=4, array_cols=8, programming="row")
    # Conventional, K = 2, LRU: the steady inference programs a0,a2 into one array and a1,a3 into the
    # other (2 programs of 4 rows and 8 reads each), then b0 (4 rows, 1 read); a's partial sums: 24 adds.
    conv = schedule_op_counts(conventional_schedule(TWO_LAYERS, 2, 4, 8), adc_bits=9, mac_units=8, adder_units=8)
    assert conv.critical_steps(hw) == (8 + 1, 8 + 4) and conv.digital_steps == 3
    assert conv.cells_programmed == 5 * 32 and conv.mvm == 17 and conv.adc_conversions == {9: 68}
    rep = estimate(conv, None, hw)
    t_row = hw.verify_iterations * (hw.write_pulse_s + hw.read_latency_s)
    assert rep.latency_s == pytest.approx(9 * hw.read_latency_s + 12 * t_row + 3 * hw.digital_cycle_s)
    assert rep.energy_j["programming"] == pytest.approx(
        160 * hw.verify_iterations * (hw.write_energy_pj + hw.cell_read_energy_pj) * 1e-12)
    # cell-serial programming: the same steps, each row's 8 cells one after another
    cell = hw.replace(programming="cell")
    conv_cell = conv
    assert conv.critical_steps(cell) == (8 + 1, 8 + 4)
    assert estimate(conv_cell, None, cell).latency_s == pytest.approx(
        9 * hw.read_latency_s + 12 * 8 * t_row + 3 * hw.digital_cycle_s)
    assert rep.energy_j["adc"] == pytest.approx(68 * hw.adc_energy_pj(9) * 1e-12)
    # BasisN, K = 2 (one group of 4 bases per array): a reads 8 segments on each array, b one;
    # coefficient MACs 8*8*6 + 1*8*3 = 408 on 8 MAC units: 48 + 3 digital steps; nothing programmed.
    sched = basisn_schedule(TWO_LAYERS, 8, 8, 2, 4)
    basis = schedule_op_counts(sched, adc_bits=9, mac_units=8, adder_units=8)
    assert basis.critical_steps(hw) == (9, 0) and basis.digital_steps == 51
    rep_b = estimate(basis, schedule_inventory(sched, 9, mac_units=8), hw)
    assert rep_b.latency_s == pytest.approx(9 * hw.read_latency_s + 51 * hw.digital_cycle_s)
    assert rep_b.energy_j["programming"] == 0 and rep_b.area_mm2["adc"] == pytest.approx(
        2 * 4 * hw.adc_area_um2(9) / 1e6)
    assert rep_b.edp < rep.edp


@pytest.mark.parametrize("n_bases,n_arrays,replicas", [(4, 1, 1), (8, 2, 1), (8, 4, 2), (12, 5, 1), (3, 3, 3)])
def test_basisn_schedule_never_writes_after_programming_when_the_bases_fit(n_bases, n_arrays, replicas):
    s = basisn_schedule(TWO_LAYERS, n_bases=n_bases, segment_rows=8, n_arrays=n_arrays, array_rows=4,
                        replicas=replicas)
    assert not any(isinstance(op, Program) for op in s.inference)
    assert len(s.setup) == -(-n_bases // 4) * replicas
    mvm, _ = s.per_array()
    assert mvm.sum() == s.counts()["mvm"]


def test_multiplexed_basis_groups_are_programmed_once_per_group_switch_not_per_layer():
    layers = [LayerShape("a", 6, 10, 4, "stage_0"), LayerShape("b", 3, 5, 1, "stage_1"),
              LayerShape("c", 3, 5, 2, "stage_1")]
    s = basisn_schedule(layers, n_bases=4, segment_rows=8, n_arrays=1, array_rows=4)
    writes = [op.block for op in s.inference if isinstance(op, Program)]
    assert writes == [("stage_0", 0, 0), ("stage_1", 0, 0)]              # c reuses b's group


def _counters_equal(sim: dict, counts: dict):
    assert sim["forward_mvm"] == counts["mvm"] and sim["dac"] == counts["dac"] and sim["adc"] == counts["adc"]
    assert sim["cells_programmed"] == counts["cells_programmed"] and sim["program_calls"] == counts["program_calls"]


@pytest.mark.parametrize("n_arrays", [1, 3, 40])
def test_simulated_conventional_run_agrees_with_its_schedule(n_arrays):
    model = _cnn()
    x = torch.randn(1, 2, 8, 8)
    bank = ArrayBank(n_arrays, array_rows=4, array_cols=8, io=COUNTED)
    analog = convert_to_analog(copy.deepcopy(model), AnalogConfig(array_provider=bank))
    sched = conventional_schedule(layer_shapes(model, (2, 8, 8)), n_arrays, 4, 8)
    with torch.no_grad():
        analog(x)
        assert bank.counters()["program_calls"] == len(sched.setup)
        bank.reset_counters()
        analog(x)
    _counters_equal(bank.counters(), sched.counts())


@pytest.mark.parametrize("n_arrays,replicas,sharing", [(1, 1, "global"), (2, 1, "global"), (4, 2, "global"),
                                                       (1, 1, "per_stage")])
def test_simulated_basisn_run_agrees_with_its_schedule(n_arrays, replicas, sharing):
    model = _cnn()
    x = torch.randn(1, 2, 8, 8)
    net = BasisNet(model, BasisDecomposition(n_bases=8, segment_rows=8, coeff_bits=4, sharing=sharing),
                   stages={"0": 0, "2": 1, "5": 1})
    analog = BasisNModel(net, n_arrays=n_arrays, array_rows=4, io=COUNTED, replicas=replicas)
    sets = {n: net.set_of[n] for n in net.layer_names}
    sched = basisn_schedule(layer_shapes(model, (2, 8, 8), sets), 8, 8, n_arrays, 4, replicas=replicas)
    analog.program()
    assert analog.bank.counters()["program_calls"] == len(sched.setup)
    analog(x)
    analog.bank.reset_counters()
    analog(x)
    _counters_equal(analog.bank.counters(), sched.counts())
    assert np.isfinite(analog(x).numpy()).all()
