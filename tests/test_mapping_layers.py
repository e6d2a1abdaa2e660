"""Analog torch layers against their exact digital counterparts (IdealDevice + perfect IO).

Oracle: with an ideal device and perfect periphery the crossbar read is the exact
float32 matmul, so AnalogLinear / AnalogConv2d must reproduce nn.Linear /
F.conv2d (forward and input gradient) to float32 round-off.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xbarsim.crossbar import IOConfig, UpdateConfig
from xbarsim.devices import ConstantStep, IdealDevice, SoftBounds
from xbarsim.mapping import AnalogConfig, AnalogConv2d, AnalogLinear, convert_to_analog

IDEAL = AnalogConfig(device=IdealDevice(), io=IOConfig(perfect=True))
ATOL = 1e-5


def _input(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


@pytest.mark.parametrize("lead", [(2, 3), (6,)])  # (6,): the 2-D fast path with the bias inside AnalogMVM
@pytest.mark.parametrize("bias, analog_bias", [(True, False), (True, True), (False, False)])
def test_linear_matches_nn_linear(bias, analog_bias, lead):
    torch.manual_seed(1)
    layer = AnalogLinear(7, 5, bias=bias, config=IDEAL.replace(analog_bias=analog_bias), seed=3)
    ref = nn.Linear(7, 5, bias=bias)
    w, b = layer.get_weights()
    with torch.no_grad():
        ref.weight.copy_(w)
        if bias:
            ref.bias.copy_(b)
    x = _input(*lead, 7).requires_grad_()          # extra leading dims, like nn.Linear
    xr = x.detach().clone().requires_grad_()
    gy = _input(*lead, 5, seed=1)
    y, yr = layer(x), ref(xr)
    assert y.shape == yr.shape
    torch.testing.assert_close(y, yr, atol=ATOL, rtol=0)
    y.backward(gy)
    yr.backward(gy)
    torch.testing.assert_close(x.grad, xr.grad, atol=ATOL, rtol=0)
    if bias and not analog_bias:  # the digital bias is an ordinary parameter
        torch.testing.assert_close(layer.bias.grad, ref.bias.grad, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(kernel_size=4, padding="same"),
    dict(kernel_size=3, padding=1, bias=False),
])
@pytest.mark.parametrize("analog_bias", [False, True])
@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_conv_matches_f_conv2d(kw, analog_bias):
    torch.manual_seed(2)
    layer = AnalogConv2d(3, 4, config=IDEAL.replace(analog_bias=analog_bias), seed=1, **kw)
    w, b = layer.get_weights()
    x = _input(2, 3, 9, 8).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    ref_kw = {k: v for k, v in kw.items() if k not in ("kernel_size", "bias")}
    y = layer(x)
    yr = F.conv2d(xr, w, b, **ref_kw)
    assert y.shape == yr.shape
    torch.testing.assert_close(y, yr, atol=ATOL, rtol=0)
    gy = _input(*y.shape, seed=5)
    y.backward(gy)
    yr.backward(gy)
    torch.testing.assert_close(x.grad, xr.grad, atol=ATOL, rtol=0)


def test_conv_unbatched_input():
    layer = AnalogConv2d(2, 3, 3, padding=1, config=IDEAL)
    w, b = layer.get_weights()
    x = _input(2, 5, 5)
    torch.testing.assert_close(layer(x), F.conv2d(x[None], w, b, padding=1)[0], atol=ATOL, rtol=0)


def test_tiled_layer_equals_untiled():
    torch.manual_seed(0)
    big = AnalogLinear(11, 7, config=IDEAL, seed=0)
    tiled = AnalogLinear(11, 7, config=IDEAL.replace(tile_rows=3, tile_cols=4), seed=0)
    tiled.set_weights(*big.get_weights())
    assert tiled.tile_grid == (3, 3) and len(tiled.array.tiles) == 9
    x = _input(5, 11)
    torch.testing.assert_close(tiled(x), big(x), atol=ATOL, rtol=0)


def test_groups_and_padding_mode_rejected():
    with pytest.raises(ValueError, match="groups"):
        AnalogConv2d(4, 4, 3, groups=2, config=IDEAL)
    with pytest.raises(ValueError, match="padding_mode"):
        AnalogConv2d(4, 4, 3, padding_mode="reflect", config=IDEAL)


def test_set_get_weights_roundtrip_and_clipping():
    layer = AnalogLinear(4, 3, config=AnalogConfig(device=ConstantStep(w_max_dtod=0, w_min_dtod=0)))
    w = torch.linspace(-1, 1, 12).reshape(3, 4)
    n_clipped = layer.set_weights(w, torch.zeros(3))
    assert n_clipped == int((w.abs() > 0.6).sum())      # ConstantStep bounds are +-0.6
    got, _ = layer.get_weights()
    torch.testing.assert_close(got, w.clamp(-0.6, 0.6))
    analog = AnalogLinear(4, 3, config=IDEAL.replace(analog_bias=True))
    b = torch.tensor([0.1, -0.2, 0.3])
    analog.set_weights(w, b)
    analog.set_weights(2 * w)                               # bias=None keeps the bias column
    got_w, got_b = analog.get_weights()
    torch.testing.assert_close(got_w, 2 * w)
    torch.testing.assert_close(got_b, b)


def test_extra_repr_and_counters():
    layer = AnalogLinear(600, 10, config=AnalogConfig(device=SoftBounds(), tile_cols=512))
    r = repr(layer)
    for part in ("in_features=600", "out_features=10", "device=SoftBounds", "io=noisy", "tiles=1x2",
                 "bias=digital"):
        assert part in r
    conv = AnalogConv2d(2, 3, 3, config=IDEAL.replace(analog_bias=True))
    r = repr(conv)
    assert "bias=analog" in r and "io=perfect" in r and "IdealDevice" in r
    x = _input(4, 600)                      # input without grad: no backward read is needed
    layer(x).sum().backward()
    c = layer.counters
    assert c["forward_mvm"] == 4 * 2 and c["backward_mvm"] == 0
    xg = x.clone().requires_grad_()
    layer(xg).sum().backward()
    assert layer.counters["backward_mvm"] == 4 * 2


def test_first_layer_stashes_update_without_input_grad():
    """The ghost parameter keeps the graph alive even with no bias and an input without grad."""
    layer = AnalogLinear(3, 2, bias=False, config=IDEAL)
    x = _input(4, 3)
    gy = _input(4, 2, seed=1)
    layer(x).backward(gy)
    pending = layer.analog_ctx.analog_pending
    np.testing.assert_array_equal(pending.x, x.numpy())
    np.testing.assert_array_equal(pending.d, gy.numpy())
    assert layer.analog_ctx.grad is None


def test_conv_stash_is_unfolded_input():
    layer = AnalogConv2d(2, 3, 2, stride=1, config=IDEAL.replace(analog_bias=True))
    x = _input(2, 2, 3, 3)
    y = layer(x)
    gy = _input(*y.shape, seed=3)
    y.backward(gy)
    pending = layer.analog_ctx.analog_pending
    cols = F.unfold(x, 2).transpose(1, 2).reshape(-1, 8)
    expected_x = torch.cat([cols, torch.ones(len(cols), 1)], 1)
    np.testing.assert_allclose(pending.x, expected_x.numpy(), atol=0)
    np.testing.assert_allclose(pending.d, gy.permute(0, 2, 3, 1).reshape(-1, 3).numpy(), atol=0)


# ----------------------------------------------------------------- conversion
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, stride=2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 3 * 3, 8), nn.Tanh(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.features(x))


def test_convert_preserves_outputs():
    torch.manual_seed(0)
    model = Small()
    x = _input(3, 2, 7, 7)
    ref = model(x).detach()
    out = convert_to_analog(model, IDEAL, seed=10)
    assert out is model
    kinds = [type(m).__name__ for m in model.modules()]
    assert kinds.count("AnalogConv2d") == 2 and kinds.count("AnalogLinear") == 2
    assert "Linear" not in kinds and "Conv2d" not in kinds
    torch.testing.assert_close(model(x), ref, atol=ATOL, rtol=0)
    seeds = [m.seed for m in model.modules() if hasattr(m, "array")]
    assert seeds == [10, 11, 12, 13]


def test_convert_root_layer_and_shared_module():
    lin = nn.Linear(3, 2)
    new = convert_to_analog(lin, IDEAL)
    assert isinstance(new, AnalogLinear)
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    convert_to_analog(model, IDEAL)
    assert isinstance(model[0], AnalogLinear) and model[0] is model[2]


def test_overrides_by_name_and_type():
    torch.manual_seed(0)
    model = Small()
    soft = AnalogConfig(device=SoftBounds(), io=IOConfig(perfect=True))
    const = AnalogConfig(device=ConstantStep(), io=IOConfig(perfect=True))
    convert_to_analog(model, IDEAL, overrides={nn.Linear: soft, "head.3": const, "features.2": None})
    assert isinstance(model.features[0].config.device, IdealDevice)      # default
    assert isinstance(model.features[2], nn.Conv2d)                       # kept digital
    assert not isinstance(model.features[2], AnalogConv2d)
    assert isinstance(model.head[1].config.device, SoftBounds)            # type override
    assert isinstance(model.head[3].config.device, ConstantStep)          # name beats type


def test_bad_overrides_raise():
    with pytest.raises(ValueError, match="head.9"):
        convert_to_analog(Small(), IDEAL, overrides={"head.9": IDEAL})
    with pytest.raises(ValueError, match="AnalogConfig"):
        convert_to_analog(Small(), IDEAL, overrides={"head.1": "SoftBounds"})
    with pytest.raises(ValueError, match="BatchNorm2d"):
        convert_to_analog(Small(), IDEAL, overrides={nn.BatchNorm2d: IDEAL})
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(ValueError, match="groups"):
        convert_to_analog(grouped, IDEAL)
    convert_to_analog(grouped, IDEAL, overrides={"0": None})  # the documented way out


# ----------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [
    ("device", "SoftBounds"),
    ("io", {"perfect": True}),
    ("backward_io", 3),
    ("update", None),
    ("tile_rows", 0),
    ("tile_cols", 2.5),
    ("analog_bias", 1),
    ("hwa_weight_noise", -0.1),
    ("programming_noise", float("nan")),
])
def test_bad_config_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        AnalogConfig(**{field: value})


def test_config_roundtrip_json():
    cfg = AnalogConfig(device=SoftBounds(up_down=0.2), io=IOConfig(out_noise=0.01),
                       backward_io=IOConfig(perfect=True), update=UpdateConfig(desired_bl=15),
                       tile_rows=64, tile_cols=128, analog_bias=True, hwa_weight_noise=0.02,
                       programming_noise=0.03)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert AnalogConfig.from_dict(d) == cfg
    assert AnalogConfig.from_dict(AnalogConfig().to_dict()) == AnalogConfig()
    with pytest.raises(ValueError, match="bogus"):
        AnalogConfig.from_dict({**d, "bogus": 1})
