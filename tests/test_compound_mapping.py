"""A Tiki-Taka compound behind AnalogLinear, trained by AnalogSGD, checkpointed through the layer."""
import io

import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import BufferedTransferConfig, ChoppedTransferConfig, IOConfig, TransferCompound
from xbarsim.devices import ConstantStep, SoftBounds
from xbarsim.mapping import AnalogConfig, AnalogLinear, TransferArrays
from xbarsim.mapping.provider import provider_from_dict
from xbarsim.training import AnalogSGD

PERFECT = IOConfig(perfect=True)
DEVICE = ConstantStep(dw_min=0.002, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
TTV2 = BufferedTransferConfig(transfer_forward=PERFECT, fast_lr=0.1, scale_fast_lr=False, transfer_lr=0.05,
                              scale_transfer_lr=False, units_in_mbatch=False, momentum=0.0)


def _config(transfer=TTV2):
    return AnalogConfig(device=DEVICE, io=PERFECT, array_provider=TransferArrays(transfer))


def _data(n=256, seed=0):
    """Three Gaussian blobs in 4-D: linearly separable, so a small MLP fits them well."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[1.0, 0.0, -1.0, 0.5], [-1.0, 1.0, 0.0, -0.5], [0.0, -1.0, 1.0, 0.0]])
    y = torch.randint(0, 3, (n,), generator=g)
    x = centers[y] + 0.3 * torch.randn(n, 4, generator=g)
    return x, y


def _mlp(config, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(AnalogLinear(4, 8, config=config, seed=2 * seed), nn.ReLU(),
                         AnalogLinear(8, 3, config=config, seed=2 * seed + 1), nn.LogSoftmax(dim=1))


def _epoch(model, opt, x, y, batch=16):
    total = 0.0
    for k in range(0, len(x), batch):
        opt.zero_grad()
        loss = nn.functional.nll_loss(model(x[k:k + batch]), y[k:k + batch])
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(x[k:k + batch])
    return total / len(x)


def test_transfer_provider_round_trips_and_builds_a_compound():
    cfg = _config(ChoppedTransferConfig(in_chop_prob=0.2))
    assert AnalogConfig.from_dict(cfg.to_dict()) == cfg
    assert provider_from_dict(TransferArrays(TTV2, slow_device=SoftBounds()).to_dict()) == \
        TransferArrays(TTV2, slow_device=SoftBounds())
    layer = AnalogLinear(4, 3, config=cfg, seed=1)
    assert isinstance(layer.array, TransferCompound) and layer.array.transfer.kind == "chopped"
    with pytest.raises(ValueError, match="transfer"):
        TransferArrays(IOConfig())


def test_analog_sgd_trains_a_tiny_mlp_on_transfer_compounds():
    x, y = _data()
    model = _mlp(_config())
    opt = AnalogSGD(model.parameters(), lr=0.1)
    with torch.no_grad():
        first = float(nn.functional.nll_loss(model(x), y))
    for _ in range(6):
        _epoch(model, opt, x, y)
    with torch.no_grad():
        out = model(x)
    last = float(nn.functional.nll_loss(out, y))
    acc = float((out.argmax(1) == y).float().mean())
    slow_pulses = sum(m.array.slow.counters["pulse_total"] for m in model if isinstance(m, AnalogLinear))
    assert slow_pulses > 0  # the visible weights C learned through transfers
    # chance is ln 3 = 1.10 and 33 %; the blobs are 2.4 sigma apart, so a trained net is far better
    assert last < 0.6 * first and acc > 0.8, (first, last, acc)


def test_layer_checkpoint_resumes_the_compound_bit_identically():
    x, y = _data(64, seed=1)
    cfg = _config(ChoppedTransferConfig(transfer_forward=PERFECT, in_chop_prob=0.3, transfer_lr=2.0, momentum=0.2))
    model = _mlp(cfg, seed=3)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    _epoch(model, opt, x, y)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    _epoch(model, opt, x, y)
    resumed = _mlp(cfg, seed=4)  # different init, overwritten by the checkpoint
    buf.seek(0)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    _epoch(resumed, AnalogSGD(resumed.parameters(), lr=0.1), x, y)
    for a, b in zip(model, resumed):
        if isinstance(a, AnalogLinear):
            sa, sb = a.array.state_dict(), b.array.state_dict()
            np.testing.assert_array_equal(sa["buffer"], sb["buffer"])
            np.testing.assert_array_equal(sa["in_chopper"], sb["in_chopper"])
            np.testing.assert_array_equal(a.array.fast.get_weights(), b.array.fast.get_weights())
            np.testing.assert_array_equal(a.array.slow.get_weights(), b.array.slow.get_weights())


def test_conv2d_on_a_transfer_compound_reads_c_and_pulses_a():
    from xbarsim.mapping import AnalogConv2d
    conv = AnalogConv2d(2, 3, 2, config=_config(), seed=5)
    w = conv.array.get_weights()
    x = torch.randn(2, 2, 4, 4, requires_grad=True)
    ref = nn.functional.conv2d(x, torch.from_numpy(w).reshape(3, 2, 2, 2), conv.bias)
    out = conv(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)  # gamma = 0, perfect io: the read is C
    opt = AnalogSGD(conv.parameters(), lr=0.1)
    out.square().sum().backward()
    opt.step()
    assert conv.array.fast.counters["pulse_total"] > 0 and conv.array.counters["transfer_reads"] == 2 * 9
