"""The fields of every pulsed device model, as sweep-task parameters (aihwkit names)."""
from __future__ import annotations

import dataclasses

__all__ = ["pulsed_device_fields"]


def pulsed_device_fields() -> dict[str, type]:
    """Every field of every pulsed device model -> its Python type (from the defaults)."""
    import xbarsim.devices

    out: dict[str, type] = {}
    for name in xbarsim.devices.device_names():
        dev = xbarsim.devices.device_from_name(name)
        if isinstance(dev, xbarsim.devices.PulsedDevice):
            for f in dataclasses.fields(dev):
                out[f.name] = type(getattr(dev, f.name))
    return out
