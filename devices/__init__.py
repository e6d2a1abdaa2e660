"""Device physics: what one resistive cell does (models, d2d variation, c2c noise, kernels).

``xbarsim.devices`` imports nothing from the rest of xbarsim, and importing it
changes no process-wide setting (see :func:`xbarsim.configure_threads`).
"""
from .binary_cell import BinaryCellConfig
from .base import DeviceConfig, PulsedDevice, device_from_name, device_names
from .conductance_time import (ConductanceTimeModel, ProgrammedCells, conductance_time_model_from_dict,
                               conductance_time_model_names)
from .constant_step import ConstantStep
from .exp_step import ExpStep
from .ideal import IdealDevice
from .linear_step import LinearStep
from .piecewise_step import PiecewiseStep
from .pow_step import PowStep
from .soft_bounds import SoftBounds
from .soft_bounds_pmax import SoftBoundsPmax
from .population import nominal_num_states, sample_cells, stuck_mask
from .pcm_drift import PCMLikeDrift
from .response import pulse_response
from .rram_relaxation import RRAMRelaxation
from .rram_wan2022 import RRAMWan2022
from .symmetry import measure_symmetry_point, symmetry_point

__all__ = [
    "BinaryCellConfig",
    "DeviceConfig", "PulsedDevice", "IdealDevice", "ConstantStep", "LinearStep", "SoftBounds", "ExpStep",
    "PowStep", "PiecewiseStep", "SoftBoundsPmax", "device_from_name", "device_names", "sample_cells", "stuck_mask",
    "nominal_num_states", "symmetry_point", "measure_symmetry_point", "pulse_response",
    "ConductanceTimeModel", "ProgrammedCells", "PCMLikeDrift", "RRAMRelaxation", "RRAMWan2022",
    "conductance_time_model_from_dict", "conductance_time_model_names",
]
