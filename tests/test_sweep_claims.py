"""Several sweep processes on one file: claims split the points, SIGKILL loses nothing finished."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xbarsim.experiments.sweeps.claims import CLAIMED, DONE, HELD, Claim, ClaimBoard, pid_alive
from xbarsim.experiments.sweeps.run import run_sweep
from xbarsim.experiments.sweeps.spec import load_spec
from xbarsim.experiments.sweeps.store import read_points

REPO = Path(__file__).resolve().parents[1]
TOY = "tests.sweep_tasks:toy_task"


def toy_spec(tmp_path: Path, a_values, sleep: float) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(textwrap.dedent(f"""
        task = "{TOY}"
        seed = 5
        output = "sweep.h5"
        [base]
        sleep = {sleep}
        counter_file = "{tmp_path / 'calls.log'}"
        [axes]
        a = {list(a_values)}
        mode = ["x", "y"]
    """))
    return path


def task_calls(tmp_path: Path, spec) -> dict:
    """{point key: number of task calls}, from the toy task's counter file."""
    log = tmp_path / "calls.log"
    lines = [tuple(line.split()[:3]) for line in log.read_text().splitlines()] if log.exists() else []
    return {p.key: lines.count((repr(p.params["a"]), p.params["mode"], str(p.seed))) for p in spec.points()}


def complete_started(h5: Path) -> dict:
    try:
        return {r.key: r.started for r in read_points(h5) if r.status == "complete"}
    except Exception:  # the file does not exist yet
        return {}


def claims_of(claims_dir: Path, pid: int) -> set:
    out = set()
    for f in claims_dir.glob("*.claim") if claims_dir.exists() else ():
        try:
            if json.loads(f.read_text())["pid"] == pid:
                out.add(f.name[:-len(".claim")])
        except (OSError, ValueError):  # released or being replaced right now
            pass
    return out


