"""Live, alternating speed comparisons of xbarsim against aihwkit (shared by the benchmarks).

A ratio between two programs means something only when both ran in the same
session, one after the other: on a shared host either program's speed moves by
up to 2x from hour to hour.  So a benchmark here never divides by a stored time.
It runs *rounds*; in each round it starts

* one fresh subprocess of the current interpreter that measures xbarsim, and
* one fresh subprocess of aihwkit's own interpreter that runs
  ``benchmarks/_aihwkit_worker.py`` (which imports only aihwkit, torch and numpy),

alternating which goes first, so that both pay the same process start-up and
both see the host's load drift equally.  Each subprocess warms up (numba
kernels compiled or loaded from the cache, first allocations) before it times
anything, does one measurement, and prints one JSON line.  The benchmark then
reports every round's figures, the median over rounds of the per-round
speed-up of xbarsim over aihwkit and its spread (the smallest and largest
per-round speed-up), and writes everything to a JSON file: date, host, versions
of both sides, thread settings as each subprocess saw them, and the raw times.

aihwkit is never a dependency of xbarsim: it lives in a virtual environment of
its own, built by ``../shared/tools/setup_aihwkit.sh`` (IBM aihwkit 1.2.0, CPU).
Its interpreter is looked up in this order:

1. ``--aihwkit-python PATH``;
2. ``$XBARSIM_AIHWKIT_PYTHON``;
3. the setup script's default, ``${XDG_CACHE_HOME:-~/.cache}/aihwkit-1.2.0/bin/python``.

When none of these imports aihwkit, the benchmark says so and prints xbarsim's
absolute figures only (no ratio against anything).

Threads: both sides get the same thread count ``T`` (``--threads``, default: the
cores this process may run on).  Each subprocess is started with
``OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = NUMBA_NUM_THREADS = T``
and sets torch's (and, for xbarsim, numba's) thread count to ``T`` itself; both
report what was in force.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

AIHWKIT_ENV = "XBARSIM_AIHWKIT_PYTHON"
#: the release the issue compares against; another version still runs, with a warning
AIHWKIT_VERSION = "1.2.0"
SETUP_SCRIPT = "../shared/tools/setup_aihwkit.sh"
BENCH_DIR = Path(__file__).resolve().parent
WORKER = BENCH_DIR / "_aihwkit_worker.py"
RESULTS_DIR = BENCH_DIR / "results"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
SIDES = ("xbarsim", "aihwkit")

_PROBE = (
    "import json, platform, sys\n"
    "import aihwkit, numpy, torch\n"
    "from aihwkit.simulator import rpu_base  # the compiled simulator, not just the Python package\n"
    "print(json.dumps({'aihwkit': aihwkit.__version__, 'torch': torch.__version__, 'numpy': numpy.__version__,\n"
    "                  'python': platform.python_version(), 'executable': sys.executable}))\n"
)


class WorkerError(RuntimeError):
    """A measurement subprocess failed or printed no JSON line."""


# ------------------------------------------------------------------ aihwkit lookup
def default_aihwkit_python(environ: Mapping[str, str] | None = None) -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/aihwkit-1.2.0/bin/python``, where setup_aihwkit.sh builds by default."""
    environ = os.environ if environ is None else environ
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / f"aihwkit-{AIHWKIT_VERSION}" / "bin" / "python"


def find_aihwkit_python(option: str | None = None, environ: Mapping[str, str] | None = None) -> tuple[Path, str]:
    """The aihwkit interpreter to use and where that choice came from (option, env, default)."""
    environ = os.environ if environ is None else environ
    if option:
        return Path(option).expanduser(), "--aihwkit-python"
    if environ.get(AIHWKIT_ENV):
        return Path(environ[AIHWKIT_ENV]).expanduser(), f"${AIHWKIT_ENV}"
    return default_aihwkit_python(environ), f"default location of {SETUP_SCRIPT}"


