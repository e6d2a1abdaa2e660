"""``xbarsim repro NAME``: reproduce a paper's figures on the sweep engine.

Every reproduction is a sweep (see :mod:`xbarsim.experiments.repro.base`), so each
one resumes after a kill (``--resume``), runs on a local process pool or a Dask
cluster, and its HDF5 file also answers ``xbarsim results`` and ``xbarsim plot``.

Examples::

    xbarsim repro zero-shifting --preset smoke --out /tmp/zs.h5
    xbarsim repro zero-shifting --preset paper --out results/zs.h5 --figures results/ --workers 2
    xbarsim repro zero-shifting --out results/zs.h5 --resume          # continue an interrupted run
    xbarsim repro zero-shifting --out results/zs.h5 --figures-only    # redraw from the file
    xbarsim repro zero-shifting --preset smoke --set epochs=2         # override a preset option
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xbarsim.experiments.cli.assignments import assignment_type
from xbarsim.experiments.repro import REPRODUCTIONS

PRESET_NAMES = ("smoke", "paper")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "repro", help="reproduce a paper's figures (HDF5 results, PNG/PDF figures, summary.json)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(REPRODUCTIONS), help="which paper's experiment")
    p.add_argument("--preset", choices=PRESET_NAMES, default="paper",
                   help="smoke: seconds, for tests; paper: the full sweep (default)")
    p.add_argument("--out", default=None, metavar="FILE.h5",
                   help="HDF5 results file (default: <experiment>_<preset>.h5 in the current directory)")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="where figures and summary.json go (default: the directory of --out)")
    p.add_argument("--resume", action="store_true",
                   help="continue an existing --out file: complete points are skipped")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local process pool (default) or a Dask cluster")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="Dask scheduler address (tcp://host:8786), or 'local' for a LocalCluster")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"parallel worker processes (default: os.cpu_count() = {os.cpu_count()})")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where MNIST / Fashion-MNIST files are (sets the option data_dir)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs (the option epochs)")
    p.add_argument("--set", dest="options", action="append", type=assignment_type("--set"), default=[], metavar="KEY=VALUE",
                   help="override one preset option (JSON, true/false, or a string); repeatable")
    p.add_argument("--figures-only", action="store_true",
                   help="redraw the figures and summary.json from --out; never simulates")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from xbarsim.experiments.repro.base import run_reproduction, write_outputs
    from xbarsim.experiments.sweeps.run import ExecutorError
    from xbarsim.experiments.sweeps.store import StoreError

    stem = args.experiment.replace("-", "_")
    out = Path(args.out) if args.out else Path(f"{stem}_{args.preset}.h5")
    figures = Path(args.figures) if args.figures else out.parent
    if args.figures_only:
        if not out.exists():
            print(f"xbarsim repro: {out} not found; --figures-only redraws from an existing results file "
                  f"(run without --figures-only first)", file=sys.stderr)
            return 2
        summary = write_outputs(args.experiment, out, figures)
        print(f"redrew the figures and {figures / 'summary.json'} from {out} "
              f"({summary['points_complete']} complete points)")
        return 0
    overrides = dict(args.options)
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    try:
        summary = run_reproduction(args.experiment, args.preset, out, figures, resume=args.resume,
                                   executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                                   progress=not args.no_progress, overrides=overrides)
    except (FileExistsError, FileNotFoundError, ValueError, StoreError, ExecutorError, OSError) as exc:
        print(f"xbarsim repro: {exc}", file=sys.stderr)
        return 2
    print(f"{args.experiment} ({args.preset}): {summary['points_complete']} points complete "
          f"({summary['wall_seconds']:.0f} s of wall time); results {out}; figures and summary.json in {figures}")
    return 0 if summary.get("status") == "complete" else 1
