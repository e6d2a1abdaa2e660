"""Compensation units: identity at initialization, overhead formulas equal to the real parameter counts."""
import pytest
import torch
from torch import nn

from xbarsim.mapping.compensation import (CompensationConfig, add_compensation, compensation_overhead,
                                          compensation_parameters, fit_rank_to_budget, profile_layers)
from xbarsim.mapping.nonideal import LognormalVariation, Nonideality, analog_layers
from xbarsim.training.compensate import CompensationTraining, train_compensation


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)).eval()


@pytest.mark.parametrize("source", ["input", "output"])
def test_a_compensation_unit_is_the_identity_at_initialization(source):
    base = _net()
    comp = add_compensation(_net(), ["0", "4", "6"], CompensationConfig(rank=2, source=source), seed=1)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(comp(x), base(x))
    assert [n for n, _ in analog_layers(comp)] == ["0.layer", "4.layer", "6.layer"]


@pytest.mark.parametrize("source", ["input", "output"])
def test_overhead_formulas_count_the_units_real_parameters_and_macs(source):
    model = _net()
    profiles = profile_layers(model, (1, 8, 8))
    cfg = CompensationConfig(rank=3, source=source)
    over = compensation_overhead(profiles, ["0", "6"], cfg)
    comp = add_compensation(_net(), ["0", "6"], cfg)
    assert over["params"] == sum(p.numel() for p in compensation_parameters(comp))
    # MACs: conv unit over 8x8 positions, linear unit once
    n0 = 9 if source == "input" else 4
    assert over["per_layer"]["0"]["macs"] == 64 * 3 * (n0 + 4)
    assert over["per_layer"]["6"]["macs"] == 3 * ((12 if source == "input" else 3) + 3)
    total = sum(p.numel() for p in model.parameters())
    assert over["params_pct"] == pytest.approx(100 * over["params"] / total)
    all3 = compensation_overhead(profiles, ["0", "4", "6"], cfg)["params_pct"]
    assert fit_rank_to_budget(profiles, ["0", "4", "6"], cfg, budget_pct=all3).rank == 3
    assert fit_rank_to_budget(profiles, ["0", "4", "6"], cfg, budget_pct=all3 * 0.99).rank == 2


def test_training_moves_only_the_units():
    torch.manual_seed(0)
    x = torch.rand(256, 1, 8, 8)
    teacher = _net(3)
    with torch.no_grad():
        y = teacher(x).argmax(1)
    model = _net(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    add_compensation(model, ["4"], CompensationConfig(rank=2))
    nid = Nonideality(lognormal=LognormalVariation(0.8))
    losses = train_compensation(model, nid, (x, y), CompensationTraining(steps=30, batch_size=64, lr=0.02), seed=0)
    assert len(losses) == 30
    after = model.state_dict()
    for k, v in before.items():
        k2 = k.replace("4.", "4.layer.") if k.startswith("4.") else k
        assert torch.equal(after[k2], v)
    assert float(model[4].unit.U.detach().abs().sum()) > 0


def test_the_cosine_schedule_decays_the_learning_rate_to_zero_over_the_run(monkeypatch):
    import math
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 3, (64,))
    seen = []
    step = torch.optim.Adam.step

    def recording(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    nid = Nonideality(lognormal=LognormalVariation(0.5))
    model = add_compensation(_net(), ["4"], CompensationConfig(rank=2))
    train_compensation(model, nid, (x, y), CompensationTraining(steps=8, batch_size=16, lr=0.02,
                                                                schedule="cosine"), seed=0)
    assert seen == pytest.approx([0.01 * (1 + math.cos(math.pi * t / 8)) for t in range(8)])
    seen.clear()
    train_compensation(model, nid, (x, y), CompensationTraining(steps=3, batch_size=16, lr=0.02), seed=0)
    assert seen == [0.02] * 3
    with pytest.raises(ValueError, match="schedule"):
        CompensationTraining(schedule="linear")


def test_the_rank_is_capped_at_the_layer_size():
    model = _net()
    profiles = profile_layers(model, (1, 8, 8))
    cfg = CompensationConfig(rank=100, source="input")
    comp = add_compensation(_net(), ["0", "6"], cfg)
    assert comp[0].unit.rank == 4 and comp[6].unit.rank == 3
    assert compensation_overhead(profiles, ["0", "6"], cfg)["params"] == \
        sum(p.numel() for p in compensation_parameters(comp))


def test_a_compensated_network_deploys_onto_crossbars_with_its_units_kept_digital():
    from xbarsim.crossbar import IOConfig
    from xbarsim.devices import IdealDevice
    from xbarsim.mapping.nonideal import CrossbarDeployed, DeviceProgramming, program
    model = add_compensation(_net(), ["0", "6"], CompensationConfig(rank=2))
    with torch.no_grad():
        for p in compensation_parameters(model):
            p.normal_()
    deployed = program(model, Nonideality(device=DeviceProgramming(device=IdealDevice(), io=IOConfig(perfect=True))))
    assert isinstance(deployed[0].layer, CrossbarDeployed) and isinstance(deployed[4], CrossbarDeployed)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(deployed(x), model(x), atol=1e-4)
