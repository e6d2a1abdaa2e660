"""The autograd-free MLP step against loss.backward() + AnalogSGD.step(), bit for bit."""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.mapping import AnalogConfig, convert_to_analog
from xbarsim.devices import SoftBounds
from xbarsim.training import AnalogSGD, MLPStep


def _model(act, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(20, 16), act(), nn.Linear(16, 12), act(), nn.Linear(12, 5), nn.LogSoftmax(dim=1))
    config = AnalogConfig(device=SoftBounds(dw_min=0.01), tile_rows=8, tile_cols=12)  # several tiles per layer
    model = convert_to_analog(net, config, seed=seed)
    return model, AnalogSGD(model.parameters(), lr=0.3)


def _state(model):
    out = []
    for m in model.modules():
        if hasattr(m, "array"):
            c = m.array.counters
            out += [m.array.get_weights().tobytes(), c["pulses"].tobytes(),
                    tuple(sorted((k, v) for k, v in c.items() if k != "pulses")),
                    None if m.bias is None else m.bias.detach().numpy().tobytes()]
    return out


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.Tanh, nn.ReLU])
def test_fused_step_is_bit_identical_to_autograd(act):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(0, 1, (6, 8, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, (6, 8)))
    ref, opt = _model(act)
    fused_model, fused_opt = _model(act)
    step = MLPStep.build(fused_model, nn.NLLLoss(), fused_opt)
    assert step is not None
    loss_fn = nn.NLLLoss()
    for b in range(6):
        if b == 3:  # learning-rate changes (schedulers) are followed
            for o in (opt, fused_opt):
                o.param_groups[0]["lr"] = 0.1
        opt.zero_grad()
        loss = loss_fn(ref(x[b]), y[b])
        loss.backward()
        opt.step()
        fused_loss = step.step(x[b], y[b])
        assert fused_loss.item() == loss.item()
    assert _state(fused_model) == _state(ref)
    assert sum(m.array.counters["pulse_total"] for m in ref.modules() if hasattr(m, "array")) > 0


def test_train_batches_pipelined_is_bit_identical_to_steps(monkeypatch):
    """Updates in flight across batches (row blocks on two threads) change nothing."""
    monkeypatch.setattr("xbarsim.crossbar.schedule.BLOCK_PULSES", 30)
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.uniform(0, 1, (50, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, 50))
    ref, opt = _model(nn.Sigmoid)
    ref_step = MLPStep.build(ref, nn.NLLLoss(), opt)
    ref_total = sum(float(ref_step.step(x[k:k + 8], y[k:k + 8])) * min(8, 50 - k) for k in range(0, 50, 8))
    model, opt2 = _model(nn.Sigmoid)
    step = MLPStep.build(model, nn.NLLLoss(), opt2)
    seen = []
    total = step.train_batches(x, y, 8, on_batch=lambda: seen.append(1))
    assert total == ref_total and len(seen) == 7 and step._pending is None
    assert _state(model) == _state(ref)


def test_train_batches_finishes_the_updates_when_interrupted():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.uniform(0, 1, (40, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, 40))
    model, opt = _model(nn.Tanh)
    step = MLPStep.build(model, nn.NLLLoss(), opt)
    calls = []

    def stop():
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        step.train_batches(x, y, 8, on_batch=stop)
    assert step._pending is None
    ref, ref_opt = _model(nn.Tanh)
    ref_step = MLPStep.build(ref, nn.NLLLoss(), ref_opt)
    for k in range(0, 24, 8):
        ref_step.step(x[k:k + 8], y[k:k + 8])
    assert _state(model) == _state(ref)


def test_fused_step_declines_what_it_does_not_implement():
    model, opt = _model(nn.Sigmoid)
    assert MLPStep.build(model, nn.CrossEntropyLoss(), opt) is None
    assert MLPStep.build(model, nn.NLLLoss(reduction="sum"), opt) is None
    assert MLPStep.build(model, nn.NLLLoss(), AnalogSGD(model.parameters(), lr=0.1, momentum=0.9)) is None
    assert MLPStep.build(model, nn.NLLLoss(), torch.optim.SGD(model.parameters(), lr=0.1)) is None
    gelu = nn.Sequential(*list(model)[:1], nn.GELU(), *list(model)[2:])
    assert MLPStep.build(gelu, nn.NLLLoss(), AnalogSGD(gelu.parameters(), lr=0.1)) is None
