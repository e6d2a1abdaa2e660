"""Crossbar arrays: conductances + periphery (DAC, ADC, noise, bounds), reads, pulsed updates, tiling."""
from .array import CrossbarArray
from .config import IOConfig, UpdateConfig
from .schedule import UpdateRound, update_arrays

__all__ = ["CrossbarArray", "IOConfig", "UpdateConfig", "UpdateRound", "update_arrays"]
