"""Prints the aihwkit pulse counts that ``tests/test_compound.py`` checks against; run with aihwkit 1.2.0's python.

    ~/.cache/aihwkit-1.2.0/bin/python tests/aihwkit_transfer_reference.py

The fast matrix A is set through the hidden parameters, then 37 updates with ``x = d = 0``
leave A alone and run only the transfers (one column per sample).  With ``desired_bl = 1``
and both update managements off, aihwkit's transfer write pulses with probability 1, so
the counts are deterministic.
"""
import numpy as np
import torch
from aihwkit.nn import AnalogLinear
from aihwkit.simulator.configs import (BufferedTransferCompound, ChoppedTransferCompound, ConstantStepDevice,
                                       DynamicTransferCompound, IOParameters, UnitCellRPUConfig)

A = np.array([[0.013, -0.027, 0.051, 0.002], [-0.009, 0.033, -0.071, 0.018], [0.0, 0.121, -0.004, -0.044]],
             dtype=np.float32)
DEV = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                         w_min_dtod=0.0, w_max=1.0, w_min=-1.0)



def pulse_counts(compound, calls=37, batch=1, fast_scale=None):
    """C / dw_min after ``calls`` transfer-only updates of ``batch`` samples from the fast matrix A.

    ``fast_scale(k)``: if given, A is set to ``fast_scale(k) * A`` before every update ``k``.
    """
    config = UnitCellRPUConfig(device=compound)
    config.forward = IOParameters(is_perfect=True)
    layer = AnalogLinear(4, 3, bias=False, rpu_config=config)
    tile = next(layer.analog_tiles())
    layer.set_weights(torch.zeros(3, 4))
    hidden = tile.get_hidden_parameters()
    hidden["hidden_weights_0"] = torch.from_numpy(A)
    tile.set_hidden_parameters(hidden)
    tile.set_learning_rate(0.5)
    for k in range(calls):
        if fast_scale is not None:
            hidden = tile.get_hidden_parameters()
            hidden["hidden_weights_0"] = torch.from_numpy(A * np.float32(fast_scale(k)))
            tile.set_hidden_parameters(hidden)
        tile.update(torch.zeros(batch, 4), torch.zeros(batch, 3))
    return np.round(tile.get_hidden_parameters()["hidden_weights_1"].numpy() / 0.01).astype(int).tolist()


PERFECT = IOParameters(is_perfect=True)
for kind in ("buffered", "chopped"):
    for forget in (False, True):
        kw = dict(unit_cell_devices=[DEV, DEV], transfer_forward=PERFECT, transfer_every=1.0,
                  units_in_mbatch=False, transfer_lr=0.8, momentum=0.1, forget_buffer=forget)
        compound = (ChoppedTransferCompound(in_chop_prob=0.0, buffer_granularity=2.0, **kw) if kind == "chopped"
                    else BufferedTransferCompound(thres_scale=2.0, **kw))
        print(kind, forget, pulse_counts(compound))
print("regular choppers", pulse_counts(ChoppedTransferCompound(
    unit_cell_devices=[DEV, DEV], transfer_forward=PERFECT, transfer_every=1.0, units_in_mbatch=False,
    transfer_lr=0.8, momentum=0.3, in_chop_prob=0.25, in_chop_random=False), calls=61))
print("units_in_mbatch", pulse_counts(BufferedTransferCompound(
    unit_cell_devices=[DEV, DEV], transfer_forward=PERFECT, transfer_every=0.5, units_in_mbatch=True,
    transfer_lr=0.8, momentum=0.0, thres_scale=0.5), calls=13, batch=4))
for kw in (dict(in_chop_prob=0.25, tail_weightening=1.0),
           dict(in_chop_prob=0.5, forget_buffer=False, buffer_cap=1.0, momentum=0.2),
           dict(in_chop_prob=0.2, tail_weightening=2.0, experimental_correct_accumulation=True)):
    print("dynamic", kw, pulse_counts(DynamicTransferCompound(
        unit_cell_devices=[DEV, DEV], transfer_forward=PERFECT, transfer_every=1.0, units_in_mbatch=False,
        transfer_lr=3.0, **kw), calls=150, fast_scale=lambda k: [1.0, -0.5, 2.0, 0.3, -1.5][(k // 10) % 5]))

# auto_scale: running maxima and fast (count) lr after 5 batches of 3 samples (stored in the device's extra state)
rng = np.random.default_rng(0)
xs = [rng.uniform(-2, 2, (3, 4)).astype(np.float32) for _ in range(5)]
ds = [rng.uniform(-1, 1, (3, 3)).astype(np.float32) for _ in range(5)]
auto = AnalogLinear(4, 3, bias=False, rpu_config=UnitCellRPUConfig(device=ChoppedTransferCompound(
    unit_cell_devices=[ConstantStepDevice(dw_min=0.01)] * 2, auto_scale=True, auto_momentum=0.9, transfer_every=0.0)))
auto_tile = next(auto.analog_tiles())
for x, d in zip(xs, ds):
    auto_tile.update(torch.from_numpy(x), torch.from_numpy(d))
extra = auto_tile.tile.dump_extra()
print("auto_scale", {k.split(".")[-1]: extra[k] for k in extra if k.split(".")[-1] in ("m_x", "m_d", "tmp_count_lr")})

# chopper signs of the fast update: load choppers into the extra state, update with x = d = 1
chop_dev = ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                              w_min_dtod=0.0)
signed = AnalogLinear(4, 3, bias=False, rpu_config=UnitCellRPUConfig(device=ChoppedTransferCompound(
    unit_cell_devices=[chop_dev, chop_dev], in_chop_prob=0.0, transfer_every=0.0, fast_lr=0.5)))
signed_tile = next(signed.analog_tiles())
extra = signed_tile.tile.dump_extra()
extra["rpu.rpu_device.in_chopper"] = [0.0, 1.0, 0.0, 1.0]  # True = flipped
extra["rpu.rpu_device.out_chopper"] = [1.0, 0.0, 0.0]
signed_tile.tile.load_extra(extra, True)
signed_tile.update(torch.ones(5, 4), torch.ones(5, 3))
print("chopped signs", np.sign(signed_tile.get_hidden_parameters()["hidden_weights_0"].numpy()).astype(int).tolist())

# row transfers (transfer_columns=False), A rescaled every 10 samples
for compound_class, kw in ((BufferedTransferCompound, dict(thres_scale=2.0, momentum=0.1)),
                           (ChoppedTransferCompound, dict(in_chop_prob=0.25, in_chop_random=False, momentum=0.3,
                                                          auto_granularity=100.0)),
                           (DynamicTransferCompound, dict(in_chop_prob=0.25, tail_weightening=1.0))):
    print("rows", compound_class.__name__, pulse_counts(compound_class(
        unit_cell_devices=[DEV, DEV], transfer_forward=PERFECT, transfer_every=1.0, units_in_mbatch=False,
        transfer_lr=3.0, transfer_columns=False, **kw), calls=150,
        fast_scale=lambda k: [1.0, -0.5, 2.0, 0.3, -1.5][(k // 10) % 5]))
