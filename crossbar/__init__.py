"""Crossbar arrays: conductances + periphery (DAC; ADC or sense amp; noise, bounds), reads, pulsed updates, tiling."""
from .array import CrossbarArray
from .config import IOConfig, UpdateConfig
from .compound import TransferCompound
from .compound_config import BufferedTransferConfig, ChoppedTransferConfig, DynamicTransferConfig, TransferConfig
from . import periphery_torch
from .output_stage import OutputStage, majority, sense_amp_decisions
from .schedule import UpdateRound, update_arrays

__all__ = ["CrossbarArray", "IOConfig", "UpdateConfig", "OutputStage", "sense_amp_decisions", "majority",
           "UpdateRound", "update_arrays", "periphery_torch", "TransferCompound", "TransferConfig",
           "BufferedTransferConfig", "ChoppedTransferConfig", "DynamicTransferConfig"]