def writing(h5: Path) -> bool:
    """Whether some process holds the store's writer lock right now."""
    with open(str(h5) + ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


# ------------------------------------------------------------------ the claim board
def test_a_claim_is_exclusive_until_released_and_done_points_are_not_claimed(tmp_path):
    a, b = ClaimBoard(tmp_path / "s.h5"), ClaimBoard(tmp_path / "s.h5")
    b.pid = a.pid + 1  # a second claimant; the same live process, so its claims are not stale
    assert a.try_claim("k1", lambda: True) == CLAIMED
    assert b.try_claim("k1", lambda: True) == HELD
    a.release("k1")
    assert b.try_claim("k1", lambda: False) == DONE  # free, but the file says it is written
    assert b.holder("k1") is None


def test_claims_of_dead_processes_on_this_host_are_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not pid_alive(dead.pid)
    board = ClaimBoard(tmp_path / "s.h5")
    now = time.time()
    board.dir.mkdir()
    (board.dir / "k.claim").write_text(json.dumps(vars(Claim(board.host, dead.pid, None, now, now, "t"))))
    assert board.try_claim("k", lambda: True) == CLAIMED
    assert board.holder("k").pid == os.getpid()


def test_other_hosts_claims_are_taken_over_only_after_the_claim_timeout(tmp_path):
    now = time.time()
    fresh = Claim("another-host", 1, None, now - 100, now - 5, "fresh")
    old = Claim("another-host", 1, None, now - 100, now - 60, "old")
    assert not fresh.stale_reason(None, now) and not old.stale_reason(None, now)
    assert not fresh.stale_reason(30.0, now)
    assert "not renewed for 60 s > --claim-timeout 30 s" in old.stale_reason(30.0, now)
    assert not old.can_go_stale(None) and old.can_go_stale(30.0)
    with pytest.raises(ValueError, match="claim timeout = 0 must be > 0"):
        ClaimBoard(tmp_path / "s.h5", timeout=0)


def test_a_point_held_on_another_host_is_left_to_it_without_a_timeout(tmp_path):
    spec = load_spec(toy_spec(tmp_path, (0.5, 1.0), sleep=0.0))
    held = spec.points()[0]
    board = ClaimBoard(spec.output)
    board.dir.mkdir()
    now = time.time()
    (board.dir / f"{held.key}.claim").write_text(json.dumps(vars(Claim("another-host", 1, None, now, now, "t"))))
    summary = run_sweep(spec, workers=1, progress=False)
    assert summary.complete == 3 and summary.left_to_others == [f"{held.key} (another-host:1)"]
    # with a timeout shorter than the claim's age it is taken over
    time.sleep(0.2)
    summary = run_sweep(spec, workers=1, progress=False, claim_timeout=0.1)
    assert summary.complete == 1 and summary.skipped == 3 and not summary.left_to_others
    assert task_calls(tmp_path, spec) == {p.key: 1 for p in spec.points()}


# ------------------------------------------------------------------ three processes, one killed
def test_three_processes_share_a_sweep_and_a_sigkill_loses_nothing(tmp_path):
    """Three ``xbarsim sweep`` processes on one spec and file, one killed with SIGKILL while it computes.

    Deterministic: the victim is frozen (SIGSTOP) and checked to hold the claim of a
    point whose task has started and whose result is not written, and not to be
    inside a write of the file; only then is it killed. Its claim's pid is then dead on this host, so a survivor takes it over.
    """
    path = toy_spec(tmp_path, (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0), sleep=0.4)  # 16 points
    spec = load_spec(path)
    h5, claims_dir = spec.output, Path(str(spec.output) + ".claims")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-m", "xbarsim.experiments.cli", "sweep", str(path), "--workers", "1",
                               "--no-progress"], cwd=REPO, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    victim = None
    try:
        deadline = time.monotonic() + 120
        while victim is None:
            assert time.monotonic() < deadline, "no process was caught computing a point within 120 s"
            calls, done = task_calls(tmp_path, spec), complete_started(h5)
            for proc in procs:
                busy = {k for k in claims_of(claims_dir, proc.pid) if calls[k] and k not in done}
                if len(done) < 2 or not busy:
                    continue
                os.killpg(proc.pid, signal.SIGSTOP)  # freeze the client and its worker, then look again
                time.sleep(0.1)
                calls, done = task_calls(tmp_path, spec), complete_started(h5)
                busy = {k for k in claims_of(claims_dir, proc.pid) if calls[k] and k not in done}
                if busy and not writing(h5):  # not frozen inside a write (that is test_sweep_store's subject)
                    victim, victim_busy, done_at_kill = proc, busy, done
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        victim.wait()
        survivors = [p for p in procs if p is not victim]
        outs = [p.communicate(timeout=120) for p in survivors]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert victim.returncode == -signal.SIGKILL
    for p, (out, err) in zip(survivors, outs):
        assert p.returncode == 0, err

    records = {r.key: r for r in read_points(h5)}
    assert set(records) == {p.key for p in spec.points()}
    assert all(r.status == "complete" for r in records.values())          # every point is complete
    assert all(records[k].started == s for k, s in done_at_kill.items())  # nothing finished was lost or redone
    calls = task_calls(tmp_path, spec)
    for key, n in calls.items():
        # the victim's started, unfinished point ran twice (it was taken over); every other point once
        assert n == (2 if key in victim_busy else 1), (key, n)
    assert not list(claims_dir.glob("*.claim"))  # survivors released theirs; the victim's was taken over
    # the work was shared: more than one process's pool worker called the task
    assert len({line.split()[3] for line in (tmp_path / "calls.log").read_text().splitlines()}) >= 2


def test_claim_timeout_flag_is_validated(tmp_path, capsys):
    from xbarsim.experiments import cli
    path = toy_spec(tmp_path, (0.5,), sleep=0.0)
    assert cli.main(["sweep", str(path), "--claim-timeout", "0", "--no-progress"]) == 2
    assert "--claim-timeout = 0 must be > 0 seconds" in capsys.readouterr().err
    assert cli.main(["sweep", str(path), "--claim-timeout", "600", "--no-progress", "--workers", "1"]) == 0
    assert "2 points: 0 already complete, 2 completed now, 0 failed" in capsys.readouterr().out
