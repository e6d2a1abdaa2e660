"""Crossbar arrays: conductances + periphery (DAC; ADC or sense amp; noise, bounds), reads, pulsed updates, tiling;
Tiki-Taka compounds (TTv2, c-TTv2, AGAD) built from two arrays and a digital buffer."""
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
