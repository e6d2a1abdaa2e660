"""``xbarsim sweep | results | plot``: run a sweep spec, list its points, plot them.

``sweep SPEC.toml``   validate the spec, then run every point not yet complete in
                      its output file (resume is automatic). ``--dry-run`` only
                      validates and prints the points. Exit 0 if all points are
                      complete, 1 if some failed, 2 for a bad spec/file/executor.
                      Several ``sweep`` processes on the same spec and file (a
                      job array, on one host or several sharing a file system)
                      split the points: each claims a point before computing it
                      and none is computed twice. A claim of a killed process is
                      taken over at once on its own host; across hosts only with
                      ``--claim-timeout SECONDS`` (claims are renewed every
                      min(30 s, timeout/3) while their point runs, so a claim not
                      renewed for that long belongs to a dead process).
``results FILE``      table of stored points (axis values, seed, status, metrics;
                      curves shown by their last value).
``plot FILE``         mean +- std over repeats of a metric against an axis (lines,
                      one per ``--hue`` value) or a ``--kind heatmap`` over two
                      axes; read from the file alone, never reruns anything.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from xbarsim.experiments.cli.assignments import parse_assignment

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED_POINTS, EXIT_ERROR = 0, 1, 2
MAX_CELL = 40  # longer text (e.g. JSON metrics) is cut in tables


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a device-parameter sweep from a TOML spec",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", type=Path, help="sweep spec (TOML)")
    p.add_argument("--dry-run", action="store_true", help="validate the spec and print its points; run nothing")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local process pool (default) or a Dask cluster")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: os.cpu_count())")
    p.add_argument("--scheduler", default=None,
                   help="Dask scheduler address tcp://HOST:PORT, or 'local' for a LocalCluster (default)")
    p.add_argument("-o", "--output", type=Path, default=None, help="override the spec's output file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--claim-timeout", type=float, default=None, metavar="SECONDS",
                   help="take over a point claimed by another sweep process whose claim was not renewed for "
                        "SECONDS (default: only claims of dead processes on this host are taken over). Needed "
                        "when processes on several hosts share the file; use minutes, not seconds")
    p.set_defaults(func=cmd_sweep)

    r = subparsers.add_parser("results", help="list the points of a sweep file")
    r.add_argument("file", type=Path)
    r.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep points whose param/metric/seed/status equals VALUE (repeatable)")
    r.add_argument("--sort", default=None, metavar="KEY", help="sort by this column")
    r.add_argument("--desc", action="store_true", help="sort in descending order")
    r.add_argument("--metric", action="append", default=[], metavar="NAME", help="show only these metrics")
    r.add_argument("--traceback", action="store_true", help="also print the traceback of failed points")
    r.set_defaults(func=cmd_results)

    q = subparsers.add_parser("plot", help="plot a metric of a sweep file (mean +- std over repeats)")
    q.add_argument("file", type=Path)
    q.add_argument("--x", required=True, help="axis on the x axis")
    q.add_argument("--y", required=True, help="metric (a curve is reduced to its last value)")
    q.add_argument("--hue", default=None, help="axis giving one line per value (heatmap: the y axis)")
    q.add_argument("--kind", choices=("line", "heatmap"), default="line")
    q.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="fix other axes, e.g. --filter w_max=0.6 (repeatable)")
    q.add_argument("--out", type=Path, default=None, help="PNG path (default: next to FILE)")
    q.add_argument("--pdf", action="store_true", help="also write a PDF next to the PNG")
    q.add_argument("--logx", action="store_true", help="log-scale x axis")
    q.set_defaults(func=cmd_plot)


# ------------------------------------------------------------------ sweep
def cmd_sweep(args) -> int:
    from xbarsim.experiments.sweeps.run import ExecutorError, run_sweep
    from xbarsim.experiments.sweeps.spec import SpecError, load_spec
    from xbarsim.experiments.sweeps.store import StoreError, SweepStore

    try:
        spec = load_spec(args.spec, output=args.output)
        if args.dry_run:
            scan = SweepStore(spec.output).scan(spec)
            _print_dry_run(spec, scan.statuses)
            if scan.damage:
                print(f"{spec.output} is damaged ({scan.damage}); a real run salvages its intact points first")
            return EXIT_OK
        if args.claim_timeout is not None and not args.claim_timeout > 0:
            raise ValueError(f"--claim-timeout = {args.claim_timeout:g} must be > 0 seconds")
        if spec.task == "train":  # its workers compile the training kernels on a cold cache
            from xbarsim.experiments.compile_notice import announce_compilation
            announce_compilation()
        with _sigterm_as_interrupt():
            summary = run_sweep(spec, executor=args.executor, workers=args.workers,
                                scheduler=args.scheduler, progress=not args.no_progress,
                                claim_timeout=args.claim_timeout)
    except (SpecError, StoreError, ExecutorError, ValueError) as exc:
        print(f"xbarsim sweep: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    others = f", {summary.by_others} by other processes" if summary.by_others else ""
    print(f"{spec.output}: {summary.total} points: {summary.skipped} already complete, "
          f"{summary.complete} completed now{others}, {len(summary.failed)} failed")
    if summary.left_to_others:
        print(f"xbarsim sweep: {len(summary.left_to_others)} point(s) are held by sweep processes on other hosts "
              "and were not waited for; rerun with --claim-timeout SECONDS to take over those of dead processes",
              file=sys.stderr)
    if summary.failed:
        print(f"xbarsim sweep: {len(summary.failed)} point(s) failed; their tracebacks are stored in the file "
              f"(xbarsim results {spec.output} --filter status=failed --traceback). Rerun the same command "
              "to retry them.", file=sys.stderr)
        return EXIT_FAILED_POINTS
    return EXIT_OK


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (e.g. a batch system's time limit) stops the sweep like Ctrl-C: the file is
    closed cleanly and worker processes are stopped; rerunning resumes."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _print_dry_run(spec, statuses: dict) -> None:
    points = spec.points()
    names = list(spec.axis_names)
    rows = [[p.index, p.key, *(_fmt(p.axis_values[n]) for n in names), p.repeat, p.seed,
             statuses.get(p.key, "todo")] for p in points]
    print(format_table(["#", "key", *names, "repeat", "seed", "status"], rows))
    n_done = sum(statuses.get(p.key) == "complete" for p in points)
    print(f"\ntask {spec.task!r}: {len(points) // spec.repeats} axis combinations x {spec.repeats} repeats = "
          f"{len(points)} points; {n_done} already complete; output {spec.output}")


# ------------------------------------------------------------------ results
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, np.ndarray):
        return f"<{'x'.join(map(str, v.shape))}>"
    text = str(v)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 3] + "..."


def format_table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _matches(value: Any, want: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and \
            isinstance(want, (int, float)) and not isinstance(want, bool):
        return math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12)
    return str(value) == str(want)


def apply_filters(records: list, filters: list[str]) -> list:
    for f in filters:
        key, want = parse_assignment(f, "--filter")
        records = [r for r in records if _matches(r.value(key), want)]
    return records


def cmd_results(args) -> int:
    from xbarsim.experiments.sweeps.store import StoreError, read_file_attrs, read_points

    try:
        attrs = read_file_attrs(args.file)
        records = apply_filters(read_points(args.file), args.filter)
    except (StoreError, ValueError) as exc:
        print(f"xbarsim results: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    axes = list(attrs.get("axis_names", []))
    metrics = args.metric or sorted({m for r in records for m in r.metrics})
    headers = [*axes, "repeat", "seed", "status", *metrics, "wall_s"]
    records.sort(key=lambda r: ([_sort_key(r, a) for a in axes], r.repeat))
    if args.sort:
        key, reverse = args.sort, args.desc
        if key not in headers and key != "key":
            print(f"xbarsim results: error: --sort {key!r} is not a column; columns: {', '.join(headers)}",
                  file=sys.stderr)
            return EXIT_ERROR
        records.sort(key=lambda r: _sort_key(r, key), reverse=reverse)
    rows = [[*(r.value(a) for a in axes), r.repeat, r.seed, r.status,
             *("" if r.value(m) is None else r.value(m) for m in metrics), r.wall_s] for r in records]
    print(format_table(headers, rows))
    n_failed = sum(r.status != "complete" for r in records)
    print(f"\n{len(records)} points ({n_failed} failed) in {args.file}; task {attrs.get('task')!r}")
    if args.traceback:
        for r in records:
            if r.traceback:
                print(f"\n--- {r.key} {json.dumps(r.config.get('axes', {}))} seed {r.seed}\n{r.traceback.rstrip()}")
    return EXIT_OK


def _sort_key(record, key: str):
    v = record.value(key) if key != "wall_s" else record.wall_s
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, v, "")
    return (1, 0, str(v))


# ------------------------------------------------------------------ plot
def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def collect_series(records: list, axes: list[str], x: str, y: str, hue: str | None) -> dict:
    """``{hue_value: {x_value: [y over repeats]}}`` from complete points; checks the request."""
    complete = [r for r in records if r.status == "complete"]
    if not complete:
        raise ValueError("no complete points to plot (check --filter)")
    metrics = sorted({m for r in complete for m in r.metrics})
    if y not in metrics:
        raise ValueError(f"--y {y!r} is not a stored metric; metrics: {', '.join(metrics)}")
    for name, flag in ((x, "--x"), (hue, "--hue")):
        if name is not None and name not in axes:
            raise ValueError(f"{flag} {name!r} is not an axis of this sweep; axes: {', '.join(axes)}")
    others = [a for a in axes if a not in (x, hue)]
    cells: dict = {}
    for r in complete:  # other axes must be fixed within each (hue, x) cell (zipped ones are)
        rest = tuple(json.dumps(r.value(a)) for a in others)
        first = cells.setdefault((json.dumps(r.value(hue)) if hue else None, json.dumps(r.value(x))), rest)
        for a, u, v in zip(others, first, rest):
            if u != v:
                raise ValueError(f"axis {a!r} varies ({u} and {v}) but is neither --x nor --hue; "
                                 f"fix it with --filter {a}=VALUE")
    series: dict = defaultdict(lambda: defaultdict(list))
    for r in complete:
        v = r.value(y)
        if not _numeric(v):
            raise ValueError(f"--y {y!r} is not numeric (point {r.key}: {v!r})")
        series[r.value(hue) if hue else None][r.value(x)].append(float(v))
    return series


def cmd_plot(args) -> int:
    from xbarsim.experiments.sweeps.store import StoreError, read_file_attrs, read_points

    try:
        attrs = read_file_attrs(args.file)
        records = apply_filters(read_points(args.file), args.filter)
        axes = list(attrs.get("axis_names", []))
        if args.kind == "heatmap" and not args.hue:
            raise ValueError("--kind heatmap needs --hue (the second axis)")
        series = collect_series(records, axes, args.x, args.y, args.hue)
    except (StoreError, ValueError) as exc:
        print(f"xbarsim plot: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    n_failed = sum(r.status != "complete" for r in records)
    if n_failed:
        log.warning("%d failed points are left out of the plot", n_failed)

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if args.kind == "line":
        _draw_lines(ax, series, args)
    else:
        _draw_heatmap(fig, ax, series, args)
    ax.set_title(f"{attrs.get('task')}: {args.y}", fontsize=10)

    out = args.out or args.file.with_name(
        f"{args.file.stem}_{args.y}_vs_{args.x}{'_by_' + args.hue if args.hue else ''}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    written = [out]
    if args.pdf:
        fig.savefig(out.with_suffix(".pdf"))
        written.append(out.with_suffix(".pdf"))
    print("wrote " + ", ".join(map(str, written)))
    return EXIT_OK


def _ordered(values) -> list:
    values = list(values)
    return sorted(values) if all(_numeric(v) for v in values) else sorted(values, key=str)


def _draw_lines(ax, series: dict, args) -> None:
    for hue_value in _ordered(series):
        points = series[hue_value]
        xs = _ordered(points)
        stats = [_mean_std(points[x]) for x in xs]
        mean = np.array([m for m, _ in stats])
        std = np.array([s for _, s in stats])
        label = None if hue_value is None else f"{args.hue}={_fmt(hue_value)}"
        numeric_x = all(_numeric(x) for x in xs)
        pos = xs if numeric_x else list(range(len(xs)))
        (line,) = ax.plot(pos, mean, marker="o", label=label)
        ax.fill_between(pos, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
        if not numeric_x:
            ax.set_xticks(pos, [str(x) for x in xs])
    if args.logx:
        ax.set_xscale("log")
    ax.set_xlabel(args.x)
    ax.set_ylabel(f"{args.y} (mean ± std over repeats)")
    if args.hue:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _draw_heatmap(fig, ax, series: dict, args) -> None:
    hues = _ordered(series)
    xs = _ordered({x for h in hues for x in series[h]})
    grid = np.full((len(hues), len(xs)), np.nan)
    for i, h in enumerate(hues):
        for j, x in enumerate(xs):
            if series[h].get(x):
                grid[i, j] = _mean_std(series[h][x])[0]
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), [_fmt(x) for x in xs], rotation=45, ha="right")
    ax.set_yticks(range(len(hues)), [_fmt(h) for h in hues])
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for i in range(len(hues)):
        for j in range(len(xs)):
            if np.isfinite(grid[i, j]):
                dark = hi == lo or (grid[i, j] - lo) / (hi - lo) < 0.6  # viridis is dark at the low end
                ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=7, color="w" if dark else "k")
    ax.set_xlabel(args.x)
    ax.set_ylabel(args.hue)
    fig.colorbar(im, ax=ax, label=f"{args.y} (mean over repeats)")
