"""The cost model against hand-computed cases, and fed by a simulated array's counters."""
import dataclasses
import math

import numpy as np
import pytest

from xbarsim.crossbar import CrossbarArray, IOConfig
from xbarsim.crossbar.costs import HardwareParams, Inventory, OpCounts, adc_bits_for_rows, estimate
from xbarsim.devices import IdealDevice


def test_adc_bits_resolve_every_partial_sum():
    for rows in range(1, 1100):
        assert adc_bits_for_rows(rows) == math.ceil(math.log2(rows + 1))
    with pytest.raises(ValueError, match="rows"):
        adc_bits_for_rows(0)


def test_adc_energy_and_area_scale_as_two_to_the_bits():
    hw = HardwareParams()
    assert hw.adc_energy_pj(8) == pytest.approx(12.5)  # ISAAC: 16 mW / 1.28 GS/s
    assert hw.adc_energy_pj(5) == pytest.approx(12.5 / 8)
    assert hw.adc_area_um2(9) == pytest.approx(2400.0)
    assert hw.sense_amp_energy_pj == pytest.approx(hw.adc_energy_pj(1))


def test_hand_computed_two_layer_case():
    hw = HardwareParams(array_rows=4, array_cols=2, cell_read_energy_pj=1.0, dac_energy_pj=0.5,
                        adc_ref_bits=3, adc_ref_energy_pj=8.0, adc_ref_area_um2=80.0, digital_add_energy_pj=2.0,
                        digital_add_area_um2=10.0, write_energy_pj=3.0, verify_iterations=2,
                        read_latency_s=1e-7, write_pulse_s=4e-7, digital_cycle_s=1e-9, cell_area_um2=0.625)
    # layer 1: two 4x2 arrays read once each (8 DAC conversions, 4 ADC conversions at 3 bits, 2 adds);
    # layer 2: one array read once (4 DAC, 2 conversions at 2 bits), reprogrammed before use (8 cells, 4 rows)
    l1 = OpCounts(mvm=2, cells_per_mvm=8, dac_conversions=8, adc_conversions={3: 4}, digital_adds=2,
                  read_steps=1, digital_steps=1)
    l2 = OpCounts(mvm=1, cells_per_mvm=8, cells_per_row=2, dac_conversions=4, adc_conversions={2: 2},
                  cells_programmed=8, read_steps=1, program_steps=4)
    c = l1 + l2
    assert c.adc_conversions == {3: 4, 2: 2} and c.mvm == 3
    r = estimate(c, Inventory(n_arrays=3, n_adcs={3: 4, 2: 2}, n_adders=2), hw)
    e = r.energy_j
    assert e["array_read"] == pytest.approx(3 * 8 * 1.0e-12)
    assert e["dac"] == pytest.approx(12 * 0.5e-12)
    assert e["adc"] == pytest.approx((4 * 8.0 + 2 * 4.0) * 1e-12)
    assert e["digital_add"] == pytest.approx(4e-12)
    assert e["programming"] == pytest.approx(8 * 2 * (3.0 + 1.0) * 1e-12)
    # cell-serial (the default): 4 rows x 2 cells, each 2 iterations of 400 ns pulse + 100 ns verify read
    latency = 2 * 1e-7 + 4 * 2 * 2 * (4e-7 + 1e-7) + 1 * 1e-9
    assert r.latency_s == pytest.approx(latency) and r.cycles == pytest.approx(latency / 1e-7)
    assert r.edp == pytest.approx(r.total_energy_j * latency)
    # row-parallel: a row's 2 cells at once; the energy is the same
    row = estimate(c, None, hw.replace(programming="row"))
    assert row.latency_s == pytest.approx(2 * 1e-7 + 4 * 2 * (4e-7 + 1e-7) + 1e-9)
    assert row.energy_j == pytest.approx(r.energy_j)
    assert r.area_mm2["adc"] == pytest.approx((4 * 80.0 + 2 * 40.0) * 1e-6)
    assert r.total_area_mm2 == pytest.approx((3 * 5.0 + 400.0 + 20.0) * 1e-6)


def test_counts_come_from_a_simulated_array():
    arr = CrossbarArray(6, 5, device=IdealDevice(), io=IOConfig(), seed=0)
    arr.set_weights(np.zeros((6, 5)))
    arr.forward(np.ones((3, 5)) * 0.1)  # 3 samples: 3 activations, 3 x 5 DAC and 3 x 6 ADC conversions
    arr.backward(np.ones((2, 6)) * 0.1)
    c = OpCounts.from_counters(arr.counters, 6, 5, adc_bits=9)
    assert c.mvm == 5 and c.dac_conversions == 3 * 5 + 2 * 6 and c.adc_conversions == {9: 3 * 6 + 2 * 5}
    assert c.cells_programmed == 30 and c.program_steps == 6 and c.cells_per_row == 5  # row by row
    # the counted array's rows, not HardwareParams' 128 columns, set the cell-serial write time
    hw = HardwareParams()
    t_cell = hw.verify_iterations * (hw.write_pulse_s + hw.read_latency_s)
    prog = estimate(dataclasses.replace(c, read_steps=0), None, hw).latency_s
    assert prog == pytest.approx(6 * 5 * t_cell)
    assert estimate(dataclasses.replace(c, read_steps=0), None, hw.replace(programming="row")).latency_s == \
        pytest.approx(6 * t_cell)
    with pytest.raises(ValueError, match="different sizes"):
        _ = c + OpCounts(cells_per_row=4, program_steps=1)
    with pytest.raises(ValueError, match="adc_bits"):
        OpCounts.from_counters(arr.counters, 6, 5)


