"""Monte Carlo evaluation speed of the CorrectNet-style experiment, printed as ratios.

Times ``evaluate_mc`` of LeNet-5 over the 10,000 Fashion-MNIST test images (the shipped
subset's test images repeated when the full set is missing) for 20 chips with
lognormal variation (σ = 0.5), read noise (σ_r = 0.06) and an 8-bit ADC, and divides
it by 20 plain torch evaluations of the same network and data (same batch size,
same threads).  The two are run in alternation, ``--repeats`` times each, and the
ratio of the medians is printed.  The target is at most 3x.  Nothing is asserted.

MC evaluation is the RL placement's inner loop.  Per chip the weights are drawn
once (vectorised torch ops); each batch then pays one extra max-pool (the
receptive-field full scale), one ``randn`` and a few in-place element-wise ops per
analog layer output.

    python benchmarks/bench_correctnet_mc.py [--repeats N] [--threads T] [--chips K]
"""
from __future__ import annotations

import argparse
import statistics
import time

import xbarsim

xbarsim.configure_threads()  # before torch loads OpenMP
import torch  # noqa: E402

from xbarsim.experiments.data.datasets import load_dataset  # noqa: E402
from xbarsim.experiments.repro.correctnet import build_model  # noqa: E402
from xbarsim.mapping.nonideal import (ADCQuantization, LognormalVariation, Nonideality, ReadNoise,  # noqa: E402
                                      accuracy, evaluate_mc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as configured)")
    ap.add_argument("--chips", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=2500)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bundle = load_dataset("fashion-mnist", flatten=False)
    images, labels = bundle.test_images, bundle.test_labels
    if len(labels) < 10_000:
        reps = -(-10_000 // len(labels))
        images, labels = images.repeat(reps, 1, 1, 1)[:10_000], labels.repeat(reps)[:10_000]
    model = build_model("lenet5", seed=0).eval()
    nid = Nonideality(lognormal=LognormalVariation(0.5), read=ReadNoise(0.06), adc=ADCQuantization(bits=8))

    def plain() -> None:
        for _ in range(args.chips):
            accuracy(model, images, labels, args.batch_size)

    def mc() -> None:
        evaluate_mc(model, (images, labels), nid, n_samples=args.chips, seed=0, batch_size=args.batch_size)

    plain()
    mc()  # warm-up
    t_plain, t_mc = [], []
    for _ in range(args.repeats):
        for fn, out in ((plain, t_plain), (mc, t_mc)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    p, m = statistics.median(t_plain), statistics.median(t_mc)
    print(f"LeNet-5, {len(labels)} images, {args.chips} chips, batch {args.batch_size}, "
          f"{torch.get_num_threads()} torch threads, data: {bundle.source}")
    print(f"  {args.chips} plain torch evaluations:   {p:8.2f} s (median of {args.repeats})")
    print(f"  {args.chips}-chip MC (lognormal + read noise + ADC): {m:8.2f} s")
    print(f"  ratio MC / plain: {m / p:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
