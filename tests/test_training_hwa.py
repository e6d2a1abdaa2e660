"""Hardware-aware training: the forward model, its gradients, and programming into arrays.

Oracles:
* perfect IO and no noise: HWA layers are exactly nn.Linear / F.conv2d;
* with deterministic but quantising periphery, ``hwa_read`` is the engine's
  ``CrossbarArray.forward`` (same DAC/ADC grids, noise and bound management);
* injected Gaussian noise has the stated variance, tested on the sample
  variance with its standard error ``sqrt(2/n)`` (5 standard errors);
* straight-through rounding: the input gradient is exactly ``d W``.
"""
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import CrossbarArray, IOConfig
from xbarsim.devices import IdealDevice
from xbarsim.mapping import AnalogConfig, AnalogConv2d, AnalogLinear
from xbarsim.training import HWAConv2d, HWALinear, convert_to_hwa, hwa_read, program

PERFECT = AnalogConfig(device=IdealDevice(), io=IOConfig(perfect=True))


def test_hwa_without_noise_is_exact():
    torch.manual_seed(0)
    lin = HWALinear(5, 3, config=PERFECT)
    conv = HWAConv2d(2, 3, 3, stride=2, padding=1, config=PERFECT)
    x = torch.randn(4, 5)
    torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), atol=1e-6, rtol=0)
    xc = torch.randn(2, 2, 7, 7)
    torch.testing.assert_close(conv(xc), F.conv2d(xc, conv.weight, conv.bias, stride=2, padding=1),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("bound_management", ["none", "iterative"])
def test_hwa_read_mirrors_engine_forward(bound_management):
    """Quantisation, noise management and bound management as in the engine (noise off)."""
    io_cfg = IOConfig(out_noise=0.0, out_bound=1.0, bound_management=bound_management)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 40, generator=g) * 0.3
    x = torch.randn(64, 40, generator=g)
    x[0] = 0.0                                          # all-zero sample
    arr = CrossbarArray(16, 40, device=IdealDevice(), io=io_cfg, seed=0)
    arr.set_weights(w.numpy())
    y_engine = torch.from_numpy(arr.forward(x.numpy()))
    y_hwa = hwa_read(x, w, io_cfg)
    if bound_management == "iterative":
        assert arr.counters["bm_repeats"] > 0            # the case is exercised
    # identical, except where float32 summation order lands on an ADC decision boundary
    diff = (y_hwa - y_engine).abs()
    assert (diff == 0).float().mean() > 0.99
    one_step = io_cfg.out_step * x.abs().amax(1, keepdim=True) * 16     # bound-management factor <= 16
    assert bool((diff <= one_step * 1.001).all())


def test_straight_through_gradients():
    io_cfg = IOConfig(out_noise=0.05, out_bound=1000.0)  # quantised and noisy, never saturating
    g = torch.Generator().manual_seed(2)
    w = (torch.randn(6, 10, generator=g) * 0.3).requires_grad_()
    x = torch.randn(8, 10, generator=g).requires_grad_()
    d = torch.randn(8, 6, generator=g)
    hwa_read(x, w, io_cfg, g).backward(d)
    torch.testing.assert_close(x.grad, d @ w.detach(), atol=1e-5, rtol=0)
    # dL/dW = d^T (s x_q): within half a DAC step per input of d^T x
    s = x.detach().abs().amax(1, keepdim=True)
    err_bound = d.abs().T @ (s * io_cfg.inp_step / 2).expand(-1, 10)
    assert bool(((w.grad - d.T @ x.detach()).abs() <= err_bound + 1e-5).all())


def test_weight_noise_has_stated_variance_in_training_only():
    sigma_w, n_pass = 0.05, 400
    layer = HWALinear(20, 10, bias=False, config=PERFECT.replace(hwa_weight_noise=sigma_w), seed=3)
    x = torch.randn(1, 20, generator=torch.Generator().manual_seed(0))
    exact = F.linear(x, layer.weight).detach()
    with torch.no_grad():
        samples = torch.cat([layer(x) - exact for _ in range(n_pass)])      # (n_pass, 10)
    expected_var = (sigma_w * layer.weight.detach().abs().max()) ** 2 * (x ** 2).sum()
    n = samples.numel()
    ratio = samples.pow(2).mean() / expected_var                              # zero-mean by construction
    assert abs(ratio - 1) < 5 * math.sqrt(2 / n), f"variance ratio {ratio:.3f}"
    assert abs(samples.mean()) < 5 * math.sqrt(expected_var / n)
    layer.eval()
    torch.testing.assert_close(layer(x), exact, atol=1e-6, rtol=0)


def test_program_exact_and_with_noise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 64),
                          nn.Linear(64, 32))
    model = convert_to_hwa(model, PERFECT.replace(hwa_weight_noise=0.1), seed=5)
    assert isinstance(model[0], HWAConv2d) and isinstance(model[3], HWALinear)
    model.eval()
    x = torch.randn(3, 2, 5, 5)
    ref = model(x).detach()
    weights = model[4].weight.detach().clone()
    exact = program(model, seed=0)                           # programming_noise = 0, ideal device
    assert isinstance(exact[0], AnalogConv2d) and isinstance(exact[4], AnalogLinear)
    torch.testing.assert_close(exact(x), ref, atol=1e-5, rtol=0)

    sigma_p = 0.03
    noisy = convert_to_hwa(nn.Sequential(nn.Linear(64, 32)), PERFECT)
    with torch.no_grad():
        noisy[0].weight.copy_(weights)
    noisy = program(noisy, PERFECT.replace(programming_noise=sigma_p), seed=11)
    err = (noisy[0].get_weights()[0] - weights).double()
    expected_var = (sigma_p * weights.abs().max().double()) ** 2
    n = err.numel()
    assert abs(err.pow(2).mean() / expected_var - 1) < 5 * math.sqrt(2 / n)
    assert abs(err.mean()) < 5 * math.sqrt(expected_var / n)


def test_hwa_checkpoint_and_override():
    torch.manual_seed(0)
    cfg = AnalogConfig(device=IdealDevice(), io=IOConfig(), hwa_weight_noise=0.05)
    model = convert_to_hwa(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), cfg, overrides={"1": None})
    assert isinstance(model[0], HWALinear) and type(model[1]) is nn.Linear
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    x = torch.randn(4, 6)
    y1 = model(x)
    clone = convert_to_hwa(nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 2)), cfg, overrides={"1": None}, seed=9)
    buf.seek(0)
    clone.load_state_dict(torch.load(buf))
    assert torch.equal(clone(x), y1)                  # same weights, same noise stream position


def test_hwa_training_smoke_reduces_loss():
    torch.manual_seed(0)
    cfg = AnalogConfig(device=IdealDevice(), io=IOConfig(), hwa_weight_noise=0.02)
    model = convert_to_hwa(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)), cfg)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 8, generator=g)
    t = (x[:, :2] - x[:, 2:4]).sign()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.mse_loss(model(x), t)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    analog = program(model, seed=2)
    analog.eval()
    with torch.no_grad():
        assert F.mse_loss(analog(x), t).item() < 0.8 * losses[0]
