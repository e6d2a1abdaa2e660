"""BasisN-style cost analysis: closed form, re-costing stored op counts, break-even verify iterations."""
import math

import pytest

from xbarsim.crossbar.costs import HardwareParams, OpCounts, estimate
from xbarsim.experiments.repro.basisn_hardware import (amortised, break_even_iterations, cycles_ratio_k1,
                                                       inventory_from_json, inventory_to_json, largest_batch,
                                                       ops_from_json, ops_to_json, preset_hardware, ratios)
from xbarsim.mapping.basis_schedule import (LayerShape, basisn_schedule, conventional_schedule, schedule_inventory,
                                            schedule_op_counts)

# a: 6 outputs, fan-in 10, 4 positions; b: 3 outputs, fan-in 5, 1 position.  On 4 x 4 arrays
# a has S = 3 segments and 2 x 3 = 6 blocks, b S = 2 and 2 blocks: N = 8 blocks of 4 rows.
TWO_LAYERS = [LayerShape("a", out_features=6, fan_in=10, positions=4),
              LayerShape("b", out_features=3, fan_in=5, positions=1)]
R, M = 4, 4


def _cases(k):
    """(ops, inventory) of BasisN and of conventional reprogramming on k arrays (one MAC/adder per bit line)."""
    out = []
    for sched in (basisn_schedule(TWO_LAYERS, M, R, k, R, replicas=k), conventional_schedule(TWO_LAYERS, k, R, R)):
        out.append((schedule_op_counts(sched, 9, k * R, k * R), schedule_inventory(sched, 9, k * R, k * R)))
    return out


