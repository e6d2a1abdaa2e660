"""In-situ LeNet-5, xbarsim against aihwkit run live, each at its best thread setting.

What is measured: aihwkit's LeNet-5 example network (conv 1->16 k5, tanh, max-pool 2,
conv 16->32 k5, tanh, max-pool 2, fc 512->128, tanh, fc 128->10, log-softmax), the
same float initial weights on both sides (``torch.manual_seed``), every layer analog on
the default SoftBounds device and default IO, batch 10, SGD lr 0.1 (xbarsim
``AnalogSGD`` through ``loss.backward()``; aihwkit ``AnalogSGD``), on the first
``--train-samples`` Fashion-MNIST training images in file order (pixels / 255).  The time
is the training loop alone, after a warm-up of 100 images on a throw-away model; the
test accuracy over the first 1000 test images is printed beside it as a sanity check.

Threads: each side runs at every setting of ``--xbarsim-threads`` / ``--aihwkit-threads``
(default 1 and 2) every round, in alternation, and the faster setting of each side in a
round is the one compared (aihwkit's batch-10 steps are about twice as fast on one
thread as on two on a 2-core host).

    python benchmarks/bench_lenet_epoch.py [--rounds 3] [--train-samples 5000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _compare


def measure_xbarsim(args: argparse.Namespace, threads: int) -> dict:
    import xbarsim

    xbarsim.configure_threads(threads)
    import torch
    from torch import nn

    from xbarsim.devices import SoftBounds
    from xbarsim.experiments.data.datasets import load_dataset
    from xbarsim.mapping import AnalogConfig, convert_to_analog
    from xbarsim.training import AnalogSGD

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _aihwkit_worker import lenet5  # the network only (torch): the worker imports aihwkit lazily

    data = load_dataset("fashion-mnist", flatten=False)  # pixels / 255, float32, (N, 1, 28, 28)
    n = args.train_samples
    xs, ys = data.train_images[:n].contiguous(), data.train_labels[:n]

    def build():
        model = convert_to_analog(lenet5(args.seed), AnalogConfig(device=SoftBounds()), seed=args.seed)
        return model, AnalogSGD(model.parameters(), lr=0.1)

    def train(model, opt, x, y):
        loss_fn, total = nn.NLLLoss(), 0.0
        for k in range(0, len(y), 10):
            opt.zero_grad()
            loss = loss_fn(model(x[k:k + 10]), y[k:k + 10])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * min(10, len(y) - k)
        return total / len(y)

    model, opt = build()
    train(model, opt, xs[:100], ys[:100])  # compiles / loads the kernels outside the timed loop
    model, opt = build()
    t0 = time.perf_counter()
    loss = train(model, opt, xs, ys)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        acc = float((model(data.test_images[:1000]).argmax(1) == data.test_labels[:1000]).float().mean())
    return {"side": "xbarsim", "epoch_seconds": seconds, "train_loss": loss, "train_samples": n, "test_acc": acc,
            "threads": {"numba_threads": threads, "torch_threads": torch.get_num_threads()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--xbarsim-threads", default="1,2", metavar="T1,T2")
    ap.add_argument("--aihwkit-threads", default="1,2", metavar="T1,T2")
    _compare.add_common_arguments(ap, rounds=3)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(measure_xbarsim(args, args.threads or 1)))
        return
    started = _compare.now_utc()
    settings = {side: [int(t) for t in getattr(args, f"{side}_threads").split(",")] for side in ("xbarsim", "aihwkit")}
    host = _compare.describe_host(max(settings["xbarsim"]))
    sides = {}
    for t in settings["xbarsim"]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(t),
               "--train-samples", str(args.train_samples), "--seed", str(args.seed)]
        sides[f"xbarsim@{t}"] = (lambda c, e: (lambda r: _compare.run_json(c, e)))(cmd, _compare.thread_environment(t))
    aihwkit = None if args.no_aihwkit else _compare.probe_aihwkit(args.aihwkit_python)
    if aihwkit is not None and aihwkit.available:
        from xbarsim.experiments.data.datasets import find_dataset
        lookup = find_dataset("fashion-mnist", None)
        if not lookup.found:
            print("aihwkit: not compared: no full Fashion-MNIST copy found for its worker")
        else:
            files = {role: str(path) for role, path in lookup.files.items()}
            for t in settings["aihwkit"]:
                params = {"files": files, "seed": args.seed, "train_samples": args.train_samples, "threads": t}
                side = _compare.aihwkit_side(aihwkit, "lenet", params, _compare.thread_environment(t),
                                             note=f"; {t} thread(s)")
                if side is not None:
                    sides[f"aihwkit@{t}"] = side
    print(f"{args.rounds} round(s), alternating {' / '.join(sides)}:")
    rounds, error = _compare.alternate(args.rounds, sides)
    for r in rounds:
        for prog in ("xbarsim", "aihwkit"):
            tried = {k: v for k, v in r.items() if k.startswith(prog + "@") and not k.endswith("_wall_s")}
            if tried:
                best = min(tried, key=lambda k: tried[k]["epoch_seconds"])
                r[prog], r[f"{prog}_best_threads"] = tried[best], int(best.split("@")[1])
        line = f"round {r['round'] + 1}: " + ", ".join(
            f"{k} {v['epoch_seconds']:.1f} s (acc {v['test_acc']:.3f})" for k, v in r.items()
            if "@" in k and not k.endswith("_wall_s"))
        print(line)
    summary: dict = {}
    if rounds and all("aihwkit" in r for r in rounds):
        summary["speedup"] = _compare.speedup(rounds, "epoch_seconds", "lower")
        print(_compare.format_speedup(f"LeNet-5, {args.train_samples} images, aihwkit best / xbarsim best "
                                      "(target >= 3x)", summary["speedup"]))
    _compare.finish("bench_lenet_epoch", args, max(settings["xbarsim"]), aihwkit, rounds, summary, started, error,
                    host)


if __name__ == "__main__":
    main()
