"""``xbarsim train``: in-situ training of the 784-256-128-10 MLP on crossbar arrays.

Writes one HDF5 file (``--out``) holding the full config, the per-epoch curves and
the pulse statistics, plus a checkpoint beside it (``FILE.ckpt.pt``) that
``--resume`` continues from, bit-identically.  The file is written through the
sweep store (:meth:`xbarsim.experiments.sweeps.store.SweepStore.write_group`:
the file's writer lock, signals held back, ``status`` written last) as group
``/run``: attributes ``config`` (JSON), ``seed``, ``xbarsim_version``, ``host``,
``started``, ``status`` ("running" after each epoch, then "complete" or
"failed"), ``clipped_at_programming`` (JSON per layer: cells clipped to the
device bounds when programmed) and ``clipped_fraction``; datasets ``test_acc``,
``train_loss``, ``epoch_seconds``, ``lr`` (per epoch).

A diverging run (a batch's loss not finite) stops with one line naming the epoch
and batch, exit status 1; the file records ``status = "failed"`` with the
reason in ``failure`` (and ``failed_epoch``/``failed_batch``, 1-based), and the
checkpoint of the last good epoch is kept.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import os
import socket
import sys
import time

from xbarsim.experiments.cli.assignments import parse_assignment

log = logging.getLogger(__name__)


def apply_set_overrides(params: dict, assignments: list[str]) -> dict:
    """Fold ``--set FIELD=VALUE`` items into train parameters.

    ``FIELD`` is a train field (``epochs``, ``hidden``, ...), a device field
    (``dw_min``, ``up_down``, or ``device.dw_min``), ``io.FIELD`` or ``update.FIELD``.
    """
    from xbarsim.crossbar import IOConfig, UpdateConfig
    from xbarsim.experiments.train import TrainConfig
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    io_fields = {f.name for f in dataclasses.fields(IOConfig)}
    update_fields = {f.name for f in dataclasses.fields(UpdateConfig)}
    out = copy.deepcopy(params)  # never mutate the preset tables
    for item in assignments:
        key, value = parse_assignment(item, "--set")
        if key.startswith("io."):
            if key[3:] not in io_fields:
                raise ValueError(f"--set {key}: IOConfig has no field {key[3:]!r}; known: {sorted(io_fields)}")
            out.setdefault("io_params", {})[key[3:]] = value
        elif key.startswith("update."):
            if key[7:] not in update_fields:
                raise ValueError(f"--set {key}: UpdateConfig has no field {key[7:]!r}; known: {sorted(update_fields)}")
            out.setdefault("update_params", {})[key[7:]] = value
        elif key.startswith("device."):
            out.setdefault("device_params", {})[key[7:]] = value
        elif key in train_fields:
            out[key] = value
        else:  # a device field; the device model validates the name
            out.setdefault("device_params", {})[key] = value
    return out


def register(sub: argparse._SubParsersAction) -> None:
    from xbarsim.experiments.train_presets import PRESETS
    p = sub.add_parser(
        "train",
        help="in-situ training of a 784-256-128-10 sigmoid MLP on soft-bound RRAM (the main job)",
        description="Train a 784-256-128-10 sigmoid MLP in-situ on crossbar arrays with pulsed updates, "
                    "on Fashion-MNIST (or MNIST), and write curves and pulse statistics to HDF5.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="starting configuration: default (the main job), smoke (seconds, shipped subset "
                        "sizes), aihwkit (aihwkit defaults, batch 10, lr 0.5)")
    p.add_argument("--device", default=None,
                   help="device model: SoftBounds, ConstantStep, LinearStep, ExpStep, PowStep, PiecewiseStep, "
                        "IdealDevice")
    p.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="assignments",
                   help="override any field: device (dw_min=0.002 up_down=0.3), io.FIELD, update.FIELD, "
                        "or a train field (hidden=[300,100])")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="initial learning rate")
    p.add_argument("--seed", type=int, default=0)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fp", action="store_true", help="floating-point baseline (no arrays)")
    mode.add_argument("--hwa", action="store_true", help="hardware-aware training, evaluated on programmed arrays")
    p.add_argument("--dataset", choices=("fashion-mnist", "mnist"), default=None)
    p.add_argument("--data-dir", default=None, help="directory holding the IDX files")
    p.add_argument("--out", default=os.path.join("runs", "train.h5"), help="HDF5 result file")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint beside --out")
    p.add_argument("--json", action="store_true", help="print one final JSON line (config, accuracy, seconds)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _collect_params(args: argparse.Namespace) -> dict:
    from xbarsim.experiments.train_presets import PRESETS
    params = copy.deepcopy(PRESETS[args.preset])
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("device", "device"),
                      ("dataset", "dataset"), ("data_dir", "data_dir")):
        value = getattr(args, flag)
        if value is not None:
            params[key] = value
    if args.fp:
        params["fp"] = True
    if args.hwa:
        params["hwa"] = True
    return apply_set_overrides(params, args.assignments)


def _write_h5(path: str, config: dict, seed: int, history: dict, status: str, extra: dict) -> None:
    import numpy as np

    from xbarsim.experiments.provenance import xbarsim_version
    from xbarsim.experiments.sweeps.store import SweepStore
    attrs = {"config": json.dumps(config, sort_keys=True), "seed": seed, "xbarsim_version": xbarsim_version(),
             "host": socket.gethostname()}
    for k, v in extra.items():
        attrs[k] = v if not isinstance(v, (dict, list)) else json.dumps(v, default=float)
    datasets = {key: np.asarray(history.get(key, []), dtype=np.float64)
                for key in ("test_acc", "train_loss", "epoch_seconds", "lr")}
    SweepStore(path).write_group("run", datasets, attrs, status)


def _clipping_attrs(clipping: dict) -> dict:
    clipped = sum(v["clipped"] for v in clipping.values())
    cells = sum(v["cells"] for v in clipping.values())
    return {"clipped_at_programming": clipping, "clipped_fraction": clipped / cells if cells else 0.0}


def run(args: argparse.Namespace) -> int:
    from xbarsim.experiments.sweeps.store import StoreError
    from xbarsim.experiments.train import TrainConfig, TrainingDiverged, run_train
    try:
        params = _collect_params(args)
        config = TrainConfig.from_dict(params)
    except (ValueError, TypeError) as exc:
        print(f"xbarsim train: {exc}", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"xbarsim train: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(out_dir, exist_ok=True)
        if os.path.isdir(args.out):
            raise IsADirectoryError(f"--out {args.out} is a directory; give a file name such as {args.out}/train.h5")
        if not os.access(out_dir, os.W_OK):
            raise PermissionError(f"--out {args.out}: cannot write in {out_dir}")
    except OSError as exc:
        print(f"xbarsim train: cannot write the results file: {exc}", file=sys.stderr)
        return 2
    ckpt = args.out + ".ckpt.pt"
    if not args.resume:
        for stale in (args.out, ckpt):
            if os.path.exists(stale):
                os.remove(stale)
    started = time.time()
    mode = "floating point" if config.fp else ("hardware-aware" if config.hwa else f"in-situ on {config.device}")
    print(f"xbarsim train: {mode}, {config.epochs} epochs, batch {config.batch_size}, lr {config.lr} "
          f"({config.lr_schedule}), seed {args.seed}", file=sys.stderr)

    if not config.fp:  # the float baseline compiles no kernels; hwa does not use the in-situ MLP loop
        from xbarsim.experiments.compile_notice import KERNEL_MODULES, announce_compilation
        announce_compilation(KERNEL_MODULES[:1] if config.hwa else KERNEL_MODULES)

    def on_epoch(epoch: int, history: dict) -> None:
        print(f"epoch {epoch + 1:3d}/{config.epochs}  test_acc {history['test_acc'][-1]:.4f}  "
              f"train_loss {history['train_loss'][-1]:.4f}  {history['epoch_seconds'][-1]:.1f} s",
              file=sys.stderr, flush=True)
        _write_h5(args.out, config.to_dict(), args.seed, history, "running", {"started": started})

    try:
        result = run_train(config, seed=args.seed, progress=not args.no_progress, checkpoint_path=ckpt,
                           resume=args.resume, on_epoch=on_epoch)
    except TrainingDiverged as exc:
        kept = (f"the checkpoint of epoch {exc.last_good_epoch + 1} is kept in {ckpt}"
                if exc.last_good_epoch is not None and os.path.exists(ckpt) else "no checkpoint was written")
        print(f"xbarsim train: stopped: {exc}; {kept}; recorded as failed in {args.out}", file=sys.stderr)
        finished = time.time()
        try:
            _write_h5(args.out, config.to_dict(), args.seed, exc.history, "failed",
                      {"started": started, "finished": finished, "wall_s": finished - started, "failure": str(exc),
                       "failed_epoch": exc.epoch + 1, "failed_batch": exc.batch + 1})
        except (StoreError, OSError) as err:
            print(f"xbarsim train: cannot record the failure in {args.out}: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError, StoreError) as exc:  # a missing dataset, a bad file, a full disk
        print(f"xbarsim train: {exc}", file=sys.stderr)
        return 2
    finished = time.time()
    try:
        _write_h5(args.out, config.to_dict(), args.seed, result, "complete",
                  {"started": started, "finished": finished, "wall_s": finished - started,
                   "data_source": result["data_source"], "pulses": result["pulses"],
                   "reference": result["reference"], **_clipping_attrs(result["clipped_at_programming"])})
    except (StoreError, OSError) as exc:
        print(f"xbarsim train: cannot write the results file: {exc}", file=sys.stderr)
        return 2
    print(f"final test accuracy {result['final_test_acc']:.4f}; results in {args.out}", file=sys.stderr)
    if args.json:
        print(json.dumps({"config": config.to_dict(), "seed": args.seed, "test_acc": result["test_acc"],
                          "epoch_seconds": result["epoch_seconds"], "data_source": result["data_source"]}))
    return 0
