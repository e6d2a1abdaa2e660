"""Deployed-array inference of the paper's BNN MLP, as a ratio to the torch BNN forward.

The 784-2048-2048-2048-10 MLP (random latent weights, BatchNorm statistics from
a few training-mode batches) is split for ``A``-row arrays and deployed on
:class:`~xbarsim.crossbar.CrossbarArray` s with 1-bit sense amplifiers and
majority merge (no ADC but at the classifier; :mod:`xbarsim.mapping.bnn_deploy`).
Both the deployed network and the eval-mode torch network classify the same
10,000 images (Fashion-MNIST's test set, or uniform noise without it), and the
logits are checked to be identical.  Reported: median times after a warm-up and
their ratio (target: deployed <= 5x torch).  Both run in this process, in
alternation, on the same threads.  Nothing is asserted.

    python benchmarks/bench_bnn_split.py [--repeats N] [--rows 512,256,128] [--images 10000]
"""
from __future__ import annotations

import argparse
import statistics
import time

import xbarsim

xbarsim.configure_threads()  # before torch loads OpenMP
import torch  # noqa: E402

from xbarsim.devices import BinaryCellConfig  # noqa: E402
from xbarsim.mapping.bnn_deploy import deploy_bnn  # noqa: E402
from xbarsim.mapping.bnn_networks import bnn_mlp  # noqa: E402
from xbarsim.mapping.bnn_split import split_network  # noqa: E402


def _images(n: int) -> torch.Tensor:
    try:
        from xbarsim.experiments.data.datasets import load_dataset
        return load_dataset("fashion-mnist").test_images[:n]
    except (FileNotFoundError, ValueError):
        return torch.rand(n, 784, generator=torch.Generator().manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", default="0,512,128", help="array rows A (0: unsplit), comma-separated")
    ap.add_argument("--images", type=int, default=10_000)
    args = ap.parse_args()
    x = _images(args.images)
    torch.manual_seed(0)
    base = bnn_mlp()
    base.train()
    with torch.no_grad():
        for i in range(3):
            base(x[i * 100:(i + 1) * 100])
    print(f"BNN MLP 784-2048-2048-2048-10, {len(x)} images, torch threads {torch.get_num_threads()}")
    for a in (int(r) for r in args.rows.split(",")):
        net = split_network(base, a or None).eval()
        dep = deploy_bnn(net, BinaryCellConfig())
        with torch.no_grad():
            same = torch.equal(dep(x), net(x))
        t_dep, t_torch = [], []
        for _ in range(args.repeats):  # alternate, so host load hits both alike
            t = time.perf_counter()
            dep(x)
            t_dep.append(time.perf_counter() - t)
            t = time.perf_counter()
            with torch.no_grad():
                net(x)
            t_torch.append(time.perf_counter() - t)
        d, tt = statistics.median(t_dep), statistics.median(t_torch)
        label = "unsplit" if a == 0 else f"A={a}"
        print(f"  {label:8s} deployed {d:6.2f} s  torch {tt:6.2f} s  ratio {d / tt:5.2f}x  "
              f"(target <= 5x; logits identical: {same}; sense-amp decisions per image "
              f"{dep.counters()['sense_amp'] // ((args.repeats + 1) * len(x))}, ADC conversions "
              f"{dep.counters()['adc']})")


if __name__ == "__main__":
    main()