@dataclass
class AihwkitSide:
    """What the lookup found: ``available`` with its ``versions``, or the ``reason`` it is not."""

    python: str
    source: str
    available: bool
    versions: dict = field(default_factory=dict)
    reason: str = ""
    warning: str = ""


def probe_aihwkit(option: str | None = None, timeout: float = 180.0,
                  environ: Mapping[str, str] | None = None) -> AihwkitSide:
    """Check that the interpreter exists and imports aihwkit (with its compiled part); read the versions."""
    path, source = find_aihwkit_python(option, environ)
    side = AihwkitSide(python=str(path), source=source, available=False)
    if not path.exists():
        side.reason = f"no interpreter at {path} ({source})"
        return side
    try:
        proc = subprocess.run([str(path), "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        side.reason = f"{path} ({source}) could not be run: {exc}"
        return side
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no error output)"])[-1]
        side.reason = f"{path} ({source}) does not import aihwkit: {tail}"
        return side
    side.versions = parse_json_line(proc.stdout, f"{path} -c <probe>")
    side.available = True
    if side.versions.get("aihwkit") != AIHWKIT_VERSION:
        side.warning = (f"aihwkit {side.versions.get('aihwkit')} found, the comparison is defined against "
                        f"{AIHWKIT_VERSION}")
    return side


def no_aihwkit_message(side: AihwkitSide) -> str:
    return (f"aihwkit is not available: {side.reason}.\n"
            f"  Printing xbarsim's absolute figures only, with no ratio to aihwkit.\n"
            f"  To compare: build it with {SETUP_SCRIPT} [VENV_DIR] (about 15 minutes), then pass "
            f"--aihwkit-python VENV_DIR/bin/python or set ${AIHWKIT_ENV}.")


# ------------------------------------------------------------------ subprocesses
def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_environment(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with every thread-count variable set to ``threads``."""
    env = dict(os.environ if base is None else base)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    return env


def parse_json_line(stdout: str, what: str) -> dict:
    """The last line of ``stdout`` that parses as a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise WorkerError(f"{what} printed no JSON line; its output ended with: {stdout[-500:]!r}")


def run_json(cmd: Sequence[str], env: Mapping[str, str] | None = None, timeout: float | None = None) -> dict:
    """Run one measurement subprocess and return the JSON object it printed last (stderr passes through
    only when it fails, as the tail of the error)."""
    what = " ".join(str(c) for c in cmd[:3]) + (" ..." if len(cmd) > 3 else "")
    try:
        proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=None if env is None
                              else dict(env), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise WorkerError(f"{what} ran past {timeout} s") from exc
    if proc.returncode != 0:
        raise WorkerError(f"{what} exited with status {proc.returncode}:\n{proc.stderr[-3000:]}")
    return parse_json_line(proc.stdout, what)


def aihwkit_command(side: AihwkitSide, measurement: str, params: Mapping[str, Any]) -> list[str]:
    return [side.python, str(WORKER), measurement, json.dumps(dict(params))]


def aihwkit_side(aihwkit: "AihwkitSide | None", measurement: str, params: Mapping[str, Any],
                 env: Mapping[str, str], note: str = "") -> Callable[[int], dict] | None:
    """Say which aihwkit runs (or why none does) and return its side for :func:`alternate`, or ``None``.

    ``aihwkit`` is :func:`probe_aihwkit`'s result, ``None`` for ``--no-aihwkit``; ``note``
    is appended to the line that names it.
    """
    if aihwkit is None:
        print("aihwkit: skipped (--no-aihwkit); absolute figures only")
        return None
    if not aihwkit.available:
        print(no_aihwkit_message(aihwkit))
        return None
    print(f"aihwkit {aihwkit.versions['aihwkit']} (torch {aihwkit.versions['torch']}) from {aihwkit.python} "
          f"[{aihwkit.source}]{note}")
    if aihwkit.warning:
        print(f"warning: {aihwkit.warning}")
    cmd = aihwkit_command(aihwkit, measurement, params)
    return lambda r: run_json(cmd, env)


def describe_host(threads: int) -> dict:
    """:func:`host_info`, after printing its one-line summary."""
    host = host_info()
    print(f"host: {host['cpu_model']}, {host['nproc']} cores ({host['usable_cores']} usable), "
          f"load {host['loadavg_at_start']}; {threads} thread(s) for each program")
    return host


# ------------------------------------------------------------------ alternation
def alternate(rounds: int, sides: Mapping[str, Callable[[int], dict]],
              log: Callable[[str], None] | None = print) -> tuple[list[dict], str | None]:
    """Run every side once per round, reversing the order every other round.

    ``sides`` maps a name to ``measure(round) -> dict``.  Returns the rounds,
    each ``{"round": r, "order": [...], "<side>": result, "<side>_wall_s": seconds}``,
    and an error message if a measurement failed (the rounds before it are kept).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(sides)
    done: list[dict] = []
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        record: dict[str, Any] = {"round": r, "order": list(order)}
        for name in order:
            t0 = time.perf_counter()
            try:
                record[name] = sides[name](r)
            except WorkerError as exc:
                return done, f"round {r + 1}, {name}: {exc}"
            record[f"{name}_wall_s"] = time.perf_counter() - t0
            if log is not None:
                log(f"  round {r + 1}/{rounds}: {name} done ({record[f'{name}_wall_s']:.1f} s with start-up)")
        done.append(record)
    return done, None



def paired_median_times(fn_a, fn_b, repeats: int) -> tuple[float, float, list[float]]:
    """Median times of ``fn_a`` and ``fn_b`` timed call by call in alternation (after one untimed call
    of each), so that load drift on a shared host hits both alike; also ``fn_b``'s raw times."""
    fn_a()
    fn_b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times_a), statistics.median(times_b), times_b


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    """Median time of ``fn`` over ``repeats`` calls after one untimed call (compilation, first
    allocations); also the raw times."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def lookup(result: Mapping[str, Any], key: str) -> float:
    """``result["a"]["b"]`` for ``key="a.b"``."""
    value: Any = result
    for part in key.split("."):
        value = value[part]
    return float(value)


def spread(values: Sequence[float]) -> dict:
    """Median, min and max of ``values`` (NaN for an empty list)."""
    if not values:
        return {"per_round": [], "median": math.nan, "min": math.nan, "max": math.nan}
    return {"per_round": list(values), "median": statistics.median(values), "min": min(values), "max": max(values)}


def values(rounds: Sequence[Mapping[str, Any]], side: str, key: str) -> dict:
    """One side's figure ``key`` in every round, with its median and range."""
    return spread([lookup(r[side], key) for r in rounds if side in r])


def speedup(rounds: Sequence[Mapping[str, Any]], key: str, better: str, of: str = "xbarsim",
            over: str = "aihwkit") -> dict:
    """Per-round speed-up of ``of`` over ``over`` in figure ``key``, with its median and range.

    ``better="lower"`` for times (speed-up = t_over / t_of), ``"higher"`` for rates
    (speed-up = rate_of / rate_over).  Each ratio pairs the two measurements of
    one round; the median and range are over those per-round ratios.
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    ratios = []
    for r in rounds:
        if of in r and over in r:
            a, b = lookup(r[of], key), lookup(r[over], key)
            ratios.append(b / a if better == "lower" else a / b)
    out = spread(ratios)
    out.update(figure=key, better=better, ratio=f"{of} speed / {over} speed")
    return out


def format_speedup(label: str, s: Mapping[str, Any]) -> str:
    n = len(s["per_round"])
    if n == 0:
        return f"{label}: no complete round"
    rounds = ", ".join(f"{v:.2f}" for v in s["per_round"])
    return (f"{label}: median {s['median']:.2f}x, range {s['min']:.2f}x to {s['max']:.2f}x over {n} "
            f"round{'s' if n > 1 else ''} (per round: {rounds})")


def format_threads(rounds: Sequence[Mapping[str, Any]]) -> str:
    """The thread settings each side reported in its first round, on one line."""
    parts = []
    for name in SIDES:
        first = next((r[name] for r in rounds if name in r), None)
        if first is not None:
            t = first.get("threads", {})
            parts.append(f"{name} " + ", ".join(f"{k}={v}" for k, v in t.items() if v is not None))
    return "threads in force: " + "; ".join(parts) if parts else "threads in force: (no round completed)"


# ------------------------------------------------------------------ provenance and output
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "machine": platform.machine(),
            "cpu_model": _cpu_model(), "nproc": os.cpu_count(), "usable_cores": default_threads(),
            "loadavg_at_start": load}


def package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def default_json_path(benchmark: str, when: _dt.datetime | None = None, host: str | None = None) -> Path:
    when = now_utc() if when is None else when
    host = (host or socket.gethostname()).replace("/", "_") or "host"
    return RESULTS_DIR / f"{benchmark}_{when.strftime('%Y%m%dT%H%M%SZ')}_{host}.json"


def make_record(benchmark: str, args: Mapping[str, Any], threads: int, aihwkit: AihwkitSide | None,
                rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], started: _dt.datetime,
                error: str | None = None, host: Mapping[str, Any] | None = None) -> dict:
    """Everything a later reader needs: when, where, what versions, which threads, every raw figure.

    ``host`` is :func:`host_info` taken when the run started (default: taken now).
    """
    return {
        "benchmark": benchmark,
        "date_utc": started.isoformat(timespec="seconds"),
        "finished_utc": now_utc().isoformat(timespec="seconds"),
        "host": dict(host) if host is not None else host_info(),
        "driver": {"python": sys.executable, "python_version": platform.python_version(),
                   "xbarsim": package_version("xbarsim")},
        "threads_requested": threads,
        "aihwkit": None if aihwkit is None else asdict(aihwkit),
        "arguments": dict(args),
        "rounds": list(rounds),
        "summary": dict(summary),
        "error": error,
    }


def write_json(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=str)
        f.write("\n")
    return path


def finish(benchmark: str, args: argparse.Namespace, threads: int, aihwkit: AihwkitSide | None,
           rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], started: _dt.datetime,
           error: str | None, host: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """A benchmark's last steps: the thread line, the JSON record (``--json`` or the default path,
    plus ``extra``), and exit status 1 with the reason when a round stopped early."""
    print(format_threads(rounds))
    path = args.json or default_json_path(benchmark, started)
    record = make_record(benchmark, vars(args), threads, aihwkit, rounds, summary, started, error, host=host)
    record.update(extra or {})
    print(f"results: {write_json(path, record)}")
    if error:
        sys.exit(f"stopped early: {error}")


def add_common_arguments(ap: argparse.ArgumentParser, rounds: int) -> None:
    ap.add_argument("--rounds", type=int, default=rounds, help=f"alternating rounds (default {rounds})")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both programs (default: the cores this process may use)")
    ap.add_argument("--aihwkit-python", default=None, metavar="PATH",
                    help=f"aihwkit's interpreter (default ${AIHWKIT_ENV}, then "
                         f"${{XDG_CACHE_HOME:-~/.cache}}/aihwkit-{AIHWKIT_VERSION}/bin/python)")
    ap.add_argument("--no-aihwkit", action="store_true", help="measure xbarsim only, even if aihwkit is there")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="where to write the results (default benchmarks/results/<bench>_<date>_<host>.json)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # internal: one xbarsim measurement


def worker_arguments(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    """Command-line arguments that pass ``names`` (argparse dests) on to an xbarsim worker subprocess."""
    out: list[str] = []
    for name in names:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            if value:
                out.append(flag)
        elif value is not None:
            out += [flag, str(value)]
    return out
