"""Sweep HDF5 store: layout, resume, half-written points, incompatible specs."""
from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from xbarsim.experiments import cli
from xbarsim.experiments.sweeps.run import run_sweep
from xbarsim.experiments.sweeps.spec import load_spec
from xbarsim.experiments.sweeps.store import StoreError, SweepStore, read_file_attrs, read_points

TOY = "tests.sweep_tasks:toy_task"


def make_spec(tmp_path: Path, a_values=(0.5, 1.0, 2.0), b: int = 6, repeats: int = 2, extra: str = "") -> Path:
    counter = tmp_path / "runs.log"
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(f"""
        task = "{TOY}"
        seed = 11
        repeats = {repeats}
        output = "sweep.h5"
        [base]
        b = {b}
        counter_file = "{counter}"
        {extra}
        [axes]
        a = {list(a_values)}
    """))
    return path


def run_counts(tmp_path: Path) -> dict:
    """How often each (a, seed) ran, from the toy task's counter file."""
    counts: dict = {}
    log = tmp_path / "runs.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        a, _, seed, _ = line.split()
        counts[(float(a), int(seed))] = counts.get((float(a), int(seed)), 0) + 1
    return counts


def started_by_key(path: Path) -> dict:
    return {r.key: r.started for r in read_points(path)}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout_of_a_finished_sweep(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    summary = run_sweep(spec, workers=2, progress=False)
    assert summary.ok and summary.complete == 6 and summary.skipped == 0
    with h5py.File(spec.output, "r") as f:
        assert f.attrs["format"] == "xbarsim-sweep"
        assert json.loads(f.attrs["spec"])["task"]["name"] == TOY
        assert json.loads(f.attrs["compat"])["axis_names"] == ["a"]
        assert f.attrs["fingerprint"] == spec.fingerprint()
        assert sorted(f["points"]) == sorted(p.key for p in spec.points())
        for p in spec.points():
            g = f["points"][p.key]
            assert g.attrs["status"] == "complete"
            assert json.loads(g.attrs["config"]) == p.config()
            assert g.attrs["seed"] == p.seed
            for attr in ("xbarsim_version", "host", "started", "finished", "wall_s"):
                assert attr in g.attrs
            assert g["test_acc"].shape == (6,) and g["final_test_acc"].shape == ()
            assert g["test_acc"][-1] == g["final_test_acc"][()]
    attrs = read_file_attrs(spec.output)
    assert attrs["axis_names"] == ["a"]
    records = read_points(spec.output)
    assert {r.value("mode_used") for r in records} == {"x"}
    assert all(isinstance(r.value("converged"), bool) for r in records)


def test_rerun_skips_complete_points(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=2, progress=False)
    before = started_by_key(spec.output)
    summary = run_sweep(spec, workers=2, progress=False)
    assert summary.skipped == 6 and summary.complete == 0
    assert started_by_key(spec.output) == before
    assert set(run_counts(tmp_path).values()) == {1}


def test_half_written_points_are_detected_and_recomputed(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=2, progress=False)
    before = started_by_key(spec.output)
    points = spec.points()
    no_status, partial, missing_data = points[-1], points[2], points[0]
    with h5py.File(spec.output, "a") as f:
        grp = f["points"]
        del grp[no_status.key].attrs["status"]            # died before writing status
        del grp[partial.key]                               # died mid-group: some datasets, no status
        g = grp.create_group(partial.key)
        g.attrs["config"] = json.dumps(partial.config())
        g.create_dataset("test_acc", data=np.zeros(3))
        del grp[missing_data.key]["test_acc"]              # status says complete but a dataset is gone
        grp.create_group("0123456789abcdef")               # stray empty group
    statuses = SweepStore(spec.output).scan(spec).statuses
    assert statuses[no_status.key].startswith("corrupt: no status")
    assert statuses[partial.key].startswith("corrupt: no status")
    assert statuses[missing_data.key].startswith("corrupt: metric datasets missing")

    summary = run_sweep(spec, workers=2, progress=False)
    assert summary.complete == 3 and summary.skipped == 3
    after = started_by_key(spec.output)
    assert set(after) == {p.key for p in points}  # stray group gone
    redone = {no_status.key, partial.key, missing_data.key}
    for key in before:
        assert (after[key] != before[key]) == (key in redone)
    counts = run_counts(tmp_path)
    for p in points:
        assert counts[(p.params["a"], p.seed)] == (2 if p.key in redone else 1)
    assert all(r.status == "complete" for r in read_points(spec.output))


@pytest.mark.parametrize("change, message", [
    (dict(b=7), r"base.b: file has 6, spec has 7"),
    (dict(extra='mode = "y"'), r"base.mode: file has '<unset>', spec has 'y'"),
])
def test_incompatible_spec_is_refused_without_touching_the_file(tmp_path, capsys, change, message):
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=1, progress=False)
    digest, mtime = file_digest(spec.output), spec.output.stat().st_mtime_ns
    changed = make_spec(tmp_path, **change)
    with pytest.raises(StoreError, match=message):
        run_sweep(load_spec(changed), workers=1, progress=False)
    assert cli.main(["sweep", str(changed), "--workers", "1"]) == 2
    assert "holds a different sweep" in capsys.readouterr().err
    assert cli.main(["sweep", str(changed), "--dry-run"]) == 2
    assert file_digest(spec.output) == digest and spec.output.stat().st_mtime_ns == mtime


