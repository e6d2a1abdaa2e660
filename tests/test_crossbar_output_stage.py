"""The pluggable read output stage (ADC or 1-bit sense amp) and the tile merge (sum or majority)."""
import numpy as np
import pytest

from xbarsim.crossbar import CrossbarArray, IOConfig, OutputStage
from xbarsim.devices import IdealDevice

PERFECT = IOConfig(perfect=True)


def _pm1(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _array(rows, cols, tile_cols, stage, io=PERFECT, seed=0):
    return CrossbarArray(rows, cols, IdealDevice(), io=io, seed=seed, tile_rows=rows, tile_cols=tile_cols,
                         output_stage=stage)


def test_default_output_stage_is_the_adc_and_reads_are_unchanged():
    rng = np.random.default_rng(0)
    w, x = rng.normal(0, 0.2, (30, 50)).astype(np.float32), rng.uniform(-1, 1, (7, 50)).astype(np.float32)
    a = CrossbarArray(30, 50, IdealDevice(), seed=3, tile_rows=16, tile_cols=20)
    b = CrossbarArray(30, 50, IdealDevice(), seed=3, tile_rows=16, tile_cols=20, output_stage=OutputStage())
    a.set_weights(w)
    b.set_weights(w)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert a.counters["sense_amp"] == 0 and a.counters["adc"] > 0


def test_sense_amp_compares_each_output_with_its_threshold_ties_to_plus_one():
    w = np.array([[1, 1, -1], [1, -1, -1]], dtype=np.float32)
    arr = _array(2, 3, 3, OutputStage(kind="sense_amp"))
    arr.set_weights(w)
    x = np.array([[1, 1, 1], [1, -1, 1]], dtype=np.float32)  # currents: [1, -1] and [-1, 1]
    arr.set_sense_amp(threshold=[1.0, 0.0])
    np.testing.assert_array_equal(arr.forward(x), [[1, -1], [-1, 1]])  # 1 >= 1 is a tie -> +1
    arr.set_sense_amp(threshold=[1.0, 0.0], sign=[-1.0, -1.0])  # flipped: +1 iff I <= theta
    np.testing.assert_array_equal(arr.forward(x), [[1, 1], [1, -1]])  # both ties -> +1
    assert arr.counters["sense_amp"] == 2 * 2 * 2 and arr.counters["adc"] == 0


def test_sense_amp_equals_sign_of_exact_current_minus_threshold_on_random_data():
    rng = np.random.default_rng(1)
    rows, cols = 40, 96
    w, x = _pm1(rng, (rows, cols)), _pm1(rng, (25, cols))
    thr = rng.integers(-6, 7, rows).astype(np.float32)
    sgn = _pm1(rng, rows)
    arr = _array(rows, cols, cols, OutputStage(kind="sense_amp"))
    arr.set_weights(w)
    arr.set_sense_amp(thr, sgn)
    cur = x @ w.T
    expected = np.where(sgn * cur >= sgn * thr, 1.0, -1.0)
    np.testing.assert_array_equal(arr.forward(x), expected)


def test_majority_merge_of_tiles_is_sign_of_vote_sum_with_ties_to_plus_one():
    rng = np.random.default_rng(2)
    rows, cols, tile = 24, 40, 10  # four input tiles: an even count, so ties occur
    w, x = _pm1(rng, (rows, cols)), _pm1(rng, (200, cols))
    thr = rng.integers(-2, 3, (4, rows)).astype(np.float32)
    sgn = _pm1(rng, (4, rows))
    arr = _array(rows, cols, tile, OutputStage(kind="sense_amp", tile_merge="majority"))
    arr.set_weights(w)
    arr.set_sense_amp(thr, sgn)
    votes = np.zeros((200, rows))
    for t in range(4):
        cur = x[:, t * tile:(t + 1) * tile] @ w[:, t * tile:(t + 1) * tile].T
        votes += np.where(sgn[t] * cur >= sgn[t] * thr[t], 1, -1)
    assert np.any(votes == 0), "the data must contain ties"
    np.testing.assert_array_equal(arr.forward(x), np.where(votes >= 0, 1.0, -1.0))
    assert arr.counters["sense_amp"] == 200 * rows * 4 and arr.counters["adc"] == 0


def test_sum_merge_of_sense_amps_counts_votes_and_last_tile_may_be_short():
    rng = np.random.default_rng(3)
    rows, cols, tile = 8, 25, 10  # tiles of 10, 10 and 5 inputs
    w, x = _pm1(rng, (rows, cols)), _pm1(rng, (30, cols))
    arr = _array(rows, cols, tile, OutputStage(kind="sense_amp", tile_merge="sum"))
    arr.set_weights(w)
    assert arr.n_input_tiles == 3
    votes = sum(np.where(x[:, a:b] @ w[:, a:b].T >= 0, 1.0, -1.0) for a, b in ((0, 10), (10, 20), (20, 25)))
    np.testing.assert_array_equal(arr.forward(x), votes)


def test_row_tiles_do_not_change_sense_amp_decisions():
    rng = np.random.default_rng(4)
    w, x = _pm1(rng, (50, 30)), _pm1(rng, (9, 30))
    thr = rng.integers(-3, 4, (3, 50)).astype(np.float32)
    outs = []
    for tile_rows in (50, 16):
        arr = CrossbarArray(50, 30, IdealDevice(), io=PERFECT, tile_rows=tile_rows, tile_cols=10,
                            output_stage=OutputStage(kind="sense_amp", tile_merge="majority"))
        arr.set_weights(w)
        arr.set_sense_amp(thr)
        outs.append(arr.forward(x))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_sense_amp_sees_analog_noise_but_no_adc_clipping():
    # a current of 40 is far above the ADC bound (12) yet compares correctly with theta = 39.5
    w = np.ones((1, 40), dtype=np.float32)
    io = IOConfig(out_noise=0.0, inp_res=0.0, noise_management="none", bound_management="none")
    arr = _array(1, 40, 40, OutputStage(kind="sense_amp"), io=io)
    arr.set_weights(w)
    arr.set_sense_amp([39.5])
    np.testing.assert_array_equal(arr.forward(np.ones((3, 40))), [[1], [1], [1]])
    arr.set_sense_amp([40.5])
    np.testing.assert_array_equal(arr.forward(np.ones((3, 40))), [[-1], [-1], [-1]])


def test_sense_amp_flip_rate_under_output_noise_matches_the_normal_tail():
    # current 0, threshold t, noise sigma: P(+1) = P(xi >= t / sigma) = 1 - Phi(t / sigma)
    from math import erf, sqrt
    sigma, thr, n = 0.5, 0.25, 20000
    io = IOConfig(out_noise=sigma, inp_res=0.0, noise_management="none", bound_management="none")
    arr = _array(n, 2, 2, OutputStage(kind="sense_amp"), io=io, seed=11)
    arr.set_weights(np.tile(np.array([[1.0, -1.0]], dtype=np.float32), (n, 1)))
    arr.set_sense_amp(np.full(n, thr))
    out = arr.forward(np.ones((1, 2)))
    p = 1 - 0.5 * (1 + erf(thr / sigma / sqrt(2)))
    rate = float(np.mean(out == 1))
    assert abs(rate - p) < 4 * sqrt(p * (1 - p) / n)


def test_sense_amp_state_round_trips():
    rng = np.random.default_rng(5)
    arr = _array(6, 20, 10, OutputStage(kind="sense_amp", tile_merge="majority"))
    arr.set_weights(_pm1(rng, (6, 20)))
    arr.set_sense_amp(rng.normal(0, 2, (2, 6)), _pm1(rng, (2, 6)))
    clone = CrossbarArray.from_state_dict(arr.state_dict())
    x = _pm1(rng, (11, 20))
    assert clone.output_stage == arr.output_stage
    np.testing.assert_array_equal(clone.forward(x), arr.forward(x))


def test_output_stage_config_is_validated():
    with pytest.raises(ValueError, match="kind"):
        OutputStage(kind="flash")
    with pytest.raises(ValueError, match="majority"):
        OutputStage(kind="adc", tile_merge="majority")
    assert OutputStage.from_dict(OutputStage(kind="sense_amp").to_dict()) == OutputStage(kind="sense_amp")
    arr = _array(3, 4, 2, OutputStage(kind="sense_amp"))
    with pytest.raises(ValueError, match="threshold"):
        arr.set_sense_amp(np.zeros(5))
    with pytest.raises(ValueError, match="sign"):
        arr.set_sense_amp(np.zeros(3), np.full(3, 0.5))
    with pytest.raises(ValueError, match="output_stage"):
        CrossbarArray(3, 4, IdealDevice(), output_stage="sense_amp")
