"""Array providers: one array per layer by default, or a shared bank of physical arrays."""
import numpy as np
import pytest
import torch
from torch import nn

from xbarsim.crossbar import CrossbarArray, IOConfig
from xbarsim.devices import IdealDevice
from xbarsim.mapping import AnalogConfig, AnalogLinear, ArrayBank, BankedMatrix, OwnArray, convert_to_analog

PERFECT = IOConfig(perfect=True)


def _two_layers(bank):
    torch.manual_seed(0)
    cfg = AnalogConfig(device=IdealDevice(), io=PERFECT, array_provider=bank)
    return AnalogLinear(10, 6, config=cfg, seed=1), AnalogLinear(6, 3, config=cfg, seed=2)


def test_default_provider_builds_one_crossbar_array_per_layer_and_keeps_the_dict_unchanged():
    layer = AnalogLinear(5, 4)
    assert type(layer.array) is CrossbarArray
    d = AnalogConfig().to_dict()
    assert "array_provider" not in d and AnalogConfig.from_dict(d) == AnalogConfig()
    assert isinstance(AnalogConfig().provider, OwnArray)


def test_set_weights_counts_every_cell_of_the_array_as_programmed():
    arr = CrossbarArray(3, 7, IdealDevice())
    arr.set_weights(np.ones((3, 7)))
    arr.set_weights(np.zeros((3, 7)))
    assert arr.counters["cells_programmed"] == 2 * 21 and arr.counters["program_calls"] == 2


def test_layers_sharing_a_bank_that_fits_are_exact_and_programmed_once():
    bank = ArrayBank(n_arrays=5, array_rows=4, array_cols=8, io=PERFECT)
    a, b = _two_layers(bank)
    assert isinstance(a.array, BankedMatrix) and a.array.n_blocks == 4 and b.array.n_blocks == 1
    x = torch.randn(7, 10)
    with torch.no_grad():
        y = b(a(x))
        wa, ba = a.get_weights()
        wb, bb = b.get_weights()
        expected = (x @ wa.T + ba) @ wb.T + bb
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
        assert bank.counters()["cells_programmed"] == 5 * 32
        b(a(x))
    assert bank.counters()["cells_programmed"] == 5 * 32            # nothing rewritten
    assert bank.counters()["forward_mvm"] == 2 * 7 * 5
    # the layers' own counters add up to the bank's
    for key in ("forward_mvm", "dac", "cells_programmed", "program_calls"):
        assert a.counters[key] + b.counters[key] == bank.counters()[key]


def test_a_bank_too_small_reprograms_every_block_on_every_pass():
    bank = ArrayBank(n_arrays=2, array_rows=4, array_cols=8, io=PERFECT)
    a, b = _two_layers(bank)
    x = torch.randn(3, 10)
    with torch.no_grad():
        for passes in (1, 2, 3):
            b(a(x))
            assert bank.counters()["program_calls"] == 5 * passes


def test_set_weights_on_a_banked_layer_is_programmed_on_its_next_read():
    bank = ArrayBank(n_arrays=5, array_rows=4, array_cols=8, io=PERFECT)
    a, _ = _two_layers(bank)
    x = torch.randn(2, 10)
    with torch.no_grad():
        a(x)
        calls = bank.counters()["program_calls"]
        a.set_weights(torch.zeros(6, 10), torch.zeros(6))
        assert torch.count_nonzero(a(x)) == 0
    assert bank.counters()["program_calls"] == calls + 4


def test_convert_to_analog_places_a_whole_model_in_one_bank():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 4))
    x = torch.randn(2, 2, 6, 6)
    ref = model(x)
    bank = ArrayBank(n_arrays=3, array_rows=4, array_cols=16, io=PERFECT)
    analog = convert_to_analog(model, AnalogConfig(device=IdealDevice(), io=PERFECT, array_provider=bank))
    with torch.no_grad():
        torch.testing.assert_close(analog(x), ref, rtol=1e-5, atol=1e-5)


def test_bank_config_round_trips_as_a_fresh_bank_of_the_same_shape():
    bank = ArrayBank(n_arrays=3, array_rows=4, array_cols=8, io=PERFECT, seed=5)
    cfg = AnalogConfig(array_provider=bank)
    back = AnalogConfig.from_dict(cfg.to_dict())
    assert isinstance(back.array_provider, ArrayBank) and back.array_provider is not bank
    assert back.array_provider.to_dict() == bank.to_dict()


def test_banked_layers_are_inference_only_and_bad_providers_are_refused():
    bank = ArrayBank(n_arrays=1, array_rows=4, array_cols=8, io=PERFECT)
    a, _ = _two_layers(bank)
    x = torch.randn(2, 10, requires_grad=True)
    with pytest.raises(NotImplementedError, match="inference-only"):
        a(x).sum().backward()
    with pytest.raises(ValueError, match="array_provider"):
        AnalogConfig(array_provider="bank")
    with pytest.raises(ValueError, match="n_arrays"):
        ArrayBank(n_arrays=0, array_rows=4, array_cols=4)
