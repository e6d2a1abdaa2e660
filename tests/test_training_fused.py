"""The autograd-free MLP step against loss.backward() + AnalogSGD.step(), bit for bit."""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.mapping import AnalogConfig, convert_to_analog
from xbarsim.devices import SoftBounds
from xbarsim.training import AnalogSGD, MLPStep
import xbarsim.training.mlp_loop as ml


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


@pytest.mark.parametrize("helper", [False, True])
def test_train_batches_finishes_the_updates_when_interrupted(helper, monkeypatch):
    """With the pulse helper, the interrupted run also stops and joins the helper thread."""
    import threading
    if helper:
        made = _spy_helpers(monkeypatch)
        real = ml.run_mlp_batches
        monkeypatch.setattr("xbarsim.training.fused_step.run_mlp_batches",
                            lambda *a, **k: real(*a, **k, helper=True))
    threads_before = threading.active_count()
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
    assert threading.active_count() == threads_before
    if helper:
        assert len(made) == 1 and made[0].jobs > 0 and made[0].thread is None
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


def _spy_compiled(monkeypatch):
    """Count the calls of the compiled whole-run loop made by MLPStep.train_batches."""
    import xbarsim.training.fused_step as fs
    calls = []
    real = fs.run_mlp_batches

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fs, "run_mlp_batches", spy)
    return calls


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.Tanh, nn.ReLU])
def test_compiled_run_is_bit_identical_to_steps(act, monkeypatch):
    """The compiled loop (several tiles per layer, a short last batch) against MLPStep.step."""
    calls = _spy_compiled(monkeypatch)
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.uniform(0, 1, (45, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, 45))
    ref, opt = _model(act)
    ref_step = MLPStep.build(ref, nn.NLLLoss(), opt)
    ref_total = sum(float(ref_step.step(x[k:k + 8], y[k:k + 8])) * min(8, 45 - k) for k in range(0, 45, 8))
    model, opt2 = _model(act)
    step = MLPStep.build(model, nn.NLLLoss(), opt2)
    assert step.compiled_layers(8) is not None
    total = step.train_batches(x, y, 8)
    assert calls == [1]
    assert total == ref_total
    assert _state(model) == _state(ref)
    for a, b in zip(model.modules(), ref.modules()):  # resumable: the random streams are where steps left them
        if hasattr(a, "array"):
            assert a.array.state_dict()["rng"] == b.array.state_dict()["rng"]
            assert a.array.last_tile_pulses == b.array.last_tile_pulses


def test_compiled_run_with_reference_devices(monkeypatch):
    """Reads see G - G_ref, refreshed after every update, as CrossbarArray does."""
    calls = _spy_compiled(monkeypatch)
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.uniform(0, 1, (24, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, 24))
    models = []
    for _ in range(2):
        model, opt = _model(nn.Sigmoid)
        refs = np.random.default_rng(6)  # the same references in both models
        for m in model.modules():
            if hasattr(m, "array"):
                w = m.array.get_weights()
                m.array.set_reference(refs.uniform(-0.05, 0.05, w.shape).astype(np.float32))
                m.array.set_weights(w)
        models.append((model, MLPStep.build(model, nn.NLLLoss(), opt)))
    (ref, ref_step), (model, step) = models
    for k in range(0, 24, 8):
        ref_step.step(x[k:k + 8], y[k:k + 8])
    step.train_batches(x, y, 8)
    assert calls == [1]
    assert _state(model) == _state(ref)


def test_compiled_run_declines_large_batches(monkeypatch):
    """Reads of more than 32 samples take torch's GEMM path: the pipelined loop runs instead."""
    calls = _spy_compiled(monkeypatch)
    model, opt = _model(nn.Sigmoid)
    step = MLPStep.build(model, nn.NLLLoss(), opt)
    assert step.compiled_layers(33) is None and step.compiled_layers(32) is not None
    rng = np.random.default_rng(5)
    step.train_batches(torch.from_numpy(rng.uniform(0, 1, (40, 20)).astype(np.float32)),
                       torch.from_numpy(rng.integers(0, 5, 40)), 40)
    assert calls == []


def _spy_helpers(monkeypatch, min_pulses=1):
    """Record the PulseHelper of each compiled run, splitting tiles of at least ``min_pulses`` pulses."""
    import xbarsim.crossbar.pulse_helper as ph
    monkeypatch.setattr(ph, "SPLIT_MIN_PULSES", min_pulses)
    made = []

    class Spy(ph.PulseHelper):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(ml, "PulseHelper", Spy)
    return made


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.ReLU])
def test_compiled_run_with_pulse_helper_is_bit_identical(act, monkeypatch):
    """Tiles whose rows are shared with the helper thread give the serial loop's numbers, bit for bit."""
    from xbarsim.training.mlp_loop import run_mlp_batches
    made = _spy_helpers(monkeypatch)
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (45, 20)).astype(np.float32)
    y = rng.integers(0, 5, 45)
    results = []
    for helper in (False, True):
        model, opt = _model(act)
        step = MLPStep.build(model, nn.NLLLoss(), opt)
        layers = step.compiled_layers(8)
        total = run_mlp_batches(layers, x, y, 8, [0.3] * 3, [0.3] * 3, -100, helper=helper)
        results.append((total, _state(model), [m.array.state_dict()["rng"] for m in model.modules()
                                                if hasattr(m, "array")]))
    assert results[0] == results[1]
    serial, shared = made
    assert serial.jobs == 0 and serial.thread is None
    assert shared.jobs > 10  # most tile updates were shared with the helper
    assert shared.thread is None  # stopped and joined


def test_pulse_helper_is_off_with_one_thread():
    import numba
    from xbarsim.crossbar.pulse_helper import PulseHelper
    model, _ = _model(nn.Sigmoid)
    states = [m.array.loop_state(8) for m in model.modules() if hasattr(m, "array")]
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with PulseHelper(states, 8) as box:
            assert box.ctl.size == 0
    finally:
        numba.set_num_threads(old)
    import xbarsim.crossbar.pulse_helper as ph
    real = ph._usable_cores
    ph._usable_cores = lambda: 1  # numba may use two threads, but the process has one core
    try:
        with PulseHelper(states, 8) as box:
            assert box.ctl.size == 0
    finally:
        ph._usable_cores = real
    with PulseHelper(states, 8, enabled=True) as box:
        assert box.ctl.size > 0 and box.x.size >= 8 * 12 and box.d.size >= 8 * 8
