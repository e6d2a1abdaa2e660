"""The non-finite policy, the same on every path.

* A read (array API, torch layers, compiled loop): a NaN input makes every output of its
  sample NaN, as a matmul would; +-inf is clipped by the DAC like any out-of-range input.
* An update with a non-finite x or d raises, naming which, and no cell changes.
* The compiled MLP loop refuses non-finite inputs and stops at the first non-finite gradient.
"""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import CrossbarArray, IOConfig
from xbarsim.devices import SoftBounds
from xbarsim.mapping import AnalogConfig, convert_to_analog
from xbarsim.training import AnalogSGD, MLPStep


def _pair(seed=3, io=None):
    rng = np.random.default_rng(seed)
    w = rng.uniform(-0.4, 0.4, (9, 14))
    arrays = []
    for _ in range(2):
        a = CrossbarArray(9, 14, SoftBounds(), io=io or IOConfig(), seed=seed, tile_cols=8)
        a.set_weights(w)
        arrays.append(a)
    return arrays, rng


@pytest.mark.parametrize("batch", [5, 40])  # the compiled small-batch read and the GEMM read
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_a_nan_input_makes_its_samples_outputs_nan_and_leaves_the_others(batch, direction):
    (a, b), rng = _pair()
    n_in = 14 if direction == "forward" else 9
    x = rng.uniform(-1, 1, (batch, n_in)).astype(np.float32)
    bad = x.copy()
    bad[2, 3] = np.nan
    bad[4] = np.nan  # all-NaN sample
    y_bad = getattr(a, direction)(bad)
    y_ref = getattr(b, direction)(x)
    assert np.isnan(y_bad[[2, 4]]).all()
    keep = np.setdiff1d(np.arange(batch), [2, 4])
    np.testing.assert_array_equal(y_bad[keep], y_ref[keep])  # noise is indexed by sample, not by batch content


@pytest.mark.parametrize("batch", [5, 40])
def test_an_infinite_input_saturates_at_the_dac_bound(batch):
    (a, b), rng = _pair(io=IOConfig(out_noise=0.0, bound_management="none"))
    x = rng.uniform(-1, 1, (batch, 14)).astype(np.float32)
    x[1, 2] = np.inf
    x[3, 5] = -np.inf
    at_bound = x.copy()
    for s, j, sign in ((1, 2, 1.0), (3, 5, -1.0)):  # both in the first input tile, columns 0-7
        at_bound[s, j] = sign * np.abs(np.delete(x[s, :8], j)).max()  # the tile's largest finite input
    y = a.forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y, b.forward(at_bound))


@pytest.mark.parametrize("which", ["x", "d"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_update_with_a_non_finite_value_raises_and_changes_nothing(which, value):
    (a, _), rng = _pair()
    x = rng.uniform(-1, 1, (4, 14)).astype(np.float32)
    d = rng.uniform(-1, 1, (4, 9)).astype(np.float32)
    (x if which == "x" else d)[1, 2] = value
    before = a.state_dict()
    with pytest.raises(ValueError, match=f"CrossbarArray.update: {which} contains a non-finite value"):
        a.update(x, d, 0.1)
    after = a.state_dict()
    np.testing.assert_array_equal(after["weights"], before["weights"])
    assert after["counters"] == before["counters"] and after["rng"] == before["rng"]


def _mlp(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(12, 8), nn.Sigmoid(), nn.Linear(8, 4), nn.LogSoftmax(dim=1))
    model = convert_to_analog(net, AnalogConfig(device=SoftBounds(dw_min=0.01)), seed=seed)
    return model, AnalogSGD(model.parameters(), lr=0.3)


def test_torch_layer_reads_propagate_nan_and_updates_refuse_it():
    model, opt = _mlp()
    x = torch.rand(3, 12)
    x[1, 0] = float("nan")
    out = model(x)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[[0, 2]]).all()
    loss = nn.NLLLoss()(out, torch.tensor([0, 1, 2]))
    loss.backward()
    with pytest.raises(ValueError, match="contains a non-finite value"):
        opt.step()


def test_compiled_loop_refuses_non_finite_inputs_and_stops_at_a_non_finite_gradient():
    model, opt = _mlp()
    step = MLPStep.build(model, nn.NLLLoss(), opt)
    assert step.compiled_layers(4) is not None
    xs = torch.rand(16, 12)
    ys = torch.randint(0, 4, (16,))
    bad = xs.clone()
    bad[5, 1] = float("inf")
    with pytest.raises(ValueError, match="inputs xs contain NaN or inf"):
        step.train_batches(bad, ys, 4)
    last = model[2]
    with torch.no_grad():
        last.bias[0] = float("inf")  # the output layer's logits, and so the gradient, turn non-finite
    weights = [m.array.get_weights() for m in model.modules() if hasattr(m, "array")]
    with pytest.raises(FloatingPointError, match="batch starting at sample 0"):
        step.train_batches(xs, ys, 4)
    for m, w in zip([m for m in model.modules() if hasattr(m, "array")], weights):
        np.testing.assert_array_equal(m.array.get_weights(), w)  # the output layer is updated first: nothing moved
