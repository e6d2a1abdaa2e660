"""`xbarsim repro basisn --preset smoke` end to end through the CLI, and its spec."""
import json

import pytest

from xbarsim.experiments.cli.main import main as cli_main
from xbarsim.experiments.repro import base, basisn
from xbarsim.experiments.sweeps.store import read_points

pytest.importorskip("matplotlib")


def test_k_values_run_from_fit_down_to_one_array():
    # 100k weights on 32x32 arrays: fits in 120 blocks; 10x over capacity is 9 arrays, 100x is 1
    assert basisn.k_values(100_000, 120, 32, [10, 100]) == [120, 9, 1]


def test_smoke_preset_writes_summary_with_claims_through_the_cli(tmp_path):
    out = tmp_path / "b.h5"
    rc = cli_main(["repro", "basisn", "--preset", "smoke", "--out", str(out), "--figures", str(tmp_path),
                   "--workers", "1", "--no-progress", "--set", 'models=["vgg"]'])
    assert rc == 0
    module = base.load_reproduction("basisn")
    options = base.preset_options(module, "smoke", {"models": ["vgg"]})
    points = base.make_spec(module, "basisn", "smoke", options, out).points()
    records = {r.key: r for r in read_points(out)}
    assert {p.params["kind"] for p in points} == {"baseline", "basis", "cost"}
    assert all(records[p.key].status == "complete" for p in points)
    summary = json.loads((tmp_path / "summary.json").read_text())
    claims = {c["claim"] for c in summary["claims"]}
    assert any("cycles/inference" in c for c in claims) and any("EDP" in c for c in claims)
    assert any("within 2 points" in c for c in claims)
    rows = summary["models"]["vgg"]["cost_vs_arrays"]
    assert all(r["counters_agree_with_schedules"] for r in rows)
    assert all(r["writes_per_inference"]["basisn"] == 0 for r in rows)
    # with K = 1 the conventional mapping rewrites every block of every layer on every inference
    one = next(r for r in rows if r["K"] == 1)
    assert one["writes_per_inference"]["reprogramming"] == rows[0]["K"]
    # the cost breakdown adds up, the closed form matches the simulated K = 1 point, and the write-time
    # sensitivity (re-costed from the stored op counts) reproduces the preset's own ratio at its figures
    vgg = summary["models"]["vgg"]
    for row in vgg["cost_breakdown"]:
        for case in ("reprogramming", "basisn"):
            assert sum(row[case]["cycles"].values()) == pytest.approx(row[case]["total_cycles"], rel=1e-3)
    k1 = vgg["closed_form_k1"]
    assert k1["cycles_ratio_closed_form"] == pytest.approx(k1["cycles_ratio_simulated"], rel=1e-3)
    hw = summary["hardware"]
    preset = next(g for g in vgg["write_sensitivity"]["grid"] if g["programming"] == hw["programming"]["value"]
                  and g["verify_iterations"] == hw["verify_iterations"]["value"]
                  and g["write_pulse_ns"] == pytest.approx(hw["write_pulse_s"]["value"] * 1e9))
    over = [r for r in rows if r["weights_over_capacity"] >= 10]
    assert preset["cycles_ratio"] == pytest.approx(max(r["basisn_over_reprogramming"]["cycles"] for r in over),
                                                   rel=1e-3)
    # a batch of one shares nothing: the batch sensitivity starts at the preset's own ratio
    batch = vgg["batch_sensitivity"]
    assert batch["grid"][0]["batch"] == 1 and batch["grid"][0]["cycles_ratio"] == pytest.approx(
        preset["cycles_ratio"], rel=1e-3)
    assert [g["cycles_ratio"] for g in batch["grid"]] == sorted(g["cycles_ratio"] for g in batch["grid"])
    for name in ("fig_accuracy_vs_bases", "fig_cycles_vs_arrays", "fig_edp_vs_arrays", "fig_write_sensitivity",
                 "fig_batch_sensitivity"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
