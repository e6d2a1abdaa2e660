"""Engine speed: the forward read and the array training step, xbarsim against aihwkit run live.

What is measured
----------------
(a) **Forward read** of a 512x512 array, batch 256, default IO (7-bit DAC,
    9-bit ADC, output noise 0.06, abs-max noise management, iterative bound
    management), weights U[-0.1, 0.1], inputs U[-1, 1] (numpy generator seed 0).
    xbarsim: ``CrossbarArray(512, 512, SoftBounds()).forward(x)``; its ratio to a
    plain float32 ``x @ W.T`` of the same shape (torch, same threads) timed in the
    same process, call by call in alternation with the read.  That ratio is xbarsim's own figure (target <= 3x).  For
    information, aihwkit's forward of the same tile configuration
    (``AnalogTile(512, 512, SingleRPUConfig(device=SoftBoundsDevice()))``,
    ``joint_forward(x, is_test=True)``) and its own ratio to a matmul.
(b) **Array training step**: forward + backward + pulsed update of a 256x784
    SoftBounds array (aihwkit ``SoftBoundsDevice`` defaults on both sides: dw_min
    0.001, w = +-0.6, 30 % d2d and c2c), batch 100, inputs 80 % zeros and U[0, 1]
    otherwise, d ~ N(0, 0.1^2), lr 0.01, update BL 31 with update and BL
    management; samples per second (100 / median step time).  Both sides hold the
    256x784 matrix in **one** physical array (xbarsim ``tile_cols=784``;
    aihwkit's ``AnalogTile`` never splits), with the same weights and batch
    (numpy generator seed 1).  aihwkit: ``joint_forward``, ``backward``, ``update``
    on the tile with ``set_learning_rate(0.01)``.  xbarsim also reports pulses
    per sample.

How
---
Each round starts a fresh xbarsim subprocess (this interpreter, this script with
``--worker``) and a fresh aihwkit subprocess (``_aihwkit_worker.py engine`` in
aihwkit's interpreter), alternating which goes first (see ``_compare.py``).
Inside each, every timed function is called once untimed first (numba kernels
are compiled or loaded from the cache there), then timed ``--repeats`` times for
(a) and ``max(5, repeats // 3)`` times for (b); a round's figure is the median.
The report gives every round, and for (b) the median over rounds of the
per-round speed-up (xbarsim samples/s / aihwkit samples/s) with its min-max
range.  Threads: both sides get ``--threads`` T (default: all usable cores) for
torch, numba (xbarsim) and OpenMP/OpenBLAS (env vars); each reports what it ran
with.  Without aihwkit it prints xbarsim's absolute figures only.  Nothing is
asserted: speed is reported, not tested.

    python benchmarks/bench_engine.py [--rounds 3] [--repeats 30] [--threads T]
        [--aihwkit-python PATH] [--no-aihwkit] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import _compare


# ------------------------------------------------------------------ xbarsim worker
def measure_xbarsim(repeats: int, threads: int) -> dict:
    import xbarsim

    settings = xbarsim.configure_threads(threads)  # before torch loads OpenMP
    import numba
    import numpy as np
    import torch

    from xbarsim.crossbar import CrossbarArray, IOConfig
    from xbarsim.devices import SoftBounds

    out: dict = {}
    rng = np.random.default_rng(0)
    arr = CrossbarArray(512, 512, SoftBounds(), io=IOConfig(), seed=0)
    arr.set_weights(rng.uniform(-0.1, 0.1, (512, 512)).astype(np.float32))
    x = rng.uniform(-1, 1, (256, 512)).astype(np.float32)
    w = torch.from_numpy(arr.get_weights())
    xt = torch.from_numpy(x)
    t_plain, t_fwd, raw = _compare.paired_median_times(lambda: xt @ w.T, lambda: arr.forward(x), repeats)
    out["forward"] = {"seconds": t_fwd, "plain_matmul_seconds": t_plain, "ratio_to_matmul": t_fwd / t_plain,
                      "raw_seconds": raw}

    rng = np.random.default_rng(1)
    arr = CrossbarArray(256, 784, SoftBounds(), seed=0, tile_rows=256, tile_cols=784)
    arr.set_weights(rng.uniform(-0.1, 0.1, (256, 784)).astype(np.float32))
    xs = rng.uniform(0, 1, (100, 784)).astype(np.float32)
    xs[rng.random(xs.shape) < 0.8] = 0.0
    d = rng.normal(0, 0.1, (100, 256)).astype(np.float32)
    pulses: list[int] = []

    def step():
        arr.forward(xs)
        arr.backward(d)
        pulses.append(arr.update(xs, d, 0.01))

    t_step, raw = _compare.median_time(step, max(5, repeats // 3))
    out["step"] = {"seconds": t_step, "samples_per_s": 100 / t_step, "raw_seconds": raw,
                   "pulses_per_sample": float(np.mean(pulses)) / 100, "tiles": len(arr.tiles)}
    out.update(side="xbarsim", measurement="engine",
               versions={"xbarsim": xbarsim.__version__, "torch": torch.__version__, "numba": numba.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]},
               threads={"numba_threads": numba.get_num_threads(), "numba_layer": settings["threading_layer"],
                        "torch_threads": torch.get_num_threads(), "OMP_WAIT_POLICY": settings["OMP_WAIT_POLICY"],
                        **{k: os.environ.get(k) for k in _compare.THREAD_VARIABLES}})
    return out


# ------------------------------------------------------------------ driver
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per measurement (default 30)")
    _compare.add_common_arguments(ap, rounds=3)
    args = ap.parse_args()
    threads = args.threads or _compare.default_threads()
    if args.worker:
        print(json.dumps(measure_xbarsim(args.repeats, threads)))
        return

    started = _compare.now_utc()
    aihwkit = None if args.no_aihwkit else _compare.probe_aihwkit(args.aihwkit_python)
    env = _compare.thread_environment(threads)
    xbarsim_cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads),
                   "--repeats", str(args.repeats)]
    sides = {"xbarsim": lambda r: _compare.run_json(xbarsim_cmd, env)}
    host = _compare.describe_host(threads)
    side = _compare.aihwkit_side(aihwkit, "engine", {"repeats": args.repeats, "threads": threads}, env)
    if side is not None:
        sides["aihwkit"] = side
    print(f"{args.rounds} round(s), alternating {' / '.join(sides)}:")
    rounds, error = _compare.alternate(args.rounds, sides)

    summary: dict = {
        "xbarsim_forward_seconds": _compare.values(rounds, "xbarsim", "forward.seconds"),
        "xbarsim_forward_ratio_to_matmul": _compare.values(rounds, "xbarsim", "forward.ratio_to_matmul"),
        "xbarsim_step_samples_per_s": _compare.values(rounds, "xbarsim", "step.samples_per_s"),
    }
    for r in rounds:
        x = r["xbarsim"]
        print(f"round {r['round'] + 1} (order {' then '.join(r['order'])}):")
        print(f"  (a) forward 512x512 b256: xbarsim {x['forward']['seconds'] * 1e3:.2f} ms = "
              f"{x['forward']['ratio_to_matmul']:.2f}x its plain matmul ({x['forward']['plain_matmul_seconds'] * 1e3:.2f} ms)"
              + ("" if "aihwkit" not in r else
                 f"; aihwkit {r['aihwkit']['forward']['seconds'] * 1e3:.2f} ms = "
                 f"{r['aihwkit']['forward']['ratio_to_matmul']:.2f}x its matmul"))
        print(f"  (b) step 256x784 b100: xbarsim {x['step']['samples_per_s']:,.0f} samples/s "
              f"({x['step']['pulses_per_sample']:,.0f} pulses/sample)"
              + ("" if "aihwkit" not in r else f"; aihwkit {r['aihwkit']['step']['samples_per_s']:,.0f} samples/s"))
    if rounds:
        f = summary["xbarsim_forward_ratio_to_matmul"]
        print(f"(a) xbarsim forward / plain matmul: median {f['median']:.2f}x "
              f"(range {f['min']:.2f}-{f['max']:.2f}x; target <= 3x)")
    if "aihwkit" in sides and rounds:
        summary["aihwkit_forward_seconds"] = _compare.values(rounds, "aihwkit", "forward.seconds")
        summary["aihwkit_step_samples_per_s"] = _compare.values(rounds, "aihwkit", "step.samples_per_s")
        summary["forward_speedup"] = _compare.speedup(rounds, "forward.seconds", "lower")
        summary["step_speedup"] = _compare.speedup(rounds, "step.samples_per_s", "higher")
        print(_compare.format_speedup("(a) forward read, xbarsim speed / aihwkit speed (information)",
                                      summary["forward_speedup"]))
        print(_compare.format_speedup("(b) array step, xbarsim samples/s / aihwkit samples/s (target >= 2x against aihwkit's best thread setting; this compares at --threads only)",
                                      summary["step_speedup"]))
    elif rounds:
        s = summary["xbarsim_step_samples_per_s"]
        print(f"(b) xbarsim array step: median {s['median']:,.0f} samples/s (range {s['min']:,.0f}-{s['max']:,.0f}); "
              "no aihwkit, so no ratio")
    _compare.finish("bench_engine", args, threads, aihwkit, rounds, summary, started, error, host)


if __name__ == "__main__":
    main()
