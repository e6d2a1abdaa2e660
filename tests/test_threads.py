"""Thread safety: xbarsim changes nothing process-wide on import, and user threads may train
separate arrays at once (numba's workqueue layer aborts on concurrent parallel launches)."""
import subprocess
import sys
import threading

import numpy as np

from xbarsim.crossbar import CrossbarArray
from xbarsim.devices import SoftBounds

STEPS, BATCH, N = 50, 64, 512


def _train(seed: int) -> np.ndarray:
    arr = CrossbarArray(N, N, device=SoftBounds(), seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        x = rng.uniform(-1, 1, (BATCH, N)).astype(np.float32)
        y = arr.forward(x)
        arr.backward(y)
        arr.update(x, 0.01 * y, 0.01)
    return arr.get_weights()


def test_two_threads_train_two_512x512_arrays_concurrently_and_match_serial_runs(monkeypatch):
    from xbarsim.crossbar import kernels
    monkeypatch.setattr(kernels, "PARALLEL_MIN_PULSES", 1 << 12)  # every update's pulse phase launches numba's threads
    monkeypatch.setattr(kernels, "PARALLEL_MIN_WORK", 1 << 12)  # and so does every read's periphery
    results, errors = {}, []

    def run(seed):
        try:
            results[seed] = _train(seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(results) == {1, 2}
    for seed in (1, 2):  # counter-based randomness: concurrency changes nothing
        np.testing.assert_array_equal(results[seed], _train(seed))
        assert np.std(results[seed]) > 0  # the pulses did something


def test_import_sets_nothing_process_wide():
    code = ("import os, numba; before = numba.config.THREADING_LAYER; "
            "import xbarsim.devices, xbarsim.crossbar, xbarsim.mapping, xbarsim.training, xbarsim.experiments; "
            "assert 'OMP_WAIT_POLICY' not in os.environ, os.environ.get('OMP_WAIT_POLICY'); "
            "assert numba.config.THREADING_LAYER == before, numba.config.THREADING_LAYER; "
            "import xbarsim; s = xbarsim.configure_threads(); "
            "assert os.environ['OMP_WAIT_POLICY'] == 'PASSIVE' and s['threading_layer'] == 'workqueue'")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