def test_closed_form_k1_ratio_equals_a_hand_computation_and_the_schedules():
    hw = preset_hardware(R, "row")
    tau = hw.digital_cycle_s / hw.read_latency_s          # 1/120
    step = 10 * (100e-9 + 100e-9) / 100e-9                # 20 read cycles per programmed row
    # reprogramming: reads 6*4 + 2*1, 8 blocks x 4 rows programmed, partial-sum adds ceil(48/4) + ceil(3/4)
    t_rep = 6 * (4 + 4 * step) + 2 * (1 + 4 * step) + 13 * tau
    # BasisN: reads 4*3 + 1*2 segment vectors, coefficient MACs ceil(12*4*6/4) + ceil(2*4*3/4) = 72 + 6
    t_b = 14 + 78 * tau
    assert cycles_ratio_k1(TWO_LAYERS, M, R, hw) == pytest.approx(t_b / t_rep, rel=1e-12)
    basis, conv = _cases(1)
    assert ratios(basis, conv, hw)["cycles"] == pytest.approx(t_b / t_rep, rel=1e-12)
    # cell-serial programming: each of the 32 row steps becomes 4 cell steps
    t_rep_cell = 6 * (4 + 16 * step) + 2 * (1 + 16 * step) + 13 * tau
    cell = hw.replace(programming="cell")
    assert cycles_ratio_k1(TWO_LAYERS, M, R, cell) == pytest.approx(t_b / t_rep_cell, rel=1e-12)
    assert ratios(basis, conv, cell)["cycles"] == pytest.approx(t_b / t_rep_cell, rel=1e-12)
    assert cycles_ratio_k1(TWO_LAYERS, M, R, preset_hardware(R)) == pytest.approx(t_b / t_rep_cell, rel=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_stored_op_counts_recost_like_a_fresh_schedule_under_other_write_figures(k):
    hw1 = preset_hardware(R)
    hw2 = hw1.replace(verify_iterations=37, write_pulse_s=50e-9, write_energy_pj=2.0, read_latency_s=40e-9)
    for ops1, inv1 in _cases(k):
        ops, inv = ops_from_json(ops_to_json(ops1)), inventory_from_json(inventory_to_json(inv1))
        assert ops == ops1 and inv == inv1
        fresh, stored = estimate(ops1, inv1, hw2), estimate(ops, inv, hw2)
        assert stored.latency_s == fresh.latency_s and stored.total_energy_j == fresh.total_energy_j
        # counts stored before OpCounts.stages hold hw1's critical path; in the reprogramming regime
        # that is every write figure's, so they re-cost exactly too
        old = {key: v for key, v in ops1.on_critical_path(hw1).to_dict().items() if key != "stages"}
        assert estimate(OpCounts.from_dict(old), inv, hw2).latency_s == pytest.approx(fresh.latency_s, rel=1e-12)


@pytest.mark.parametrize("programming,steps", [("row", 32), ("cell", 32 * R)])
def test_break_even_verify_iterations_solve_the_affine_cycles_and_the_quadratic_edp(programming, steps):
    hw = preset_hardware(R, programming)
    basis, conv = _cases(1)
    tau = hw.digital_cycle_s / hw.read_latency_s
    # reprogramming in read cycles: 26 + 13 tau + (32 rows or 128 cells) x v x 2 (pulse + verify read);
    # BasisN 14 + 78 tau
    v_cycles = ((14 + 78 * tau) / 0.01 - (26 + 13 * tau)) / (2 * steps)
    assert break_even_iterations(basis, conv, hw, metric="cycles") == pytest.approx(v_cycles, rel=1e-9)
    for metric in ("cycles", "edp"):
        v = break_even_iterations(basis, conv, hw, metric=metric)
        above = ratios(basis, conv, hw.replace(verify_iterations=math.ceil(v)))[metric]
        below = ratios(basis, conv, hw.replace(verify_iterations=math.floor(v)))[metric]
        assert above <= 0.01 < below
    # when the conventional mapping fits, nothing is written and no v helps
    fits = conventional_schedule(TWO_LAYERS, 8, R, R)
    fit_case = (schedule_op_counts(fits, 9, 8 * R, 8 * R), None)
    assert break_even_iterations(basis, fit_case, hw) is None


def test_preset_hardware_equals_the_shared_defaults_but_for_the_array():
    base, hw = HardwareParams(), preset_hardware(32)
    changed = {k for k, v in hw.to_dict().items() if base.to_dict()[k] != v}
    assert changed == {"array_rows", "array_cols"}
    assert hw.programming == "cell" and preset_hardware(32, "row").programming == "row"
    assert hw.array_area_um2 == pytest.approx(base.array_area_um2 / 16)


def test_paper_scale_check_runs_resnet18_through_the_schedules_as_the_closed_form_says():
    from xbarsim.experiments.repro.basisn.sensitivity import paper_scale_check
    from xbarsim.experiments.repro.basisn_hardware import resnet18_imagenet
    layers = resnet18_imagenet()
    # torchvision's ResNet-18 has 11,689,512 parameters: less 9,600 BatchNorm and 1,000 fc biases
    assert sum(s.out_features * s.fan_in for s in layers) == 11_689_512 - 9_600 - 1_000
    rows = {r["programming"]: r for r in paper_scale_check(main_bases=16, array_size=32, adc_bits=9)}
    assert set(rows) == {"cell", "row"}
    for prog, r in rows.items():
        assert r["K"] == 1 and r["n_bases"] == 64 and r["weights_over_capacity"] > 700
        closed = cycles_ratio_k1(layers, 64, 128, preset_hardware(128, prog))
        assert r["cycles_ratio"] == pytest.approx(closed, rel=1e-3)
    # one row's 128 cells one after another: the writes dominate, so the ratio falls about 128-fold
    assert 50 < rows["row"]["cycles_ratio"] / rows["cell"]["cycles_ratio"] < 128


def test_op_counts_stored_before_cells_per_row_load_as_square_arrays():
    import json
    ops = _cases(1)[1][0]
    old = {k: v for k, v in json.loads(ops_to_json(ops)).items() if k != "cells_per_row"}
    assert ops_from_json(json.dumps(old)) == ops and ops.cells_per_row == R
    with pytest.raises(ValueError, match="not a square array"):
        ops_from_json(json.dumps(dict(old, cells_per_mvm=R * (R + 1))))


def test_a_batch_sharing_each_reprogramming_divides_only_the_writes_and_brackets_the_largest_batch():
    hw = preset_hardware(R)
    basis, conv = _cases(1)
    assert amortised(conv[0], 1) == conv[0]
    tau = hw.digital_cycle_s / hw.read_latency_s
    # per input: reads 26 + 13 tau, writes 32 rows x 4 cells x 10 x 2 = 2560 read cycles / B; BasisN 14 + 78 tau
    b = 3
    expect = (14 + 78 * tau) / (26 + 13 * tau + 2560 / b)
    assert ratios(basis, (amortised(conv[0], b), conv[1]), hw)["cycles"] == pytest.approx(expect, rel=1e-9)
    assert largest_batch(basis, conv, hw, 0.01, "cycles") == pytest.approx(2560 / ((14 + 78 * tau) / 0.01
                                                                                   - (26 + 13 * tau)), rel=1e-9)
    for metric in ("cycles", "edp"):
        v = largest_batch(basis, conv, hw, 0.01, metric)
        assert v >= 1
        at = ratios(basis, (amortised(conv[0], math.floor(v)), conv[1]), hw)[metric]
        past = ratios(basis, (amortised(conv[0], math.floor(v) + 1), conv[1]), hw)[metric]
        assert at <= 0.01 < past
    assert largest_batch(basis, conv, hw, 0.9, "cycles") == math.inf      # every batch meets 90 %
    fits = conventional_schedule(TWO_LAYERS, 8, R, R)
    assert largest_batch(basis, (schedule_op_counts(fits, 9, 8 * R, 8 * R), None), hw) is None
    with pytest.raises(ValueError, match="batch"):
        amortised(conv[0], 0.5)
