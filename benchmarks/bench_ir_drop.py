"""IR-drop network solve of a 256 x 256 array for a batch of 100 inputs, as a ratio to a plain read.

The exact network solve (:class:`xbarsim.crossbar.ir_drop.ResistiveCrossbar`)
reduces the ``2 R C``-node resistive network to its port transfer matrix once
per programming; a batch read is then one float64 product.  Timed, in
alternation so that host load hits all alike (medians of ``--repeats``):

* ``read``: a plain read of the same batch through ``CrossbarArray.forward`` with
  perfect IO (a float32 matmul through the array's read path);
* ``matmul``: a bare float32 numpy matmul of the same shape;
* ``solve``: the network solve's per-batch read (``column_currents``).

Printed beside them, timed once: the per-programming setup (the transfer matrix)
and scipy's direct ``spsolve`` of the full nodal system for the same batch
(factor + solve), with the two solutions' largest relative difference.  The
issue's target is solve <= 20x read.  Nothing is asserted.

    python benchmarks/bench_ir_drop.py [--size 256] [--batch 100] [--repeats 20] [--blas-threads 1]

``--blas-threads`` sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` before numpy
loads (default 1: on a shared 2-core host, threaded BLAS was measured up to 20x
slower for these sizes).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--r-wire", type=float, default=1e-4, help="wire segment resistance / cell on-resistance")
    ap.add_argument("--r-source", type=float, default=1e-3)
    ap.add_argument("--r-load", type=float, default=1e-3)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--skip-direct", action="store_true", help="skip the (slow) direct spsolve")
    args = ap.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)

    import numpy as np
    import scipy.sparse.linalg as spla

    import xbarsim
    xbarsim.configure_threads()
    from xbarsim.crossbar import CrossbarArray, IOConfig
    from xbarsim.crossbar.ir_drop import ResistiveCrossbar, WireParasitics, network_matrix

    n, b = args.size, args.batch
    rng = np.random.default_rng(0)
    g = rng.uniform(0.01, 1.0, (n, n))                   # conductances in units of g_on
    v = rng.uniform(-1.0, 1.0, (b, n))                    # drive voltages in units of the read voltage
    par = WireParasitics(args.r_wire, args.r_source, args.r_load)

    t = time.perf_counter()
    xbar = ResistiveCrossbar(g, par)
    t_setup = time.perf_counter() - t

    arr = CrossbarArray(rows=n, cols=n, io=IOConfig(perfect=True), seed=0)
    arr.set_weights(g.T.astype(np.float32))              # forward(x) = x @ W.T: rows of W are the columns here
    v32 = v.astype(np.float32)
    g32 = g.astype(np.float32)
    arr.forward(v32), v32 @ g32, xbar.column_currents(v)  # warm-up
    t_read, t_mm, t_solve = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        arr.forward(v32)
        t_read.append(time.perf_counter() - t)
        t = time.perf_counter()
        v32 @ g32
        t_mm.append(time.perf_counter() - t)
        t = time.perf_counter()
        i_solve = xbar.column_currents(v)
        t_solve.append(time.perf_counter() - t)
    read, mm, solve = (statistics.median(x) for x in (t_read, t_mm, t_solve))
    ideal_dev = np.abs(i_solve - v @ g).max() / np.abs(v @ g).max()
    print(f"IR drop, {n} x {n} array, batch {b}, r_wire/R_on {par.r_wire:g}, r_source {par.r_source:g}, "
          f"r_load {par.r_load:g}; BLAS threads {args.blas_threads}; {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"  plain read (CrossbarArray.forward, perfect IO, float32) {read * 1e3:8.3f} ms")
    print(f"  bare float32 matmul                                     {mm * 1e3:8.3f} ms")
    print(f"  network solve per batch (transfer matrix, float64)      {solve * 1e3:8.3f} ms  "
          f"ratio to read {solve / read:5.2f}x (target <= 20x), to matmul {solve / mm:5.2f}x")
    print(f"  network setup once per programming (Kron reduction)     {t_setup * 1e3:8.1f} ms "
          f"(= {t_setup / read:.0f} plain reads)")
    print(f"  IR drop at these settings: largest |I - I_ideal| / max|I_ideal| = {ideal_dev:.3g}")
    if not args.skip_direct:
        m, rhs, out = network_matrix(g, par)
        t = time.perf_counter()
        x = spla.spsolve(m, (rhs @ v.T).toarray() if hasattr(rhs @ v.T, "toarray") else rhs @ v.T)
        t_direct = time.perf_counter() - t
        i_direct = (x[out] / par.r_load).T if par.r_load > 0 else None
        diff = "n/a (r_load = 0)" if i_direct is None else \
            f"{np.abs(i_direct - i_solve).max() / np.abs(i_direct).max():.2g}"
        print(f"  direct spsolve of the {2 * n * n}-node system, same batch   {t_direct * 1e3:8.1f} ms "
              f"(ratio to read {t_direct / read:.0f}x); max rel. difference to the network solve {diff}")


if __name__ == "__main__":
    main()
