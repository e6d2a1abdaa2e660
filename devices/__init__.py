"""Device physics: what one resistive cell does (models, d2d variation, c2c noise, kernels).

``devices`` imports nothing from the rest of xbarsim.

numba's parallel kernels use the ``workqueue`` threading layer unless
``NUMBA_THREADING_LAYER`` says otherwise: on small machines the OpenMP layer's
spinning threads compete with torch's own OpenMP pool and were measured ~10x
slower on this project's 2-core CI machine.  For the same reason
``OMP_WAIT_POLICY`` defaults to ``PASSIVE``: torch's OpenMP threads otherwise spin
after every matmul and take the cores from the numba update that follows (a
training step of the engine benchmark went from 32 ms to 20 ms).  It only takes
effect if xbarsim is imported before torch.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba as _numba

if "NUMBA_THREADING_LAYER" not in _os.environ:
    _numba.config.THREADING_LAYER = "workqueue"
from .models import (ConstantStep, DeviceConfig, ExpStep, IdealDevice, LinearStep, PiecewiseStep, PowStep,
                     PulsedDevice, SoftBounds, device_from_name, device_names)
from .population import nominal_num_states, sample_cells, stuck_mask
from .response import pulse_response
from .symmetry import measure_symmetry_point, symmetry_point

__all__ = [
    "DeviceConfig", "PulsedDevice", "IdealDevice", "ConstantStep", "LinearStep", "SoftBounds", "ExpStep",
    "PowStep", "PiecewiseStep", "device_from_name", "device_names", "sample_cells", "stuck_mask",
    "nominal_num_states", "symmetry_point", "measure_symmetry_point", "pulse_response",
]
