"""The built-in device models, one module each, gathered under one import.

Each model is one class in its own module and registers itself by subclassing
:class:`xbarsim.devices.base.DeviceConfig`; see :mod:`xbarsim.devices.base` for what a model
brings (its compiled step, d2d sampler and symmetry point).  This module only re-exports them.
"""
from .base import DeviceConfig, PulsedDevice, device_from_name, device_names
from .constant_step import ConstantStep
from .exp_step import ExpStep
from .ideal import IdealDevice
from .linear_step import LinearStep
from .piecewise_step import PiecewiseStep
from .pow_step import PowStep
from .soft_bounds import SoftBounds

__all__ = ["DeviceConfig", "PulsedDevice", "IdealDevice", "ConstantStep", "LinearStep", "SoftBounds", "ExpStep",
           "PowStep", "PiecewiseStep", "device_from_name", "device_names"]
