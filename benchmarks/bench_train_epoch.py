"""One in-situ training epoch of the aihwkit comparison configuration, xbarsim against aihwkit run live.

What is measured
----------------
xbarsim: the ``aihwkit`` preset for one epoch, exactly what ``xbarsim train
--preset aihwkit --epochs 1`` runs: :func:`xbarsim.experiments.train.run_train`
with ``preset_config("aihwkit", epochs=1)``: a 784-256-128-10 MLP, sigmoid
hidden units, LogSoftmax + mean NLL loss, every ``nn.Linear`` an analog layer on
aihwkit's default SoftBounds device and IO, update BL 31 with update and BL
management, digital biases, batch 10, constant lr 0.5, on all 60,000
Fashion-MNIST training images (pixels / 255), then the test accuracy over the
10,000 test images.  ``--autograd`` trains through ``loss.backward()`` and
``AnalogSGD.step()`` instead of the fused :class:`xbarsim.training.MLPStep`.

aihwkit 1.2.0 (``_aihwkit_worker.py epoch``): the same network built from the
same float ``nn.Sequential`` (same ``torch.manual_seed``, so the same initial
weights), converted by ``aihwkit.nn.conversion.convert_to_analog`` with
``SingleRPUConfig(device=SoftBoundsDevice())``, all other settings aihwkit's
defaults (which are the values above; biases digital, ``mapping.digital_bias``;
no weight remapping, ``weight_scaling_omega=0``), trained with
``aihwkit.optim.AnalogSGD(lr=0.5)``, batch 10, on the same images in the same
order (the worker reads the IDX files that xbarsim's loader finds, and draws the
epoch permutation and any subset as xbarsim does).  Both split the 784-input
layer over two physical arrays (aihwkit ``mapping.max_input_size=512``: tiles of
392 + 392 inputs; xbarsim ``tile_cols=512``: 512 + 272).

The *epoch time* on both sides is the wall time of the training loop alone
(gathering the epoch's permuted data, then every batch's forward, backward and
update), as ``run_train`` reports it in ``epoch_seconds``; loading the data,
building the model and the test evaluation are outside it.  Each side first
warms up on a throw-away model (200 training samples, 100 test images), so numba
compilation or cache loading and first allocations are outside the timed epoch.

How
---
``--rounds`` rounds (default 3); each starts a fresh xbarsim subprocess (this
interpreter, this script with ``--worker``) and a fresh aihwkit subprocess,
alternating which goes first (see ``_compare.py``).  The report gives each
round's epoch seconds and test accuracy for both, the median over rounds of the
per-round speed-up (aihwkit epoch seconds / xbarsim epoch seconds) and its
min-max range.  Threads: xbarsim gets ``--threads`` T (default: all usable cores) numba
threads (``run_train`` itself runs torch with 1 thread during training: its
torch work is batch-sized).  aihwkit runs once per setting of
``--aihwkit-threads`` (default 1 and 2: its torch and OMP/OpenBLAS threads) in
every round, and the faster of the round is the one compared: aihwkit's
batch-10 epoch is about twice as fast with 1 thread as with 2 on a 2-core host.  Each side reports its settings.  Without aihwkit only
xbarsim's absolute figures are printed.  The xbarsim side also records pulses
per sample and the host's dependent-load latency over 64 MB before and after its
epoch (a rough indicator of memory load from other tenants).

    python benchmarks/bench_train_epoch.py [--rounds 3] [--train-subset N] [--test-subset N]
        [--threads T] [--seed S] [--autograd] [--aihwkit-python PATH] [--no-aihwkit] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numba

import _compare

#: what the aihwkit worker rebuilds; if the preset moves away from it, the comparison is refused
AIHWKIT_MIRRORS = {"device": "SoftBounds", "device_params": {}, "io_params": {}, "update_params": {},
                   "activation": "sigmoid", "fp": False, "hwa": False, "reference": "none",
                   "dataset": "fashion-mnist"}


def epoch_config(args: argparse.Namespace):
    from xbarsim.experiments.train import preset_config
    return preset_config("aihwkit", epochs=1, train_subset=args.train_subset, test_subset=args.test_subset)


# ------------------------------------------------------------------ xbarsim worker
@numba.njit(cache=True)
def _chase(nxt, n):
    p = 0
    for _ in range(n):
        p = nxt[p]
    return p


def memory_latency_ns(mbytes: int = 64, loads: int = 2_000_000) -> float:
    """Mean latency of dependent random loads over ``mbytes`` (a pointer chase), in ns."""
    import numpy as np
    n = mbytes * 1024 * 1024 // 8
    perm = np.random.default_rng(0).permutation(n)
    nxt = np.empty(n, dtype=np.int64)
    nxt[perm] = np.roll(perm, -1)
    _chase(nxt, 10)
    t = time.perf_counter()
    _chase(nxt, loads)
    return (time.perf_counter() - t) / loads * 1e9


def measure_xbarsim(args: argparse.Namespace, threads: int) -> dict:
    import xbarsim

    settings = xbarsim.configure_threads(threads)  # before torch loads OpenMP
    import numpy as np
    import torch

    import xbarsim.experiments.train as train

    if args.autograd:
        train.MLPStep.build = staticmethod(lambda *a, **k: None)
    config = epoch_config(args).to_dict()
    warm = dict(config, train_subset=200, test_subset=100)  # compiles/loads the kernels outside the timed epoch
    train.run_train(warm, seed=args.seed)
    lat_before = memory_latency_ns()
    out = train.run_train(config, seed=args.seed)
    lat_after = memory_latency_ns()
    pulses = sum(layer["pulse_total"] for layer in out["pulses"].values())
    samples = next(iter(out["pulses"].values()))["updates"]
    return {"side": "xbarsim", "measurement": "epoch", "loop": "autograd" if args.autograd else "MLPStep",
            "epoch_seconds": out["epoch_seconds"][0], "test_acc": out["test_acc"][0],
            "train_loss": out["train_loss"][0], "train_samples": samples, "pulses_per_sample": pulses / samples,
            "ns_per_pulse": out["epoch_seconds"][0] / pulses * 1e9, "data_source": out["data_source"],
            "data_is_subset": out["data_is_subset"], "memory_latency_ns": [lat_before, lat_after],
            "versions": {"xbarsim": xbarsim.__version__, "torch": torch.__version__, "numba": numba.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]},
            "threads": {"numba_threads": numba.get_num_threads(), "numba_layer": settings["threading_layer"],
                        "torch_threads": torch.get_num_threads(), "torch_threads_in_training": 1,
                        "OMP_WAIT_POLICY": settings["OMP_WAIT_POLICY"],
                        **{k: os.environ.get(k) for k in _compare.THREAD_VARIABLES}}}


# ------------------------------------------------------------------ driver
def aihwkit_params(args: argparse.Namespace, threads: int) -> tuple[dict | None, str]:
    """The worker's parameters (data files, network, schedule), or None and why the preset cannot be mirrored."""
    from xbarsim.experiments.data.datasets import dataset_spec, find_dataset

    config = epoch_config(args)
    d = config.to_dict()
    differs = {k: d[k] for k, v in AIHWKIT_MIRRORS.items() if d[k] != v}
    if differs or config.lr_schedule not in ("constant", "step"):
        return None, (f"the aihwkit preset now sets {differs}, which _aihwkit_worker.py does not mirror; "
                      "update the worker before comparing")
    lookup = find_dataset(config.dataset, config.data_dir)
    params = {"seed": args.seed, "hidden": list(config.hidden), "lr": config.lr,  # epoch 0: the schedule's first lr
              "batch_size": config.batch_size, "train_subset": config.train_subset,
              "test_subset": config.test_subset, "threads": threads}
    if lookup.found:
        params["files"] = {role: str(path) for role, path in lookup.files.items()}
        where = str(lookup.directory)
    else:  # xbarsim falls back to its shipped subset; so does the worker
        params["npz"] = str(dataset_spec(config.dataset).subset_path)
        where = f"the shipped subset {params['npz']} (no full copy found)"
    return params, where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-subset", type=int, default=0, help="train on N images only, for quick checks "
                    "(default 0: the full 60,000)")
    ap.add_argument("--test-subset", type=int, default=0, help="test on N images only (default 0: all 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--autograd", action="store_true", help="xbarsim: the autograd loop instead of MLPStep")
    ap.add_argument("--aihwkit-threads", default="1,2", metavar="T1,T2",
                    help="aihwkit's thread settings, each run every round; the faster one of the round is compared "
                         "(default 1,2: OMP/OpenBLAS/torch threads 1 and 2)")
    _compare.add_common_arguments(ap, rounds=3)
    args = ap.parse_args()
    threads = args.threads or _compare.default_threads()
    aihwkit_settings = [int(t) for t in args.aihwkit_threads.split(",") if t.strip()]
    if not aihwkit_settings or min(aihwkit_settings) < 1:
        ap.error(f"--aihwkit-threads takes thread counts >= 1 separated by commas, got {args.aihwkit_threads!r}")
    if args.worker:
        print(json.dumps(measure_xbarsim(args, threads)))
        return

    started = _compare.now_utc()
    aihwkit = None if args.no_aihwkit else _compare.probe_aihwkit(args.aihwkit_python)
    env = _compare.thread_environment(threads)
    xbarsim_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads),
                   *_compare.worker_arguments(args, ("train_subset", "test_subset", "seed", "autograd"))]
    sides = {"xbarsim": lambda r: _compare.run_json(xbarsim_cmd, env)}
    host = _compare.describe_host(threads)
    worker_params = None
    if aihwkit is not None and aihwkit.available:
        worker_params, where = aihwkit_params(args, threads)
    if worker_params is None and aihwkit is not None and aihwkit.available:
        aihwkit.available, aihwkit.reason = False, where
        print(f"aihwkit: not compared: {where}")
    else:
        for t in aihwkit_settings:
            params_t = None if worker_params is None else dict(worker_params, threads=t)
            side = _compare.aihwkit_side(aihwkit, "epoch", params_t, _compare.thread_environment(t),
                                         note=(f"; {t} thread(s)" + (f"; data: {where}" if worker_params else "")))
            if side is not None:
                sides[f"aihwkit@{t}"] = side
    print(f"{args.rounds} round(s), alternating {' / '.join(sides)}:")
    rounds, error = _compare.alternate(args.rounds, sides)
    for r in rounds:  # aihwkit's best thread setting of the round is the one compared
        tried = {k: v for k, v in r.items() if k.startswith("aihwkit@") and not k.endswith("_wall_s")}
        if tried:
            best = min(tried, key=lambda k: tried[k]["epoch_seconds"])
            r["aihwkit"] = tried[best]
            r["aihwkit_best_threads"] = int(best.split("@")[1])

    summary: dict = {"xbarsim_epoch_seconds": _compare.values(rounds, "xbarsim", "epoch_seconds"),
                     "xbarsim_test_acc": _compare.values(rounds, "xbarsim", "test_acc")}
    for r in rounds:
        x = r["xbarsim"]
        line = (f"round {r['round'] + 1} (order {' then '.join(r['order'])}): xbarsim {x['epoch_seconds']:.1f} s "
                f"({x['train_samples']} samples, {x['pulses_per_sample']:,.0f} pulses/sample, "
                f"test acc {x['test_acc']:.4f})")
        if "aihwkit" in r:
            a = r["aihwkit"]
            line += (f"; aihwkit {a['epoch_seconds']:.1f} s at its best, {r['aihwkit_best_threads']} thread(s) "
                     f"(test acc {a['test_acc']:.4f})"
                     f" -> {a['epoch_seconds'] / x['epoch_seconds']:.2f}x")
        print(line)
    if any(k.startswith("aihwkit@") for k in sides) and rounds:
        summary["aihwkit_epoch_seconds"] = _compare.values(rounds, "aihwkit", "epoch_seconds")
        summary["aihwkit_test_acc"] = _compare.values(rounds, "aihwkit", "test_acc")
        summary["epoch_speedup"] = _compare.speedup(rounds, "epoch_seconds", "lower")
        print(_compare.format_speedup("epoch, aihwkit seconds / xbarsim seconds (target >= 5x)",
                                      summary["epoch_speedup"]))
        xa, aa = summary["xbarsim_test_acc"], summary["aihwkit_test_acc"]
        print(f"test accuracy: xbarsim median {xa['median']:.4f}, aihwkit median {aa['median']:.4f}")
    elif rounds:
        s = summary["xbarsim_epoch_seconds"]
        print(f"xbarsim epoch: median {s['median']:.1f} s (range {s['min']:.1f}-{s['max']:.1f} s); "
              "no aihwkit, so no ratio")
    _compare.finish("bench_train_epoch", args, threads, aihwkit, rounds, summary, started, error, host,
                    extra={"aihwkit_worker_params": worker_params})


if __name__ == "__main__":
    main()
