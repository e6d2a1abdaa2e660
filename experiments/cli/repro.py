"""``xbarsim repro EXPERIMENT``: reproduce a paper's figures.

Each experiment is a module under ``experiments/`` listed in :data:`EXPERIMENTS`;
it provides ``PRESETS``, ``run_experiment(preset, out, figures_dir, resume,
workers, data_dir, epochs, progress) -> summary`` and
``draw_figures(h5_path, figures_dir)`` / ``write_summary(h5_path, path)``, which
redraw from its HDF5 file without simulating.  Adding an experiment is one line
here.

Examples::

    xbarsim repro zero-shifting --preset smoke --out /tmp/zs.h5
    xbarsim repro zero-shifting --preset paper --out results/zs.h5 --figures results/ --workers 2
    xbarsim repro zero-shifting --out results/zs.h5 --resume          # continue an interrupted run
    xbarsim repro zero-shifting --out results/zs.h5 --figures-only    # redraw from the file
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# experiment name -> module implementing it
EXPERIMENTS = {
    "zero-shifting": "xbarsim.experiments.repro.zero_shifting",
}
PRESET_NAMES = ("smoke", "paper")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "repro", help="reproduce a paper's figures (HDF5 results, PNG/PDF figures, summary.json)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which paper's experiment")
    p.add_argument("--preset", choices=PRESET_NAMES, default="paper",
                   help="smoke: seconds, for tests; paper: the full sweep (default)")
    p.add_argument("--out", default=None, metavar="FILE.h5",
                   help="HDF5 results file (default: <experiment>_<preset>.h5 in the current directory)")
    p.add_argument("--figures", default=None, metavar="DIR",
                   help="where figures and summary.json go (default: the directory of --out)")
    p.add_argument("--resume", action="store_true",
                   help="continue an existing --out file: complete points are skipped")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help=f"parallel worker processes (default: os.cpu_count() = {os.cpu_count()})")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where MNIST / Fashion-MNIST files are")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--figures-only", action="store_true",
                   help="redraw the figures and summary.json from --out; never simulates")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    module = importlib.import_module(EXPERIMENTS[args.experiment])
    stem = args.experiment.replace("-", "_")
    out = Path(args.out) if args.out else Path(f"{stem}_{args.preset}.h5")
    figures = Path(args.figures) if args.figures else out.parent
    if args.figures_only:
        if not out.exists():
            print(f"xbarsim repro: {out} not found; --figures-only redraws from an existing results file "
                  f"(run without --figures-only first)", file=sys.stderr)
            return 2
        summary = module.write_summary(out, figures / "summary.json")
        paths = module.draw_figures(out, figures)
        print(f"redrew {len(paths)} figure files and {figures / 'summary.json'} from {out} "
              f"({summary['points_complete']} complete points)")
        return 0
    if args.preset not in module.PRESETS:
        print(f"xbarsim repro {args.experiment}: preset {args.preset!r} is unknown; choose one of "
              f"{sorted(module.PRESETS)}", file=sys.stderr)
        return 2
    try:
        summary = module.run_experiment(args.preset, out, figures, resume=args.resume, workers=args.workers,
                                        data_dir=args.data_dir, epochs=args.epochs,
                                        progress=not args.no_progress)
    except (FileExistsError, ValueError, FileNotFoundError) as exc:
        print(f"xbarsim repro: {exc}", file=sys.stderr)
        return 2
    print(f"{args.experiment} ({args.preset}): {summary['points_complete']} points complete in "
          f"{summary['wall_seconds']:.0f} s; results {out}; figures and summary.json in {figures}")
    return 0 if summary.get("status") == "complete" else 1
