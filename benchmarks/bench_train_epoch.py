"""Wall time of one in-situ training epoch of the aihwkit comparison configuration.

Trains the ``aihwkit`` preset (784-256-128-10 sigmoid MLP, aihwkit's SoftBounds
device and IO defaults, batch 10, lr 0.5) for one full epoch of Fashion-MNIST
with :func:`xbarsim.experiments.train.run_train`, exactly as ``xbarsim train --preset
aihwkit --epochs 1`` does, and prints the epoch's wall time with the pulses
per sample that the time pays for.  It prints no ratio to aihwkit: on a shared
host a ratio means something only when both programs ran in alternation in the
same session, and this script does not run aihwkit.  ``--autograd`` trains through
``loss.backward()`` and ``AnalogSGD.step()`` instead of the fused
:class:`xbarsim.training.MLPStep` (same numbers, more Python per batch).  The first
call in a fresh checkout also compiles the numba kernels (about a minute); the
epoch time does not include it.

The epoch is memory-bound (the first layer's cells do not stay in cache), and
on a shared host memory performance changes with the other tenants: the same
code has taken 13 s and 21 s here.  The script also prints the host's
dependent-load latency over 64 MB before and after the epoch, a rough
indicator of that load (it does not capture bandwidth contention).

    python benchmarks/bench_train_epoch.py [--seed S] [--autograd]
"""
from __future__ import annotations

import argparse
import time


import xbarsim  # noqa: E402

xbarsim.configure_threads()  # before torch loads OpenMP
import numba  # noqa: E402
import numpy as np  # noqa: E402

from xbarsim.experiments.train import preset_config, run_train  # noqa: E402



@numba.njit(cache=True)
def _chase(nxt, n):
    p = 0
    for _ in range(n):
        p = nxt[p]
    return p


def memory_latency_ns(mbytes: int = 64, loads: int = 2_000_000) -> float:
    """Mean latency of dependent random loads over ``mbytes`` (a pointer chase), in ns."""
    n = mbytes * 1024 * 1024 // 8
    perm = np.random.default_rng(0).permutation(n)
    nxt = np.empty(n, dtype=np.int64)
    nxt[perm] = np.roll(perm, -1)
    _chase(nxt, 10)
    t = time.perf_counter()
    _chase(nxt, loads)
    return (time.perf_counter() - t) / loads * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--autograd", action="store_true", help="use the autograd loop instead of MLPStep")
    args = ap.parse_args()
    if args.autograd:
        import xbarsim.experiments.train as train
        train.MLPStep.build = staticmethod(lambda *a, **k: None)
    config = preset_config("aihwkit").to_dict()
    config["epochs"] = 1
    warm = dict(config, train_subset=200, test_subset=100)  # compiles the kernels outside the timed epoch
    run_train(warm, seed=args.seed)
    lat_before = memory_latency_ns()
    out = run_train(config, seed=args.seed)
    lat_after = memory_latency_ns()
    epoch = out["epoch_seconds"][0]
    pulses = sum(layer["pulse_total"] for layer in out["pulses"].values())
    samples = next(iter(out["pulses"].values()))["updates"]
    print(f"loop: {'autograd' if args.autograd else 'MLPStep'}, numba threads: {numba.get_num_threads()}")
    print(f"epoch ({samples} samples): {epoch:.1f} s; {pulses / samples:.0f} pulses per sample, "
          f"{epoch / pulses * 1e9:.1f} ns of wall time per pulse; test accuracy {out['test_acc'][0]:.4f}")
    print(f"host memory latency (dependent loads, 64 MB): {lat_before:.0f} ns before, {lat_after:.0f} ns after")


if __name__ == "__main__":
    main()
