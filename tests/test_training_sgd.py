r"""AnalogSGD: exact with an ideal device, unbiased within the pulse noise with a pulsed one.

Statistical oracle (ConstantStep, perfect IO, no c2c/d2d noise)
---------------------------------------------------------------
For one sample the engine fires, in each of ``BL`` slots, row ``i`` with
probability :math:`p_i` and column ``j`` with :math:`q_j`, independently; cell
``(i, j)`` gets one step of size :math:`dw_{min}` per coincidence.  The number
of coincidences is :math:`n \sim \mathrm{Binomial}(BL, p_i q_j)` with
:math:`BL\,p_i q_j = lr|d_i x_j|/dw_{min}` (no probability clipped, i.e.
:math:`k = lr\max|x|\max|d|/dw_{min} \le` ``desired_bl``, checked below).  Hence

.. math::
    E[\Delta w] = -lr\,d_i x_j, \qquad
    \mathrm{Var}[\Delta w] = dw_{min}^2 BL\,p_i q_j (1 - p_i q_j) \le dw_{min}\,lr\,|d_i x_j| .

Summed over all samples and steps, independent:
:math:`\sigma_{ij}^2 \le \sum_{t,b} dw_{min}\,lr\,|d_{bi} x_{bj}|`.  Far from
the bounds the constant-step device is linear, so :math:`W_{analog} - W_{SGD}` is
a sum of zero-mean terms with that variance (the feedback of the noise on later
gradients is second order in lr and neglected).  We assert every cell within
5 sigma (per-cell false alarm < 6e-7) and the mean squared z-score below 2
(chi-square with 32 d.o.f., false alarm ~1e-3; the seed is fixed anyway).
"""
import numba
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import IOConfig, UpdateConfig
from xbarsim.devices import ConstantStep, IdealDevice, SoftBounds
from xbarsim.mapping import AnalogConfig, AnalogConv2d, AnalogLinear, convert_to_analog
from xbarsim.training import AnalogSGD

IDEAL = AnalogConfig(device=IdealDevice(), io=IOConfig(perfect=True))


def _model():
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5),
                         nn.Tanh(), nn.Linear(5, 2))


def _batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(4, 2, 4, 4, generator=g), torch.randn(4, 2, generator=g)) for _ in range(n)]


def test_ideal_device_equals_torch_sgd_with_scheduler():
    """IdealDevice + perfect IO: AnalogSGD is exactly torch SGD, and follows an LR scheduler."""
    torch.manual_seed(0)
    digital = _model()
    analog = convert_to_analog(_model(), IDEAL)
    analog.load_state_dict({**analog.state_dict()}, strict=True)
    for a, d in zip([m for m in analog.modules() if hasattr(m, "array")],
                    [m for m in digital.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]):
        a.set_weights(d.weight.detach(), d.bias.detach())
    opt_d = torch.optim.SGD(digital.parameters(), lr=0.1)
    opt_a = AnalogSGD(analog.parameters(), lr=0.1)
    sch_d = torch.optim.lr_scheduler.StepLR(opt_d, 1, gamma=0.5)
    sch_a = torch.optim.lr_scheduler.StepLR(opt_a, 1, gamma=0.5)
    for x, t in _batches(4):
        for model, opt, sch in ((digital, opt_d, sch_d), (analog, opt_a, sch_a)):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), t).backward()
            opt.step()
            sch.step()
    for a, d in zip([m for m in analog.modules() if hasattr(m, "array")],
                    [m for m in digital.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]):
        w, b = a.get_weights()
        torch.testing.assert_close(w, d.weight.detach(), atol=1e-6, rtol=0)
        torch.testing.assert_close(b, d.bias.detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("momentum, weight_decay, nesterov", [(0.9, 0.01, False), (0.5, 0.0, True)])
def test_digital_parameters_get_torch_sgd(momentum, weight_decay, nesterov):
    torch.manual_seed(1)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    opt_a = AnalogSGD(a.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05, momentum=momentum, weight_decay=weight_decay,
                            nesterov=nesterov)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(5, 3, generator=g)
        for m, o in ((a, opt_a), (b, opt_b)):
            o.zero_grad()
            m(x).pow(2).mean().backward()
            o.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=0, rtol=0)


def test_stash_accumulates_and_zero_grad_discards():
    torch.manual_seed(0)
    layer = AnalogLinear(3, 2, bias=False, config=IDEAL)
    w0, _ = layer.get_weights()
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    x1, x2 = torch.randn(4, 3), torch.randn(2, 3)
    layer(x1).sum().backward()
    layer(x2).sum().backward()                       # two backward passes accumulate ...
    opt.step()
    w1, _ = layer.get_weights()
    expected = w0 - 0.5 * torch.ones(6, 2).T @ torch.cat([x1, x2])
    torch.testing.assert_close(w1, expected, atol=1e-6, rtol=0)
    layer(x1).sum().backward()
    opt.zero_grad()                                  # ... and zero_grad discards them
    opt.step()
    torch.testing.assert_close(layer.get_weights()[0], w1, atol=0, rtol=0)
    assert layer.counters["updates"] == 6


