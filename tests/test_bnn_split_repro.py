"""`xbarsim repro bnn-split` on the sweep engine: the smoke preset end to end, and the paper preset's points.

Plumbing only (points, files, summary, claims); the physics is in tests/test_bnn_split.py.
"""
import json

import numpy as np
import pytest

from xbarsim.experiments.cli import main as cli_main
from xbarsim.experiments.repro import base, bnn_split
from xbarsim.experiments.sweeps.store import read_points

pytest.importorskip("matplotlib")


def _spec(preset, out):
    module = base.load_reproduction("bnn-split")
    return base.make_spec(module, "bnn-split", preset, base.preset_options(module, preset), out)


def test_smoke_preset_runs_end_to_end_through_the_cli(tmp_path):
    out = tmp_path / "bnn.h5"
    rc = cli_main(["repro", "bnn-split", "--preset", "smoke", "--out", str(out), "--figures", str(tmp_path),
                   "--workers", "1", "--no-progress"])
    assert rc == 0
    records = read_points(out)
    assert len(records) == 4 and all(r.status == "complete" for r in records)
    for r in records:
        m = r.metrics
        assert bool(m["ideal_deploy_bit_exact"])
        assert m["device_acc"].shape == (1, 2, 2) and np.all((m["device_acc"] >= 0) & (m["device_acc"] <= 1))
        if r.params["array_rows"]:
            assert m["split_hidden_adc_count"] == 0 < m["conventional_hidden_adc_count"]
            assert m["deployed_adc_conversions"] == 0 < m["deployed_sense_amp_decisions"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["status"] == "complete"
    acc = summary["accuracy_percent"]
    assert set(acc) == {"mlp", "cnn"} and set(acc["mlp"]) == {"unsplit", "A=32"}
    assert acc["mlp"]["A=32"]["groups_per_layer"] == [1, 2, 2, 1]
    assert acc["mlp"]["unsplit"]["retrained"] == acc["mlp"]["unsplit"]["baseline"]
    assert summary["cost_per_inference"]["mlp"]["A=32"]["split"]["hidden_adcs"] == 0
    # the table is the points' accuracies in percent, and the split mapping's hidden layers cost less
    by_key = {(r.params["network"], r.params["array_rows"]): r.metrics for r in records}
    for net in ("mlp", "cnn"):
        m = by_key[(net, 32)]
        row = acc[net]["A=32"]
        assert row["retrained"] == pytest.approx(100 * float(m["acc_retrained"]), abs=0.006)
        assert row["no_retraining"] == pytest.approx(100 * float(m["acc_no_retrain"]), abs=0.006)
        assert all(0.0 <= row[k] <= 100.0 for k in ("retrained", "no_retraining", "baseline"))
        cost = summary["cost_per_inference"][net]["A=32"]
        assert 0 < cost["split"]["hidden_energy_nj"] < cost["conventional"]["hidden_energy_nj"]
        assert 0 < cost["split"]["hidden_area_mm2"] < cost["conventional"]["hidden_area_mm2"]
    claims = summary["claims"]
    assert claims and all(set(c) == {"claim", "value", "op", "target"} and c["op"] in (">=", "<=") for c in claims)
    assert any("within 1.5 points" in c["claim"] for c in claims)
    for name in ("fig_accuracy_vs_A", "fig_cost_vs_A"):
        for ext in ("png", "pdf"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 1000


def test_paper_preset_has_one_point_per_network_and_A_with_unsplit_first(tmp_path):
    points = _spec("paper", tmp_path / "p.h5").points()
    keys = [(p.params["network"], p.params["array_rows"]) for p in points]
    assert sorted(keys) == sorted((n, a) for n in ("mlp", "cnn") for a in (0, 512, 256, 128))
    assert [a for _, a in keys[:2]] == [0, 0]  # the baselines are built by the first points
    assert points[0].params["mlp_widths"] == "784,2048,2048,2048,10" and points[0].params["n_mc"] >= 10
    assert bnn_split.PRESETS["paper"]["variations"][-1] == pytest.approx(0.2)
