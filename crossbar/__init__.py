"""Crossbar arrays: conductances + periphery (DAC, ADC, noise, bounds), reads, pulsed updates, tiling."""
from .array import CrossbarArray
from .config import IOConfig, UpdateConfig

__all__ = ["CrossbarArray", "IOConfig", "UpdateConfig"]