def test_analog_bias_is_trained_by_pulses_ideal():
    torch.manual_seed(0)
    layer = AnalogConv2d(1, 2, 2, config=IDEAL.replace(analog_bias=True))
    ref = nn.Conv2d(1, 2, 2)
    w, b = layer.get_weights()
    with torch.no_grad():
        ref.weight.copy_(w)
        ref.bias.copy_(b)
    x = torch.randn(3, 1, 4, 4)
    for m, o in ((layer, AnalogSGD(layer.parameters(), lr=0.1)), (ref, torch.optim.SGD(ref.parameters(), lr=0.1))):
        m(x).pow(2).mean().backward()
        o.step()
    w, b = layer.get_weights()
    torch.testing.assert_close(w, ref.weight.detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(b, ref.bias.detach(), atol=1e-6, rtol=0)


def test_constant_step_follows_sgd_within_pulse_noise():
    dw_min, lr, steps, batch = 1e-4, 0.01, 40, 8
    device = ConstantStep(dw_min=dw_min, dw_min_std=0.0, dw_min_dtod=0.0, up_down=0.0, up_down_dtod=0.0,
                          w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0)
    update = UpdateConfig(desired_bl=31)
    cfg = AnalogConfig(device=device, io=IOConfig(perfect=True), update=update)
    torch.manual_seed(0)
    layer = AnalogLinear(8, 4, bias=False, config=cfg, seed=7)
    w_init, _ = layer.get_weights()
    ref = w_init.clone().requires_grad_()
    opt = AnalogSGD(layer.parameters(), lr=lr)
    g = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, 8, generator=g) * 0.5
    var = torch.zeros(4, 8, dtype=torch.float64)
    for _ in range(steps):
        x = torch.rand(batch, 8, generator=g) * 2 - 1
        t = x @ teacher.T
        opt.zero_grad()
        nn.functional.mse_loss(layer(x), t).backward()
        pending = layer.analog_ctx.analog_pending
        xs, ds = torch.from_numpy(pending.x).double(), torch.from_numpy(pending.d).double()
        k = lr * xs.abs().amax(1) * ds.abs().amax(1) / dw_min
        assert k.max() <= update.desired_bl, "precondition: no clipped probabilities"
        var += dw_min * lr * ds.abs().T @ xs.abs()
        opt.step()
        loss_ref = nn.functional.mse_loss(x @ ref.T, t)
        (grad,) = torch.autograd.grad(loss_ref, ref)
        with torch.no_grad():
            ref -= lr * grad
    w_analog, _ = layer.get_weights()
    sigma = var.sqrt()
    z = (w_analog.double() - ref.detach().double()) / sigma
    assert z.abs().max() < 5, f"max |z| = {z.abs().max():.2f}"
    assert (z ** 2).mean() < 2, f"mean z^2 = {(z ** 2).mean():.2f}"
    # the test has teeth: the SGD displacement is many sigma (a wrong lr or sign would fail)
    drift = (ref.detach().double() - w_init.double()).abs() / sigma
    assert drift.median() > 5, f"median drift only {drift.median():.1f} sigma"
    assert layer.counters["pulse_total"] > 0


def _cnn(seed):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    return convert_to_analog(net, AnalogConfig(device=SoftBounds(dw_min=0.01)), seed=seed)


def _arrays_state(model):
    out = []
    for m in model.modules():
        if hasattr(m, "array"):
            st = m.array.state_dict()
            out += [st["weights"].tobytes(), st["pulses"].tobytes(), sorted(st["counters"].items()),
                    sorted(st["rng"].items())]
    return out


@pytest.mark.skipif(numba.get_num_threads() < 2, reason="overlap needs two numba threads")
def test_overlapped_updates_are_bit_identical_to_synchronous():
    """AnalogSGD(overlap=True) leaves pulses in flight across batches; numbers stay the same."""
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.uniform(0, 1, (4, 6, 1, 8, 8)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 5, (4, 6)))
    states, losses = [], []
    for overlap in (False, True):
        model = _cnn(3)
        opt = AnalogSGD(model.parameters(), lr=0.2, overlap=overlap)
        seen = []
        for b in range(4):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[b]), y[b])
            loss.backward()
            opt.step()
            seen.append(loss.item())
            if overlap:  # the updates really were left in flight
                assert all(m.array._inflight is not None for m in model.modules() if hasattr(m, "array"))
        losses.append(seen)
        states.append(_arrays_state(model))
    assert losses[0] == losses[1]
    assert states[0] == states[1]
