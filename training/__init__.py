"""xbarsim.training: how analog networks learn.

``AnalogSGD`` trains in-situ layers with pulsed updates; ``convert_to_hwa`` /
``program`` do hardware-aware training for inference; ``MLPStep`` is the
autograd-free training step of an analog MLP (bit-identical, faster), whose
``train_batches`` runs a whole run of batches in one compiled call
(:mod:`xbarsim.training.mlp_loop`).
"""
from .analog_sgd import AnalogSGD
from .fused_step import MLPStep
from .hwa import HWAConv2d, HWALinear, convert_to_hwa, hwa_read, program

__all__ = ["AnalogSGD", "MLPStep", "HWALinear", "HWAConv2d", "convert_to_hwa", "program", "hwa_read"]
