"""Projected in-situ epoch time of the aihwkit comparison configuration, split by phase.

Runs ``--batches`` batches of the ``aihwkit`` preset (784-256-128-10 sigmoid MLP,
SoftBounds defaults, batch 10, lr 0.5) on Fashion-MNIST and reports, per batch,
the time in forward+backward (reads, autograd, Python) and in the optimizer step
(pulsed updates), then the projected 60,000-sample epoch as a ratio to aihwkit
1.2.0's 62 s measured on the 2-core machine.  Medians are not used: an epoch is a
sum, so this reports totals over the measured batches after a warm-up.

    python benchmarks/bench_train_epoch.py [--batches N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import devices  # noqa: E402,F401  (first: passive OpenMP waiting before torch loads)
import torch  # noqa: E402
from torch import nn  # noqa: E402

from experiments.train import build_model, load_train_data, make_optimizer, preset_config  # noqa: E402

AIHWKIT_EPOCH_S = 62.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=600)
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = preset_config("aihwkit")
    data = load_train_data(config)
    model, _ = build_model(config, seed=0)
    opt = make_optimizer(model, config)
    loss_fn = nn.NLLLoss()
    bs = config.batch_size
    t_fb = t_step = 0.0
    warm = 100
    for b in range(warm + args.batches):
        xs = data.x_train[b * bs:(b + 1) * bs]
        ys = data.y_train[b * bs:(b + 1) * bs]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xs), ys).backward()
        t1 = time.perf_counter()
        opt.step()
        t2 = time.perf_counter()
        if b >= warm:
            t_fb += t1 - t0
            t_step += t2 - t1
    n = args.batches
    per_batch = (t_fb + t_step) / n
    epoch = per_batch * len(data.y_train) / bs
    print(f"per batch of {bs}: forward+backward {t_fb / n * 1e3:.2f} ms, pulsed update {t_step / n * 1e3:.2f} ms")
    print(f"projected epoch ({len(data.y_train)} samples): {epoch:.1f} s = {epoch / AIHWKIT_EPOCH_S:.2f}x aihwkit's "
          f"{AIHWKIT_EPOCH_S:.0f} s (target <= 0.25x)")


if __name__ == "__main__":
    main()