def test_other_axis_names_are_incompatible(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=1, progress=False)
    other = tmp_path / "other.toml"
    other.write_text(make_spec(tmp_path).read_text().replace("[axes]", "[axes]\nmode = [\"x\", \"y\"]"))
    with pytest.raises(StoreError, match=r"axis names: added \['mode'\], removed \[\]"):
        run_sweep(load_spec(other), workers=1, progress=False)


def test_new_axis_values_and_repeats_only_add_points(tmp_path):
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=2, progress=False)
    before = started_by_key(spec.output)
    bigger = load_spec(make_spec(tmp_path, a_values=(0.5, 1.0, 2.0, 4.0), repeats=3))
    summary = run_sweep(bigger, workers=2, progress=False)
    assert summary.total == 12 and summary.skipped == 6 and summary.complete == 6
    after = started_by_key(spec.output)
    assert all(after[k] == v for k, v in before.items())
    assert set(run_counts(tmp_path).values()) == {1}
    assert json.loads(h5py.File(spec.output, "r").attrs["spec"])["repeats"] == 3


def test_not_a_sweep_file_is_refused(tmp_path):
    path = make_spec(tmp_path)
    with h5py.File(tmp_path / "sweep.h5", "w") as f:
        f.attrs["something"] = "else"
    digest = file_digest(tmp_path / "sweep.h5")
    with pytest.raises(StoreError, match="not an xbarsim sweep file"):
        run_sweep(load_spec(path), workers=1, progress=False)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="cannot open as HDF5"):
        run_sweep(load_spec(path, output=tmp_path / "junk.h5"), workers=1, progress=False)
    assert file_digest(tmp_path / "sweep.h5") == digest


def test_damaged_point_object_is_salvaged_and_only_it_recomputed(tmp_path):
    """Simulates what a SIGKILL inside an HDF5 write can leave: a point HDF5 cannot open."""
    spec = load_spec(make_spec(tmp_path))
    run_sweep(spec, workers=1, progress=False)
    before = started_by_key(spec.output)
    victim = spec.points()[4]
    with h5py.File(spec.output, "r") as f:
        addr = h5py.h5o.get_info(f["points"][victim.key].id).addr
    with open(spec.output, "r+b") as fh:  # scribble over the point's object header
        fh.seek(addr)
        fh.write(b"\xff" * 32)
    damaged_bytes = spec.output.read_bytes()
    scan = SweepStore(spec.output).scan(spec)
    assert scan.damage == f"point {victim.key} is unreadable"
    assert scan.statuses[victim.key].startswith("corrupt: unreadable")

    summary = run_sweep(spec, workers=1, progress=False)
    assert summary.ok and summary.skipped == 5 and summary.complete == 1
    after = started_by_key(spec.output)
    assert {k for k in before if after[k] != before[k]} == {victim.key}
    backups = list(tmp_path.glob("sweep.h5.damaged-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == damaged_bytes  # the original is kept
    assert not list(tmp_path.glob("*.salvage"))
    assert read_file_attrs(spec.output)["fingerprint"] == spec.fingerprint()


def test_write_group_waits_for_the_writer_lock(tmp_path):
    """Another process's salvage or point write holds ``<file>.lock``; a record is written only after it."""
    import fcntl
    import threading

    path = tmp_path / "run.h5"
    store = SweepStore(path)
    store.write_group("run", {"test_acc": np.array([0.1])}, {"seed": 1}, "running")
    with open(str(path) + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        writer = threading.Thread(target=store.write_group,
                                  args=("run", {"test_acc": np.array([0.1, 0.2])}, {"seed": 1}, "complete"))
        writer.start()
        writer.join(0.3)
        assert writer.is_alive()  # blocked on the lock
        with h5py.File(path, "r") as f:
            assert f["run"].attrs["status"] == "running"
        fcntl.flock(lock, fcntl.LOCK_UN)
    writer.join()
    with h5py.File(path, "r") as f:
        g = f["run"]
        assert g.attrs["status"] == "complete" and g["test_acc"].shape == (2,)
