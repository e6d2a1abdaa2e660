"""Checkpoints: a resumed in-situ training run is bit-identical to an uninterrupted one.

Noisy periphery, a soft-bounds device with d2d and c2c variation and a
momentum-carrying digital bias make every random stream and every piece of
state matter: array weights, per-cell parameters, counters, RNG positions,
optimizer buffers.  The checkpoint goes through ``torch.save``/``torch.load``
with the default ``weights_only=True``.
"""
import io

import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import IOConfig, UpdateConfig
from xbarsim.devices import SoftBounds
from xbarsim.mapping import AnalogConfig, AnalogConv2d, AnalogLinear
from xbarsim.training import AnalogSGD

CFG = AnalogConfig(device=SoftBounds(dw_min=0.01), io=IOConfig(), update=UpdateConfig(desired_bl=15))


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(AnalogConv2d(1, 2, 3, config=CFG, seed=seed), nn.ReLU(), nn.Flatten(),
                         AnalogLinear(2 * 4 * 4, 3, config=CFG.replace(analog_bias=True), seed=seed + 1))


def _train(model, opt, batches):
    for x, t in batches:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        opt.step()


def _snapshot(model):
    out = {}
    for name, m in model.named_modules():
        if hasattr(m, "array"):
            out[name + ".w"] = m.array.get_weights()
            out[name + ".pulses"] = m.counters["pulses"].copy()
            out[name + ".adc"] = m.counters["adc"]
    for name, p in model.named_parameters():
        out[name] = p.detach().numpy().copy()
    return out


def test_resume_is_bit_identical():
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 1, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g)) for _ in range(5)]
    k = 2
    model = _model(1)
    opt = AnalogSGD(model.parameters(), lr=0.1, momentum=0.9)
    _train(model, opt, batches[:k])
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    _train(model, opt, batches[k:])
    x_probe = batches[0][0]
    expected = _snapshot(model)
    expected_out = model(x_probe).detach()

    fresh = _model(99)                               # different init and seeds: all must come from the checkpoint
    opt2 = AnalogSGD(fresh.parameters(), lr=0.1, momentum=0.9)
    buf.seek(0)
    ckpt = torch.load(buf)                           # weights_only=True by default
    fresh.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    assert fresh[0].seed == 1 and fresh[3].seed == 2
    _train(fresh, opt2, batches[k:])
    got = _snapshot(fresh)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert torch.equal(fresh(x_probe).detach(), expected_out)   # read-noise streams are in step too


def test_extra_state_rejects_mismatched_layer():
    a = AnalogLinear(3, 2, config=CFG)
    b = AnalogLinear(4, 2, config=CFG)
    with pytest.raises(ValueError, match="2x3"):
        b.load_state_dict(a.state_dict())
