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
    for name in ("fig_accuracy_vs_bases", "fig_cycles_vs_arrays", "fig_edp_vs_arrays"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
