"""Running sweeps: failures, local vs Dask, SIGKILL + resume, results and plot."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from xbarsim.experiments import cli
from xbarsim.experiments.sweeps.run import ExecutorError, run_point, run_sweep
from xbarsim.experiments.sweeps.spec import load_spec
from xbarsim.experiments.sweeps.store import read_points

REPO = Path(__file__).resolve().parents[1]
TOY = "tests.sweep_tasks:toy_task"


def make_spec(tmp_path: Path, body: str = "", a_values=(0.5, 1.0, 2.0, 3.0), repeats: int = 2,
              name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(f"""
        task = "{TOY}"
        seed = 5
        repeats = {repeats}
        output = "sweep.h5"
        [axes]
        a = {list(a_values)}
        mode = ["x", "y"]
    """) + textwrap.dedent(body))
    return path


def by_key(path: Path) -> dict:
    return {r.key: r for r in read_points(path)}


def test_run_point_reports_failure_with_traceback():
    from tests.sweep_tasks import run_toy, toy_task

    out = run_point(run_toy, toy_task.validate({"a": 3.0, "fail_above": 2.0}), 1)
    assert out["status"] == "failed" and "toy task refuses a = 3.0" in out["traceback"]
    out = run_point(run_toy, toy_task.validate({"a": 1.0}), 1)
    assert out["status"] == "complete" and out["metrics"]["test_acc"].shape == (5,)


def test_failing_points_are_stored_and_the_sweep_goes_on(tmp_path, capsys):
    path = make_spec(tmp_path, "[base]\nfail_above = 1.5\n")
    assert cli.main(["sweep", str(path), "--workers", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "8 point(s) failed" in err
    records = read_points(tmp_path / "sweep.h5")
    assert len(records) == 16
    failed = [r for r in records if r.status == "failed"]
    assert sorted({r.params["a"] for r in failed}) == [2.0, 3.0] and len(failed) == 8
    assert all("RuntimeError: toy task refuses" in r.traceback for r in failed)
    assert all(r.metrics == {} for r in failed)
    assert all(r.status == "complete" and "test_acc" in r.metrics for r in records if r.params["a"] < 1.5)
    with h5py.File(tmp_path / "sweep.h5", "r") as f:
        g = f["points"][failed[0].key]
        assert g.attrs["status"] == "failed" and "Traceback" in g.attrs["traceback"]

    # a rerun retries only the failed points
    complete_started = {r.key: r.started for r in records if r.status == "complete"}
    assert cli.main(["sweep", str(path), "--workers", "2", "--no-progress"]) == 1
    again = by_key(tmp_path / "sweep.h5")
    assert all(again[k].started == s for k, s in complete_started.items())
    assert all(again[r.key].started != r.started for r in failed)

    # results shows them with their traceback
    assert cli.main(["results", str(tmp_path / "sweep.h5"), "--filter", "status=failed", "--traceback"]) == 0
    out = capsys.readouterr().out
    assert "8 points (8 failed)" in out and "toy task refuses" in out


def assert_same_points(a_path: Path, b_path: Path, keys: set) -> None:
    a, b = by_key(a_path), by_key(b_path)
    assert set(a) == set(b) == keys
    for key in a:
        assert a[key].config == b[key].config and a[key].seed == b[key].seed
        assert a[key].metrics.keys() == b[key].metrics.keys()
        for name, value in a[key].metrics.items():
            np.testing.assert_array_equal(value, b[key].metrics[name])


def test_local_and_dask_give_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    path = make_spec(tmp_path, "[base]\nb = 12\n", repeats=2)
    keys = {p.key for p in load_spec(path).points()}
    local, dask_local, dask_remote = tmp_path / "local.h5", tmp_path / "dask_local.h5", tmp_path / "dask_remote.h5"
    common = ["sweep", str(path), "--workers", "2", "--no-progress"]
    assert cli.main([*common, "-o", str(local)]) == 0
    assert cli.main([*common, "-o", str(dask_local), "--executor", "dask", "--scheduler", "local"]) == 0
    assert_same_points(local, dask_local, keys)
    # an already running cluster, reached by address like a remote one
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster:
        spec = load_spec(path, output=dask_remote)
        assert run_sweep(spec, executor="dask", scheduler=cluster.scheduler_address, progress=False).ok
    assert_same_points(local, dask_remote, keys)


def test_missing_dask_gives_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    path = make_spec(tmp_path)
    with pytest.raises(ExecutorError, match=r"pip install 'xbarsim\[distributed\]'"):
        run_sweep(load_spec(path), executor="dask", progress=False)
    assert cli.main(["sweep", str(path), "--executor", "dask"]) == 2
    assert "pip install 'xbarsim[distributed]'" in capsys.readouterr().err
    assert not (tmp_path / "sweep.h5").exists()


def test_scheduler_flag_needs_dask_executor(tmp_path):
    with pytest.raises(ExecutorError, match="--scheduler only applies to --executor dask"):
        run_sweep(load_spec(make_spec(tmp_path)), scheduler="tcp://127.0.0.1:1", progress=False)


def test_results_and_plot_from_the_file_alone(tmp_path, capsys):
    path = make_spec(tmp_path)
    assert cli.main(["sweep", str(path), "--workers", "2", "--no-progress"]) == 0
    h5 = tmp_path / "sweep.h5"
    capsys.readouterr()
    assert cli.main(["results", str(h5), "--sort", "final_test_acc", "--desc", "--metric", "final_test_acc"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["a", "mode", "repeat", "seed", "status", "final_test_acc", "wall_s"]
    assert "16 points (0 failed)" in out
    values = [float(line.split()[5]) for line in lines[2:18]]
    assert values == sorted(values, reverse=True)
    assert cli.main(["results", str(h5), "--filter", "a=2", "--filter", "mode=y"]) == 0
    assert "2 points (0 failed)" in capsys.readouterr().out

    os.utime(h5, ns=(0, 0))
    png = tmp_path / "fig" / "line.png"
    assert cli.main(["plot", str(h5), "--x", "a", "--y", "test_acc", "--hue", "mode", "--out", str(png), "--pdf"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    heat = tmp_path / "heat.png"
    assert cli.main(["plot", str(h5), "--x", "a", "--y", "final_test_acc", "--hue", "mode",
                     "--kind", "heatmap", "--out", str(heat)]) == 0
    assert heat.stat().st_size > 1000
    assert h5.stat().st_mtime_ns == 0  # plotting never writes (or reruns) the sweep

    # an axis left free is refused, naming it
    capsys.readouterr()
    assert cli.main(["plot", str(h5), "--x", "a", "--y", "test_acc"]) == 2
    assert "axis 'mode' varies" in capsys.readouterr().err
    assert cli.main(["plot", str(h5), "--x", "a", "--y", "nope"]) == 2
    assert "--y 'nope' is not a stored metric" in capsys.readouterr().err


def test_cli_registers_three_subcommands():
    parser = cli.build_parser()
    for argv in (["sweep", "s.toml"], ["results", "f.h5"], ["plot", "f.h5", "--x", "a", "--y", "b"]):
        assert callable(parser.parse_args(argv).func)


# ------------------------------------------------------------------ SIGKILL and resume
def _complete_started(h5: Path) -> dict:
    """{key: started} of complete points, polling while the writer may hold the file."""
    if not h5.exists():
        return {}
    try:
        return {r.key: r.started for r in read_points(h5) if r.status == "complete"}
    except Exception:  # the file is being created / written right now
        return {}


def test_sigkill_mid_sweep_then_resume_loses_and_recomputes_nothing_finished(tmp_path):
    path = make_spec(tmp_path, f"""
        [base]
        sleep = 0.4
        counter_file = "{tmp_path / 'runs.log'}"
    """, a_values=(0.5, 1.0, 2.0, 3.0, 4.0), repeats=1)
    h5 = tmp_path / "sweep.h5"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "xbarsim.experiments.cli", "sweep", str(path), "--workers", "2",
                             "--no-progress"], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while len(_complete_started(h5)) < 3:
            assert proc.poll() is None, f"sweep ended before it was killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no points completed within 90 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its pool workers
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    before = _complete_started(h5)
    assert 3 <= len(before) < 10
    spec = load_spec(path)
    summary = run_sweep(spec, workers=2, progress=False)
    assert summary.ok and summary.skipped == len(before) and summary.complete == 10 - len(before)

    after = {r.key: r for r in read_points(h5)}
    assert set(after) == {p.key for p in spec.points()}
    assert all(r.status == "complete" for r in after.values())
    assert all(after[k].started == s for k, s in before.items())  # nothing finished was recomputed
    runs = [line.split()[:3] for line in (tmp_path / "runs.log").read_text().splitlines()]
    by_point = {p.key: (repr(p.params["a"]), p.params["mode"], str(p.seed)) for p in spec.points()}
    for key, ident in by_point.items():
        n = runs.count(list(ident))
        assert n == 1 if key in before else n in (1, 2)  # only points in flight at the kill ran twice


def test_pulse_response_task_runs_through_the_sweep(tmp_path):
    """Wiring only (the physics is tested in devices): shapes, seeds, determinism."""
    path = tmp_path / "pr.toml"
    path.write_text(textwrap.dedent("""
        output = "pr.h5"
        seed = 2
        [task]
        name = "pulse_response"
        n_up = 30
        n_down = 20
        n_cells = 4
        [axes]
        up_down = [-0.2, 0.2]
    """))
    spec = load_spec(path)
    assert run_sweep(spec, workers=1, progress=False).ok
    again = load_spec(path, output=tmp_path / "again.h5")
    assert run_sweep(again, workers=1, progress=False).ok
    a, b = by_key(spec.output), by_key(again.output)
    assert set(a) == set(b) and len(a) == 2
    for key, rec in a.items():
        assert rec.metrics["weight_mean"].shape == (51,)
        assert np.isfinite(rec.metrics["symmetry_point"])
        for name, value in rec.metrics.items():
            np.testing.assert_array_equal(value, b[key].metrics[name])
    ups = sorted(a.values(), key=lambda r: r.params["up_down"])
    assert ups[0].value("symmetry_point_closed_form") < ups[1].value("symmetry_point_closed_form")
