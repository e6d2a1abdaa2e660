"""The one line announcing kernel compilation: printed on a cold numba cache, not on a warm one."""
import os
import subprocess
import sys
from pathlib import Path

import numba

from xbarsim.experiments import compile_notice

REPO = Path(__file__).resolve().parents[1]


def test_cold_means_no_index_file_of_some_kernel_module_where_numba_looks(tmp_path, monkeypatch):
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert compile_notice.kernel_cache_is_cold()
    modules = [__import__(name, fromlist=["_"]) for name in compile_notice.KERNEL_MODULES]
    for module in modules[:-1]:
        folder = compile_notice.kernel_cache_dir(module)
        assert folder.parent == tmp_path
        (folder / f"{Path(module.__file__).stem}.f-1.py311.nbi").write_bytes(b"")
    assert compile_notice.kernel_cache_is_cold()  # the last module has none yet
    folder = compile_notice.kernel_cache_dir(modules[-1])
    (folder / f"{Path(modules[-1].__file__).stem}.f-1.py311.nbi").write_bytes(b"")
    assert not compile_notice.kernel_cache_is_cold()


def test_train_announces_compilation_on_a_cold_cache_only(tmp_path):
    """Two `xbarsim train --preset smoke` runs sharing a fresh NUMBA_CACHE_DIR: the first compiles
    (about a minute) and says so once; the second finds the cache warm and does not."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "xbarsim.experiments.cli", "train", "--preset", "smoke", "--no-progress",
            "--out", str(tmp_path / "t.h5"), "--set", "epochs=1", "train_subset=100", "test_subset=50"]
    runs = [subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    cold, warm = (run.stderr.splitlines() for run in runs)
    assert cold.count(compile_notice.NOTICE) == 1
    assert compile_notice.NOTICE not in warm
