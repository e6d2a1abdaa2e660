"""benchmarks/_compare.py: alternation, per-round ratios, the JSON record and the aihwkit lookup,
on fake measurements (no aihwkit and no timing involved)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_compare.py"
if not _PATH.exists():  # benchmarks/ is not installed with the package: CI's wheel run copies tests/ alone
    pytest.skip("benchmarks/ is not beside tests/ (run from the checkout)", allow_module_level=True)
_spec = importlib.util.spec_from_file_location("bench_compare", _PATH)
compare = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = compare  # dataclasses look their module up while the class is built
_spec.loader.exec_module(compare)


def fake_sides(times):
    """Sides whose round-r measurement is ``{"t": times[side][r]}``, logging the call order."""
    calls = []

    def side(name):
        def measure(r):
            calls.append((r, name))
            return {"t": times[name][r], "nested": {"rate": 1.0 / times[name][r]}}
        return measure

    return {name: side(name) for name in times}, calls


def test_alternate_runs_each_side_once_per_round_and_reverses_the_order_every_other_round():
    sides, calls = fake_sides({"xbarsim": [1.0, 2.0, 3.0], "aihwkit": [4.0, 5.0, 6.0]})
    rounds, error = compare.alternate(3, sides, log=None)
    assert error is None
    assert calls == [(0, "xbarsim"), (0, "aihwkit"), (1, "aihwkit"), (1, "xbarsim"),
                     (2, "xbarsim"), (2, "aihwkit")]
    assert [r["order"] for r in rounds] == [["xbarsim", "aihwkit"], ["aihwkit", "xbarsim"],
                                            ["xbarsim", "aihwkit"]]
    assert [r["xbarsim"]["t"] for r in rounds] == [1.0, 2.0, 3.0]
    assert [r["aihwkit"]["t"] for r in rounds] == [4.0, 5.0, 6.0]


def test_a_failed_measurement_keeps_the_complete_rounds_and_names_the_failure():
    def fails(r):
        if r == 1:
            raise compare.WorkerError("boom")
        return {"t": 1.0}

    rounds, error = compare.alternate(3, {"xbarsim": lambda r: {"t": 2.0}, "aihwkit": fails}, log=None)
    assert len(rounds) == 1
    assert "round 2" in error and "aihwkit" in error and "boom" in error


def test_speedup_pairs_the_two_measurements_of_each_round_for_times_and_rates():
    # per-round speed-ups for times (lower is better): 4/1, 5/2, 9/3 = 4, 2.5, 3
    sides, _ = fake_sides({"xbarsim": [1.0, 2.0, 3.0], "aihwkit": [4.0, 5.0, 9.0]})
    rounds, _ = compare.alternate(3, sides, log=None)
    s = compare.speedup(rounds, "t", "lower")
    assert s["per_round"] == pytest.approx([4.0, 2.5, 3.0])
    assert (s["median"], s["min"], s["max"]) == pytest.approx((3.0, 2.5, 4.0))
    # the same measurements as rates (higher is better) give the same speed-ups
    r = compare.speedup(rounds, "nested.rate", "higher")
    assert r["per_round"] == pytest.approx(s["per_round"])
    with pytest.raises(ValueError, match="better"):
        compare.speedup(rounds, "t", "faster")


def test_without_aihwkit_there_are_absolute_values_and_no_ratio():
    sides, _ = fake_sides({"xbarsim": [3.0, 1.0]})
    rounds, _ = compare.alternate(2, sides, log=None)
    v = compare.values(rounds, "xbarsim", "t")
    assert (v["per_round"], v["median"], v["min"], v["max"]) == ([3.0, 1.0], 2.0, 1.0, 3.0)
    assert compare.speedup(rounds, "t", "lower")["per_round"] == []


def test_the_record_holds_date_host_versions_threads_and_raw_times(tmp_path):
    sides, _ = fake_sides({"xbarsim": [1.0], "aihwkit": [2.0]})
    rounds, _ = compare.alternate(1, sides, log=None)
    aihwkit = compare.AihwkitSide(python="/x/bin/python", source="test", available=True,
                                  versions={"aihwkit": "1.2.0", "torch": "2.13.0"})
    started = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    record = compare.make_record("bench_x", {"rounds": 1}, 2, aihwkit, rounds,
                                 {"speedup": compare.speedup(rounds, "t", "lower")}, started)
    path = compare.write_json(tmp_path / "sub" / "r.json", record)
    back = json.loads(path.read_text())
    assert back["date_utc"] == "2026-01-02T03:04:05+00:00"
    assert {"platform", "cpu_model", "nproc"} <= set(back["host"])
    assert back["aihwkit"]["versions"]["aihwkit"] == "1.2.0"
    assert back["threads_requested"] == 2
    assert back["rounds"][0]["xbarsim"]["t"] == 1.0 and back["rounds"][0]["aihwkit"]["t"] == 2.0
    assert back["summary"]["speedup"]["median"] == 2.0
    default = compare.default_json_path("bench_x", started, host="box")
    assert default.parent == compare.RESULTS_DIR and default.name == "bench_x_20260102T030405Z_box.json"


def test_finish_writes_the_record_with_its_extras_and_exits_on_an_early_stop(tmp_path, capsys):
    import argparse
    sides, _ = fake_sides({"xbarsim": [1.0]})
    rounds, _ = compare.alternate(1, sides, log=None)
    started = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    args = argparse.Namespace(json=str(tmp_path / "r.json"), rounds=1)
    compare.finish("bench_x", args, 2, None, rounds, {}, started, None, {"nproc": 2}, extra={"more": 7})
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["more"] == 7 and back["host"] == {"nproc": 2} and back["error"] is None
    assert "threads in force" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="stopped early: round 2 failed"):
        compare.finish("bench_x", args, 2, None, rounds, {}, started, "round 2 failed", {"nproc": 2})
    assert json.loads((tmp_path / "r.json").read_text())["error"] == "round 2 failed"


def test_the_aihwkit_interpreter_comes_from_the_option_then_the_environment_then_the_setup_default():
    env = {"XDG_CACHE_HOME": "/cache", compare.AIHWKIT_ENV: "/env/python"}
    assert compare.find_aihwkit_python("/opt/python", env) == (Path("/opt/python"), "--aihwkit-python")
    assert compare.find_aihwkit_python(None, env)[0] == Path("/env/python")
    env.pop(compare.AIHWKIT_ENV)
    assert compare.find_aihwkit_python(None, env)[0] == Path("/cache/aihwkit-1.2.0/bin/python")


def test_a_missing_or_broken_aihwkit_is_reported_as_unavailable(tmp_path):
    missing = compare.probe_aihwkit(str(tmp_path / "nope" / "python"))
    assert not missing.available and str(tmp_path / "nope") in missing.reason
    assert "absolute figures only" in compare.no_aihwkit_message(missing)
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ModuleNotFoundError: no aihwkit' >&2\nexit 1\n")
    broken.chmod(0o755)
    side = compare.probe_aihwkit(str(broken))
    assert not side.available and "does not import aihwkit" in side.reason


def test_run_json_returns_the_last_json_line_and_raises_on_failure():
    out = compare.run_json([sys.executable, "-c", "print('warming up'); print('{\"a\": 1}'); print('{\"a\": 2}')"])
    assert out == {"a": 2}
    with pytest.raises(compare.WorkerError, match="status 3"):
        compare.run_json([sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(compare.WorkerError, match="no JSON"):
        compare.run_json([sys.executable, "-c", "print('nothing')"])


def test_the_thread_environment_sets_every_thread_variable():
    env = compare.thread_environment(3, base={"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert all(env[k] == "3" for k in compare.THREAD_VARIABLES)
