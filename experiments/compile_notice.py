"""One line before numba compiles the kernels on a cold cache (a minute of silence otherwise).

numba keeps each ``cache=True`` kernel as an index file
``<module>.<function>-<line>.py<XY>.nbi`` (plus ``.nbc`` data) in the directory
its cache locator picks for the kernel's source file: under ``NUMBA_CACHE_DIR``
(``<dir name>_<sha1 of the dir path>``) when that is set, else ``__pycache__``
beside the source if writable, else the user-wide cache directory.

Heuristic: the cache is *cold* when, for any of the kernel modules a command
will use (default :data:`KERNEL_MODULES`: every array read goes through
``crossbar/kernels.py``, the in-situ MLP loop through ``training/mlp_loop.py``;
``devices/kernels.py``'s pulse code is compiled into those and gets no index of
its own in a training run), that directory holds no index file of that module.
A cold cache is then announced once per process with :data:`NOTICE` on stderr.
A partly warm cache (a kernel never compiled before, or the renamed
specialisations that ``xbarsim.devices.kernels.specialise`` builds after a
kernel source changed) is not detected: those compile without the line.  Where the directory cannot be
determined, the line is printed (a spurious line costs less than a silent minute).
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

__all__ = ["KERNEL_MODULES", "NOTICE", "kernel_cache_dir", "kernel_cache_is_cold", "announce_compilation"]

KERNEL_MODULES = ("xbarsim.crossbar.kernels", "xbarsim.training.mlp_loop")
NOTICE = "xbarsim: compiling kernels (first run only, about a minute)"
_announced = False


def kernel_cache_dir(module: types.ModuleType) -> Path | None:
    """The directory numba caches ``module``'s kernels in (None if it cannot tell)."""
    from numba.core.caching import CacheImpl  # numba's own locator order

    source = module.__file__
    candidates = (getattr(v, "py_func", v) for v in vars(module).values())  # jitted kernels by their source
    func = next((f for f in candidates if isinstance(f, types.FunctionType) and f.__code__.co_filename == source),
                None)
    if func is None:
        return None
    for locator_class in CacheImpl._locator_classes:
        try:
            locator = locator_class.from_function(func, source)
        except Exception:  # a locator that does not apply here
            continue
        if locator is not None:
            return Path(locator.get_cache_path())
    return None


def kernel_cache_is_cold(modules: tuple = KERNEL_MODULES) -> bool:
    """Whether one of ``modules`` (import names) has no cache index in the directory numba would use."""
    for name in modules:
        module = importlib.import_module(name)
        folder = kernel_cache_dir(module)
        if folder is None or not any(folder.glob(f"{Path(module.__file__).stem}.*.nbi")):
            return True
    return False


def announce_compilation(modules: tuple = KERNEL_MODULES) -> bool:
    """Print :data:`NOTICE` to stderr if the cache of ``modules`` is cold (once per process); return whether it did."""
    global _announced
    if _announced or not kernel_cache_is_cold(modules):
        return False
    _announced = True
    print(NOTICE, file=sys.stderr, flush=True)
    return True
