"""The inference-physics reproduction end to end through the CLI (smoke preset), and its paper spec."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from xbarsim.experiments.repro.inference_physics import PRESETS, build_spec, read_results


def test_smoke_preset_writes_summary_with_claims_tables_and_figures(tmp_path: Path):
    out = tmp_path / "ip.h5"
    cmd = [sys.executable, "-m", "xbarsim.experiments.cli", "repro", "inference-physics", "--preset", "smoke",
           "--out", str(out), "--figures", str(tmp_path), "--workers", "1", "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert summary["claims"] and all({"claim", "value", "op", "target"} <= set(c) for c in summary["claims"])
    drift = summary["tables"]["drift"]
    assert set(drift) == {"pcm", "rram"} and set(drift["pcm"]) == {"plain", "hwa"}
    row = drift["pcm"]["hwa"]["global"]
    assert set(row) == {"1", "3.15576e+07"} and all(0.0 <= v["mean"] <= 1.0 for v in row.values())
    assert set(summary["tables"]["ir_drop"]) == {"32", "64"}
    assert summary["tables"]["solver"]["32"]["rel_error"] <= 1e-9
    for name in ("fig_a_accuracy_over_time", "fig_b_accuracy_vs_wire_resistance", "fig_c_solver"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    res = read_results(out)
    m = res["drift"]["pcm"]["plain"]["none"]
    assert m["test_acc"].shape == (2, 2)
    # with global compensation the first read (1 s) is within the chips' spread of the uncompensated one
    g = res["drift"]["pcm"]["plain"]["global"]
    assert np.isfinite(g["test_acc"]).all()


def test_paper_spec_covers_every_device_training_compensation_size_and_method(tmp_path: Path):
    spec = build_spec(PRESETS["paper"], tmp_path / "x.h5")
    z = spec["zip"][0]
    kinds = z["kind"]
    assert kinds.count("drift") == 8 and kinds.count("ir") == 8 and kinds.count("solver") == 3
    ir_sizes = {s for k, s in zip(kinds, z["array_size"]) if k == "ir"}
    assert ir_sizes == {64, 128, 256, 512}
    assert spec["base"]["times"].split(",")[0] == "1.0" and float(spec["base"]["times"].split(",")[-1]) > 3e7