def test_array_area_is_cells_times_the_cell_area_and_old_files_still_load():
    hw = HardwareParams()
    assert hw.array_area_um2 == pytest.approx(25.0)  # ISAAC: 25 um^2 per 128 x 128 array
    assert hw.replace(array_rows=32, array_cols=64).array_area_um2 == pytest.approx(25.0 / 8)
    assert HardwareParams.from_dict(hw.to_dict()) == hw
    # files written before the area became per cell stored the array's area
    old = {k: v for k, v in hw.replace(array_rows=32, array_cols=32).to_dict().items() if k != "cell_area_um2"}
    loaded = HardwareParams.from_dict(dict(old, array_area_um2=1.5625))
    assert loaded.cell_area_um2 == pytest.approx(25.0 / 128 ** 2) and loaded.array_area_um2 == pytest.approx(1.5625)
    with pytest.raises(ValueError, match="no field"):
        HardwareParams.from_dict({"array_area": 1.0})


def test_bad_parameter_names_the_field():
    with pytest.raises(ValueError, match=r"HardwareParams.verify_iterations"):
        HardwareParams(verify_iterations=0)
    with pytest.raises(ValueError, match=r"HardwareParams.write_energy_pj"):
        HardwareParams(write_energy_pj=-1.0)
    with pytest.raises(ValueError, match=r"HardwareParams.programming.*cell.*row"):
        HardwareParams(programming="column")
    assert HardwareParams.from_dict(HardwareParams().to_dict()) == HardwareParams()


def test_op_counts_and_inventory_round_trip_through_json():
    import json
    c = OpCounts(mvm=7, cells_per_mvm=32, cells_per_row=8, dac_conversions=56, adc_conversions={9: 28, 3: 1},
                 digital_adds=5, digital_macs=9, cells_programmed=64, digital_steps=4,
                 stages=[[(3, 0), (1, 8)], [(2, 0)]])
    assert OpCounts.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    flat = OpCounts(mvm=2, read_steps=2, program_steps=1)
    assert OpCounts.from_dict(json.loads(json.dumps(flat.to_dict()))) == flat
    inv = Inventory(n_arrays=3, n_adcs={9: 12, 1: 4}, n_sense_amps=2, n_dacs=24, n_adders=5, n_macs=6)
    assert Inventory.from_dict(json.loads(json.dumps(inv.to_dict()))) == inv
    assert inv + Inventory(n_arrays=1, n_adcs={9: 1, 5: 2}, n_macs=1) == Inventory(
        n_arrays=4, n_adcs={9: 13, 1: 4, 5: 2}, n_sense_amps=2, n_dacs=24, n_adders=5, n_macs=7)
    # counts stored before cells_per_row and stages: square arrays, the stored critical path
    old = {k: v for k, v in flat.to_dict().items() if k not in ("cells_per_row", "stages")}
    assert OpCounts.from_dict(dict(old, cells_per_mvm=64)) == dataclasses.replace(flat, cells_per_mvm=64,
                                                                                   cells_per_row=8)
    with pytest.raises(ValueError, match="no field"):
        OpCounts.from_dict({"mvms": 1})
    with pytest.raises(ValueError, match="no field"):
        Inventory.from_dict({"arrays": 1})


def test_the_busiest_array_is_chosen_under_the_figures_the_counts_are_costed_with():
    """Array 0 reads 50 vectors; array 1 is reprogrammed (4 rows) and reads one.  With slow
    cell-serial writes array 1 is the critical path, with fast row-parallel writes array 0: stored
    counts re-costed under the fast figures must give the fresh answer (50 reads), not the
    slow figures' path (1 read + 4 rows, ten times too fast)."""
    from xbarsim.mapping.basis_schedule import Program, Read, Schedule, schedule_op_counts

    s = Schedule("hand", 2, 4, 4, (), (Program(1, "b", 16), Read("a", 0, "a", 50, 200, 200),
                                       Read("a", 1, "b", 1, 4, 4)))
    slow = HardwareParams(array_rows=4, array_cols=4)                     # 4 cells x 10 x 200 ns a row
    fast = slow.replace(programming="row", verify_iterations=1, write_pulse_s=1e-9)  # 101 ns a row
    counts = schedule_op_counts(s, adc_bits=9, mac_units=8, adder_units=8)
    assert counts.critical_steps(slow) == (1, 4) and counts.critical_steps(fast) == (50, 0)
    assert estimate(counts, None, fast).latency_s == pytest.approx(50 * 100e-9)
    assert estimate(counts, None, slow).latency_s == pytest.approx(100e-9 + 4 * 4 * 10 * 200e-9)
    # the old storage (the path chosen under `slow`) is what went wrong
    assert estimate(counts.on_critical_path(slow), None, fast).latency_s == pytest.approx(100e-9 + 4 * 101e-9)
    # stages run one after another; a flat count is a one-candidate stage
    both = counts + OpCounts(read_steps=3, cells_per_mvm=16, cells_per_row=4)
    assert both.critical_steps(fast) == (53, 0) and both.critical_steps(slow) == (4, 4)
    with pytest.raises(ValueError, match="not both"):
        OpCounts(read_steps=1, stages=[[(1, 0)]])
