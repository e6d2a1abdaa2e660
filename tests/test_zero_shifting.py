"""`xbarsim repro zero-shifting` on the sweep engine: smoke preset, redraw, resume, SIGKILL.

These test the plumbing (points, files, statuses, resume, redraw), not the
physics: the physics is in tests/test_reference.py, and the paper preset is an
experiment, not a test.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xbarsim.experiments.cli import main as cli_main
from xbarsim.experiments.repro import base, zero_shifting
from xbarsim.experiments.sweeps.store import read_points

pytest.importorskip("matplotlib")


def _spec(preset, out):
    module = base.load_reproduction("zero-shifting")
    return base.make_spec(module, "zero-shifting", preset, base.preset_options(module, preset), out)


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
    records = {r.key: r for r in read_points(out)}
    points = _spec("smoke", out).points()
    assert len(points) == 5  # none, symmetry_point, fp, and two device traces
    for pt in points:
        rec = records[pt.key]
        assert rec.status == "complete" and rec.params == pt.params and rec.seed == 1
        if pt.params["kind"] == "device":
            m = rec.metrics
            assert m["pulse_response"].shape == (m["n_up"] + m["n_down"] + 1,)
            # the alternating trace settles at the cell's closed-form symmetry point
            assert abs(m["measured_w_star"] - m["w_star"]) < 3 * m["dw_min"]
            # nominal w* = b up_down / (2 - up_down) for up_down >= 0 and bounds +-b (b = 0.6): 0.257 at 0.6
            ud = pt.params["up_down"]
            assert m["w_star_nominal"] == pytest.approx(0.6 * ud / (2 - ud), abs=1e-9)
            # the trace starts at b_min and its up pulses climb toward b_max (soft bounds: never past it)
            assert m["pulse_response"][0] == pytest.approx(m["b_min"]) and m["b_min"] < 0 < m["b_max"]
            assert m["b_min"] <= m["pulse_response"].min() and m["pulse_response"].max() <= m["b_max"]
            assert m["pulse_response"][m["n_up"]] > 0.5 * m["b_max"]  # 1.25 states of up pulses: ~e^-2.5 left
        else:
            assert rec.metrics["test_acc"].shape == (1,) and rec.metrics["train_loss"].shape == (1,)
            if pt.params["mode"] != "fp":
                assert sum(int(rec.metrics[f"weight_hist_{k}"].sum()) for k in range(3)) == \
                    784 * 32 + 32 * 16 + 16 * 10
    for name in zero_shifting.FIGURES:
        for ext in ("png", "pdf"):
            assert (out_dir / f"{name}.{ext}").stat().st_size > 1000
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["points_complete"] == 5 and summary["status"] == "complete"
    assert summary["schedule"]["epochs"] == 1 and summary["fp_test_acc"] is not None
    assert set(summary["accuracy"]) == {"none", "symmetry_point"}
    assert summary["accuracy"]["none"]["200"]["+0.6"] == pytest.approx(
        next(r["final_test_acc"] for r in summary["runs"] if r["key"] == "none_ud+0.60_n200"))
    assert summary["wall_seconds"] > 0
    # accuracies are fractions (smoke's one epoch on 300 samples need not beat chance: 0.07 measured for
    # the float baseline), and each run's final accuracy is its last epoch's
    assert 0.0 <= summary["fp_test_acc"] <= 1.0
    for r in summary["runs"]:
        assert 0.0 <= r["final_test_acc"] <= 1.0
        assert r["test_acc_per_epoch"][-1] == pytest.approx(r["final_test_acc"], abs=5e-5)
    claims = summary["claims"]
    assert {c["op"] for c in claims} <= {">=", "<="} and len(claims) == 1  # smoke: +0.6 and no symmetric point
    for c in claims:
        assert set(c) == {"claim", "value", "op", "target"}
    # the one claim is zero-shifting's gain over no reference at +0.6, in points, from the table
    acc = summary["accuracy"]
    assert claims[0]["value"] == pytest.approx(round(100 * (acc["symmetry_point"]["200"]["+0.6"]
                                                            - acc["none"]["200"]["+0.6"]), 2), abs=0.011)


def _forbid_simulation(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("simulated although it should not have")
    monkeypatch.setattr(zero_shifting.point, "_train_point", boom)
    monkeypatch.setattr(zero_shifting.point, "_device_point", boom)


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


def test_resume_refuses_overwrite_skips_complete_points_and_refuses_another_schedule(smoke_run, tmp_path,
                                                                                      monkeypatch, capsys):
    rc, out, _ = smoke_run
    copy = tmp_path / "resume.h5"
    copy.write_bytes(out.read_bytes())
    args = ["repro", "zero-shifting", "--preset", "smoke", "--out", str(copy), "--workers", "1", "--no-progress"]
    assert cli_main(args) == 2  # without --resume an existing file is refused
    assert "--resume" in capsys.readouterr().err
    _forbid_simulation(monkeypatch)  # every point complete: nothing is simulated
    assert cli_main(args + ["--resume"]) == 0
    # another schedule is another sweep: refused with the reason, the file untouched
    before = copy.read_bytes()
    assert cli_main(args + ["--resume", "--epochs", "2"]) == 2
    assert "epochs" in capsys.readouterr().err
    assert copy.read_bytes() == before
    assert cli_main(args + ["--resume", "--set", "no_such_option=1"]) == 2
    assert "no_such_option" in capsys.readouterr().err


def test_paper_preset_points():
    pts = _spec("paper", Path("/tmp/unused.h5")).points()
    labels = {zero_shifting.point_label(p.params["kind"], p.params["mode"], p.params["up_down"],
                                        p.params["states"]) for p in pts}
    assert len(labels) == len(pts) == 36 and "fp" in labels
    for mode in zero_shifting.MODES:
        for ud in (0.0, 0.2, -0.2, 0.4, -0.4, 0.6, -0.6, 0.8, -0.8):
            assert zero_shifting.point_label("train", mode, ud, 600) in labels
        for s in (200, 600, 1200):
            assert zero_shifting.point_label("train", mode, 0.6, s) in labels
    sp = next(p for p in pts if p.params["mode"] == "symmetry_point" and p.params["states"] == 1200)
    assert sp.seed == 1 and sp.params["w_bound"] == 0.6 and sp.params["epochs"] == 5


def _complete(h5: Path) -> dict:
    """{key: finished-timestamp} of the complete points (the file may be mid-write: retry)."""
    try:
        return {r.key: r.finished for r in read_points(h5) if r.status == "complete"}
    except Exception:
        return {}


def test_sigkill_then_resume_recomputes_no_finished_point(tmp_path):
    out = tmp_path / "killed.h5"
    cmd = [sys.executable, "-m", "xbarsim.experiments.cli", "repro", "zero-shifting", "--preset", "smoke",
           "--out", str(out), "--workers", "1", "--no-progress", "--set", "train_subset=600"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(_complete(out)) < 2:
            assert proc.poll() is None, f"ended before it was killed: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no two points completed within 240 s"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the client and its pool worker
        proc.wait()
    finished = _complete(out)
    assert 2 <= len(finished) < 5, "the kill came after the whole run; nothing left to resume"
    rc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert rc.returncode == 0, f"rc {rc.returncode}\n{rc.stdout[-2000:]}\n{rc.stderr[-3000:]}"
    after = _complete(out)
    assert len(after) == 5
    assert {k: after[k] for k in finished} == finished  # finished points were not run again
