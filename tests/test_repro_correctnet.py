"""The CorrectNet-style reproduction end to end through the CLI (smoke preset)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xbarsim.experiments.repro.correctnet import build_spec, read_results


def test_smoke_preset_writes_summary_with_claims_tables_and_figures(tmp_path: Path):
    out = tmp_path / "c.h5"
    cmd = [sys.executable, "-m", "xbarsim.experiments.cli", "repro", "correctnet", "--preset", "smoke",
           "--out", str(out), "--figures", str(tmp_path), "--workers", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["claims"] and all({"claim", "value", "op", "target"} <= set(c) for c in summary["claims"])
    row = summary["tables"]["lenet5"]["sigma"]["1"]
    assert 0.0 <= row["plain"]["mean"] <= 1.0 and row["rl"]["params_pct"] <= 5.0
    # the variation-aware network is trained and evaluated; the base is chosen on the validation split
    assert 0.0 <= row["vat"]["mean"] <= 1.0 and row["base"] in ("reg", "vat")
    assert row["base"] == ("vat" if row["val"]["vat"] > row["val"]["reg"] else "reg")
    assert "low_variation" in summary["tables"]["lenet5"]["device"]
    # the claim's variants again on the 100 test images after the table's 200, with their own claim lines
    held = row["heldout"]
    assert held["n"] == 100 and all(0.0 <= held[v]["mean"] <= 1.0 for v in ("plain", "rl", "greedy"))
    # (a held-out twin beside each recovery claim; smoke's tiny network may keep half its accuracy: none)
    assert sum("held-out" in c["claim"] for c in summary["claims"]) == sum("recovers" in c["claim"]
                                                                           for c in summary["claims"])
    assert "heldout" not in summary["tables"]["lenet5"]["device"]["low_variation"]
    for name in ("accuracy_vs_sigma", "sensitivity_placement", "device_programming"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    res = read_results(out)
    m = res["sigma"]["lenet5"][1.0]
    assert len(m["plain_accs"]) == 2 and np.isclose(m["plain_mean"], np.mean(m["plain_accs"]))
    # every variant's table entry is the mean over its chips; the overheads are the placed units' share
    for v in ("reg", "vat", "rl", "greedy", "all"):
        assert len(m[f"{v}_accs"]) == 2 and np.isclose(m[f"{v}_mean"], np.mean(m[f"{v}_accs"]))
        assert row[v]["mean"] == pytest.approx(float(m[f"{v}_mean"]), abs=5e-5)
    for v in ("rl", "greedy", "all"):
        placed = np.asarray(m[f"{v}_placement"], dtype=bool)
        assert (row[v]["params_pct"] > 0) == bool(placed.any()) and (v == "all" or row[v]["params_pct"] <= 5.0)
    # successive halving (smoke: penalty 0.5; the 3 best search rewards, ties to fewer units, plus the empty
    # placement; then the 2 best of those by their middle-rung rewards, plus the empty one), and the RL pick is
    # one of the last rung's
    none = (0,) * len(m["sensitivity"])
    units, params = np.asarray(m["unit_params"]), int(np.sum(m["layer_params"]))  # all parameters sit in layers

    def top(scores, k):
        best = sorted(scores, key=lambda a: (-(scores[a] - 0.5 * int(np.dot(a, units)) / params), sum(a), a))[:k]
        return best + ([none] if none not in best else [])

    evaluated = dict(zip(map(tuple, np.asarray(m["rl_evaluated_placements"])), m["rl_evaluated_accuracies"]))
    halved = dict(zip(map(tuple, np.asarray(m["rl_halved_placements"])), m["rl_halved_accuracies"]))
    rescored = [tuple(r) for r in np.asarray(m["rl_rescored_placements"])]
    assert list(halved) == top(evaluated, 3)
    assert rescored == top(halved, 2)
    assert tuple(np.asarray(m["rl_placement"])) in rescored


def test_paper_spec_interleaves_the_networks_and_covers_the_sweep(tmp_path: Path):
    from xbarsim.experiments.repro.correctnet import PRESETS
    spec = build_spec(PRESETS["paper"], tmp_path / "x.h5")
    z = spec["zip"][0]
    assert z["model"][:2] == ["lenet5", "vgg"] and z["kind"][:2] == ["sigma", "sigma"]
    assert len(z["model"]) == 7 + 4 + 2  # LeNet-5 sigmas, VGG sigmas, LeNet-5 device settings
    assert z["kind"][-2:] == ["device", "device"]
    sig = [s for k, m, s in zip(z["kind"], z["model"], z["sigma"]) if k == "sigma" and m == "lenet5"]
    assert min(sig) == 0.1 and max(sig) == 1.0
    assert spec["base"]["n_mc"] >= 20


def test_variation_aware_network_trains_its_own_epochs_and_keeps_the_others_cached(monkeypatch, tmp_path: Path):
    import xbarsim.experiments.repro.correctnet.networks as cn
    from xbarsim.experiments.repro.base import ARTIFACT_DIR_ENV
    calls = []

    def fake_train(name, data, beta, epochs, seed, kind, train_sigma, schedule):
        calls.append((beta, train_sigma, epochs))
        return {"state": cn.build_model(name).state_dict()}

    monkeypatch.setattr(cn, "_train_network", fake_train)
    monkeypatch.setenv(ARTIFACT_DIR_ENV, str(tmp_path))
    params = dict(model="lenet5", epochs=20, dataset="fashion-mnist", train_subset=0, val_subset=2000,
                  seed_train=1, reg_kind="spectral", lr_schedule="cosine")
    cn.network(params, 0.0, ())
    cn.network(params, 0.01, (), 0.65, 40)
    cn.network(params, 0.01, (), 0.65, 0)          # 0: the networks' epochs, a different artifact
    cn.network(params, 0.01, (), 0.65, 40)         # cached
    assert calls == [(0.0, 0.0, 20), (0.01, 0.65, 40), (0.01, 0.65, 20)]


def test_each_network_has_its_own_recipe_and_a_preset_table_merges_one_entry():
    """``networks[model]`` of a preset becomes the point's plain (LeNet-5) or ``vgg_`` (VGG-style)
    parameters, and run_point reads the point's own network's recipe back from them."""
    from xbarsim.experiments.repro import base
    from xbarsim.experiments.repro.correctnet.point import NetworkRecipe
    module = base.load_reproduction("correctnet")
    options = base.preset_options(module, "paper", {"networks": {"vgg": {"epochs": 7}}})
    assert options["networks"]["vgg"]["epochs"] == 7 and options["networks"]["vgg"]["vat_epochs"] == 40
    assert options["networks"]["lenet5"]["epochs"] == 20
    spec = base.make_spec(module, "correctnet", "paper", options, Path("/tmp/unused.h5"))
    for point in spec.points():
        recipe = NetworkRecipe.of(point.params)
        want = options["networks"][point.params["model"]]
        assert recipe == NetworkRecipe(**{k: want[k] for k in ("epochs", "vat_epochs", "train_subset",
                                                                "test_subset", "train_sigma")})
    assert {NetworkRecipe.of(p.params).epochs for p in spec.points()} == {7, 20}
    try:
        base.preset_options(module, "paper", {"networks": {"vgg": {"epoch": 7}}})
    except ValueError as exc:
        assert "networks.vgg.epoch" in str(exc)
    else:
        raise AssertionError("a misspelt nested option was accepted")
