"""Engine speed, printed as ratios and rates measured on this machine.

(a) forward read of a 512x512 array, batch 256, default IO (output noise, DAC/ADC
    quantisation, abs-max noise management, iterative bound management), as a ratio
    to a plain float32 ``x @ W.T`` of the same shape (torch BLAS, same threads);
(b) one training step (forward, backward, pulsed update) of a 256x784 SoftBounds
    array, batch 100, inputs 80 % zeros and uniform in [0, 1] otherwise,
    d ~ N(0, 0.1^2), lr 0.01, in samples per second.

Timings are medians over repeats after a warm-up (the first call compiles or
loads the numba kernels).  Nothing here is asserted: speed is reported, not tested.

    python benchmarks/bench_engine.py [--repeats N] [--threads T]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


import xbarsim  # noqa: E402

xbarsim.configure_threads()  # before torch loads OpenMP
import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from xbarsim.crossbar import CrossbarArray, IOConfig  # noqa: E402
from xbarsim.devices import SoftBounds  # noqa: E402


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_forward(repeats: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(0)
    arr = CrossbarArray(512, 512, SoftBounds(), io=IOConfig(), seed=0)
    arr.set_weights(rng.uniform(-0.1, 0.1, (512, 512)).astype(np.float32))
    x = rng.uniform(-1, 1, (256, 512)).astype(np.float32)
    w = torch.from_numpy(arr.get_weights())
    xt = torch.from_numpy(x)
    t_plain = median_time(lambda: xt @ w.T, repeats)
    t_fwd = median_time(lambda: arr.forward(x), repeats)
    return t_fwd / t_plain, t_fwd, t_plain


def bench_train_step(repeats: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    arr = CrossbarArray(256, 784, SoftBounds(), seed=0)
    arr.set_weights(rng.uniform(-0.1, 0.1, (256, 784)).astype(np.float32))
    x = rng.uniform(0, 1, (100, 784)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0.0
    d = rng.normal(0, 0.1, (100, 256)).astype(np.float32)
    pulses = []

    def step():
        arr.forward(x)
        arr.backward(d)
        pulses.append(arr.update(x, d, 0.01))

    t = median_time(step, repeats)
    return 100 / t, float(np.mean(pulses)) / 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="numba and torch threads (default: all cores)")
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numba {numba.__version__} ({numba.config.THREADING_LAYER} layer, {numba.get_num_threads()} threads), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    ratio, t_fwd, t_plain = bench_forward(args.repeats)
    print(f"(a) forward 512x512, batch 256, default IO: {t_fwd * 1e3:.2f} ms vs plain x@W.T {t_plain * 1e3:.2f} ms "
          f"-> ratio {ratio:.2f}x  (target <= 3x)")
    rate, pulses_per_sample = bench_train_step(max(5, args.repeats // 3))
    print(f"(b) training step 256x784 SoftBounds, batch 100: {rate:,.0f} samples/s "
          f"({pulses_per_sample:,.0f} pulses per sample; target >= 8,000 samples/s)")


if __name__ == "__main__":
    main()
