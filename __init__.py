"""xbarsim: an analog in-memory-computing crossbar simulator.

Everything imports under this one name::

    from xbarsim.devices import SoftBounds
    from xbarsim.crossbar import CrossbarArray
    from xbarsim.mapping import AnalogLinear
    from xbarsim.training import AnalogSGD

The subpackages live in the repository's top-level folders (``devices/``,
``crossbar/``, ``mapping/``, ``training/``, ``experiments/``); ``pyproject.toml``
maps them under ``xbarsim.``.  Importing xbarsim changes nothing process-wide:
thread settings are made only by :func:`configure_threads`, which the ``xbarsim``
command line calls and a library user may call.
"""
from __future__ import annotations

import os
import threading

__all__ = ["__version__", "configure_threads", "parallel_region_lock"]

try:
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("xbarsim")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

#: Held around every launch of a numba parallel region by xbarsim.  numba's
#: ``workqueue`` threading layer is not thread-safe: two Python threads that launch
#: parallel regions at the same time abort the whole process ("Terminating:
#: Nested parallel kernel launch detected" / "concurrent access").  With the lock,
#: concurrent users of separate arrays serialise only their parallel launches; the
#: serial (``nogil``) kernels still run side by side.
parallel_region_lock = threading.RLock()


def configure_threads(threads: int | None = None, threading_layer: str = "workqueue",
                      omp_wait_policy: str = "PASSIVE") -> dict:
    """Process-wide thread settings for fast numba + torch work on small machines.

    * ``OMP_WAIT_POLICY=PASSIVE`` (unless already set): torch's OpenMP threads
      otherwise spin after every matmul and take the cores from the numba update
      that follows.  It takes effect only before torch loads OpenMP.
    * numba's threading layer (unless ``NUMBA_THREADING_LAYER`` is set): the
      ``workqueue`` layer was measured ~10x faster than OpenMP's spinning threads
      on a 2-core machine.  It is not thread-safe; xbarsim guards its own parallel
      launches with :data:`parallel_region_lock`.
    * ``threads``: numba's and torch's thread counts, if given.

    Returns the settings in force.  Call it once, early (the ``xbarsim`` CLI does).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", omp_wait_policy)
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = threading_layer
    if threads is not None:
        if threads < 1:
            raise ValueError(f"configure_threads: threads must be >= 1, got {threads}")
        import torch

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(threads)
    return {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "threading_layer": numba.config.THREADING_LAYER,
            "numba_threads": numba.get_num_threads()}
