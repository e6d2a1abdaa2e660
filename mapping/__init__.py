"""xbarsim.mapping: how a DNN is placed on crossbar arrays.

``AnalogLinear`` / ``AnalogConv2d`` are drop-in ``nn.Linear`` / ``nn.Conv2d``
backed by one :class:`xbarsim.crossbar.CrossbarArray` each; ``convert_to_analog``
swaps them into an existing model; ``AnalogConfig`` says how a layer is placed,
including its array provider (one array per layer, or a shared ``ArrayBank``).
``BasisNet`` / ``BasisNModel`` are the BasisN-style global-basis mapping, and
:mod:`xbarsim.mapping.basis_schedule` its explicit K-array schedules.
"""
from .analog_function import AnalogMVM, PendingUpdate, clear_pending_update, pop_pending_update
from .config import AnalogConfig
from .convert import convert_to_analog, replace_layers
from .basis import BasisDecomposition, BasisNet, BasisNModel
from .basis_schedule import Schedule, basisn_schedule, conventional_schedule
from .layers import AnalogConv2d, AnalogLayer, AnalogLinear, apply_pending_updates
from .provider import (ArrayBank, ArrayProvider, BankedMatrix, LRUPlacement, OwnArray, TransferArrays,
                       provider_from_dict)
from .reference import REFERENCE_MODES, REFERENCE_PLACEMENTS, ReferenceConfig, apply_reference, program_reference

__all__ = [
    "AnalogConfig", "AnalogLayer", "AnalogLinear", "AnalogConv2d", "convert_to_analog", "replace_layers",
    "AnalogMVM", "PendingUpdate", "pop_pending_update", "clear_pending_update", "apply_pending_updates",
    "ArrayProvider", "OwnArray", "TransferArrays", "ArrayBank", "BankedMatrix", "LRUPlacement", "provider_from_dict",
    "BasisDecomposition", "BasisNet", "BasisNModel", "Schedule", "basisn_schedule", "conventional_schedule",
    "ReferenceConfig", "apply_reference", "program_reference", "REFERENCE_MODES", "REFERENCE_PLACEMENTS",
]
