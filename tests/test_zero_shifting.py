"""`xbarsim repro zero-shifting`: the smoke preset end to end, figures-only redraw, resume.

These test the plumbing (files, statuses, resume, redraw), not the physics: the
physics is in tests/test_reference.py, and the paper preset is an experiment,
not a test.
"""
import json

import h5py
import pytest

from xbarsim.experiments.repro import zero_shifting
from xbarsim.experiments.cli import main as cli_main

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("zs")
    out = out_dir / "zs.h5"
    rc = cli_main(["repro", "zero-shifting", "--preset", "smoke", "--out", str(out), "--workers", "1",
                   "--no-progress"])
    return rc, out, out_dir


def test_smoke_preset_runs_end_to_end(smoke_run):
    rc, out, out_dir = smoke_run
    assert rc == 0
    points = zero_shifting.build_points(zero_shifting.PRESETS["smoke"], zero_shifting.choose_dataset())
    assert 2 <= len(points) <= 3
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == zero_shifting.FORMAT and f.attrs["status"] == "complete"
        for pt in points:
            g = f["runs"][pt.key]
            assert g.attrs["status"] == "complete"
            assert json.loads(g.attrs["config"])["params"] == pt.params
            assert g["test_acc"].shape == (1,) and g["train_loss"].shape == (1,)
            if pt.mode != "fp":
                assert sum(int(d[()].sum()) for d in g["weight_hist"].values()) == 784 * 32 + 32 * 16 + 16 * 10
        for key in f["device"]:
            d = f["device"][key]
            assert d.attrs["status"] == "complete"
            assert d["pulse_response"].shape == (d.attrs["n_up"] + d.attrs["n_down"] + 1,)
            # the alternating trace settles at the cell's closed-form symmetry point
            assert abs(d.attrs["measured_w_star"] - d.attrs["w_star"]) < 3 * d.attrs["dw_min"]
    for name in zero_shifting.FIGURES:
        for ext in ("png", "pdf"):
            assert (out_dir / f"{name}.{ext}").stat().st_size > 1000
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["points_complete"] == len(points)
    assert summary["epochs"] == 1 and summary["fp_test_acc"] is not None
    assert set(summary["accuracy"]) == {"none", "symmetry_point"}
    assert summary["accuracy"]["none"]["200"]["+0.6"] == pytest.approx(
        next(r["final_test_acc"] for r in summary["runs"] if r["key"] == "none_ud+0.60_n200"))
    assert "up_down=+0.6" in summary["must_show"] and summary["wall_seconds"] > 0


def _forbid_simulation(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("simulated although it should not have")
    monkeypatch.setattr(zero_shifting, "_run_point", boom)
    monkeypatch.setattr(zero_shifting, "_device_trace", boom)
    import xbarsim.experiments.train
    monkeypatch.setattr(xbarsim.experiments.train, "run_train", boom)


def test_figures_only_redraws_without_simulating(smoke_run, tmp_path, monkeypatch):
    rc, out, _ = smoke_run
    _forbid_simulation(monkeypatch)
    figs = tmp_path / "redrawn"
    before = out.stat().st_mtime_ns
    assert cli_main(["repro", "zero-shifting", "--out", str(out), "--figures", str(figs), "--figures-only"]) == 0
    assert out.stat().st_mtime_ns == before  # the results file is only read
    for name in zero_shifting.FIGURES:
        assert (figs / f"{name}.png").exists() and (figs / f"{name}.pdf").exists()
    assert json.loads((figs / "summary.json").read_text())["preset"] == "smoke"
    missing = tmp_path / "nothing.h5"
    assert cli_main(["repro", "zero-shifting", "--out", str(missing), "--figures-only"]) == 2


def test_resume_skips_complete_points_and_reruns_incomplete_ones(smoke_run, tmp_path, monkeypatch):
    rc, out, _ = smoke_run
    copy = tmp_path / "resume.h5"
    copy.write_bytes(out.read_bytes())
    # without --resume an existing file is refused
    assert cli_main(["repro", "zero-shifting", "--preset", "smoke", "--out", str(copy), "--workers", "1",
                     "--no-progress"]) == 2
    # every point complete: nothing is simulated
    _forbid_simulation(monkeypatch)
    assert cli_main(["repro", "zero-shifting", "--preset", "smoke", "--out", str(copy), "--workers", "1",
                     "--no-progress", "--resume"]) == 0
    # a half-written point (no status) is run again, and only that one
    with h5py.File(copy, "a") as f:
        del f["runs/fp"].attrs["status"]
    ran = []

    def fake(point):
        ran.append(point.key)
        return {"key": point.key, "status": "complete", "started": "s", "finished": "f", "wall_s": 0.1,
                "curves": {"test_acc": [0.5], "train_loss": [1.0], "epoch_seconds": [0.1], "lr": [0.1]},
                "final_test_acc": 0.5, "data_source": "fake", "weight_hist": {}, "weight_stats": {},
                "pulses": {}}
    monkeypatch.setattr(zero_shifting, "_run_point", fake)
    assert cli_main(["repro", "zero-shifting", "--preset", "smoke", "--out", str(copy), "--workers", "1",
                     "--no-progress", "--resume"]) == 0
    assert ran == ["fp"]
    with h5py.File(copy, "r") as f:
        assert f["runs/fp"].attrs["status"] == "complete" and f["runs/fp"].attrs["final_test_acc"] == 0.5
    # a different schedule (--epochs) is a different point: all of them would rerun
    ran.clear()
    assert cli_main(["repro", "zero-shifting", "--preset", "smoke", "--out", str(copy), "--workers", "1",
                     "--no-progress", "--resume", "--epochs", "2"]) == 0
    assert sorted(ran) == sorted(p.key for p in zero_shifting.build_points(
        zero_shifting.PRESETS["smoke"], zero_shifting.choose_dataset()))


def test_points_of_the_paper_preset():
    p = zero_shifting.PRESETS["paper"]
    pts = zero_shifting.build_points(p, "fashion-mnist")
    keys = {pt.key for pt in pts}
    assert "fp" in keys and len(keys) == len(pts)
    for mode in zero_shifting.MODES:
        for ud in (0.0, 0.2, -0.2, 0.4, -0.4, 0.6, -0.6, 0.8, -0.8):
            assert zero_shifting.point_key(mode, ud, p.main_states) in keys
        for s in p.states:
            assert zero_shifting.point_key(mode, p.states_up_down, s) in keys
    assert len(p.states) >= 3
    sp = next(pt for pt in pts if pt.key == "symmetry_point_ud+0.60_n1200")
    assert sp.params["device_params"]["dw_min"] == pytest.approx(1.2 / 1200)
    assert sp.params["reference"] == "symmetry_point" and sp.params["reference_ideal"] is False
