"""``convert_to_analog``: put the ``nn.Linear`` / ``nn.Conv2d`` layers of a model on crossbars.

Configuration lookup for each converted module, first match wins:

1. ``overrides[name]`` -- the dotted name as in ``model.named_modules()``;
2. ``overrides[type(module)]`` -- the exact class, e.g. ``nn.Conv2d``;
3. the default ``config``.

An override value of ``None`` keeps that module digital (useful for grouped /
depthwise convolutions, which analog layers do not support, or for a
first/last layer kept in floating point).
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Mapping, Optional, Union

from torch import nn

from .config import AnalogConfig
from .layers import AnalogConv2d, AnalogLinear

__all__ = ["convert_to_analog", "replace_layers"]

log = logging.getLogger(__name__)

OverrideKey = Union[str, type]
Builder = Callable[[nn.Module, AnalogConfig, int], nn.Module]


def _check_overrides(model: nn.Module, overrides: Mapping, convertible: tuple) -> None:
    names = {name for name, _ in model.named_modules()}
    for key, value in overrides.items():
        if isinstance(key, str):
            if key not in names:
                raise ValueError(f"overrides: module name {key!r} is not in the model "
                                 f"(names are as in model.named_modules())")
        elif isinstance(key, type):
            if key not in convertible:
                raise ValueError(f"overrides: type {key.__name__} is not converted here; "
                                 f"convertible types: {[t.__name__ for t in convertible]}")
        else:
            raise ValueError(f"overrides: keys must be module names (str) or types, got {key!r}")
        if value is not None and not isinstance(value, AnalogConfig):
            raise ValueError(f"overrides[{key!r}] must be an AnalogConfig or None (keep digital), got {value!r}")


def replace_layers(model: nn.Module, builders: Dict[type, Builder], config: Optional[AnalogConfig],
                   overrides: Optional[Mapping[OverrideKey, Optional[AnalogConfig]]] = None,
                   seed: int = 0) -> nn.Module:
    """Replace, in place, every module whose exact type is a key of ``builders``.

    ``builders[type](module, config, seed) -> new module``.  The config is
    resolved per module (name > type > ``config``; ``None`` keeps the module),
    and the k-th replaced module (in ``named_modules`` order) gets seed
    ``seed + k``.  A module reachable under several names is replaced once and
    everywhere.  Returns ``model``, or the new module if ``model`` itself is
    replaced.  Used by :func:`convert_to_analog` and by ``xbarsim.training.hwa``.
    """
    overrides = dict(overrides or {})
    _check_overrides(model, overrides, tuple(builders))
    replacements: Dict[int, nn.Module] = {}
    k = 0
    for name, module in model.named_modules():
        build = builders.get(type(module))
        if build is None or id(module) in replacements:
            continue
        if name in overrides:
            cfg = overrides[name]
        elif type(module) in overrides:
            cfg = overrides[type(module)]
        else:
            cfg = config
        if cfg is None and (name in overrides or type(module) in overrides):
            log.debug("keeping %s (%s) digital", name or "<root>", type(module).__name__)
            continue
        replacements[id(module)] = build(module, cfg, seed + k)
        k += 1
    if id(model) in replacements:
        return replacements[id(model)]
    for parent in model.modules():
        for child_name, child in list(parent._modules.items()):
            if child is not None and id(child) in replacements:
                setattr(parent, child_name, replacements[id(child)])
    return model


def _build_analog_linear(module: nn.Linear, config: AnalogConfig, seed: int) -> AnalogLinear:
    return AnalogLinear.from_digital(module, config, seed)


def _build_analog_conv(module: nn.Conv2d, config: AnalogConfig, seed: int) -> AnalogConv2d:
    if module.groups != 1:
        raise ValueError(f"convert_to_analog: {module} has groups={module.groups}; analog convolutions support "
                         f"groups=1 only -- keep it digital with overrides={{'<its name>': None}}")
    return AnalogConv2d.from_digital(module, config, seed)


def convert_to_analog(model: nn.Module, config: Optional[AnalogConfig] = None,
                      overrides: Optional[Mapping[OverrideKey, Optional[AnalogConfig]]] = None,
                      seed: int = 0) -> nn.Module:
    """Replace every ``nn.Linear`` and ``nn.Conv2d`` (exact types, recursively) by analog layers.

    Parameters
    ----------
    model:
        Converted **in place**; the (same) model is returned.  If ``model``
        is itself an ``nn.Linear``/``nn.Conv2d`` the new layer is returned.
    config:
        Default :class:`AnalogConfig` (``AnalogConfig()`` if ``None``).
    overrides:
        ``{name or type: AnalogConfig or None}``; name beats type beats
        default; ``None`` keeps the module digital.  Unknown names raise
        ``ValueError``.
    seed:
        The k-th converted layer gets array seed ``seed + k``.

    Weights and biases are copied (programmed) into the arrays; weights
    outside a cell's bounds are clipped and a warning is logged.  Subclasses
    of ``nn.Linear`` (e.g. the ``out_proj`` of ``nn.MultiheadAttention``,
    whose weight is read directly) are left alone.
    """
    config = AnalogConfig() if config is None else config
    if not isinstance(config, AnalogConfig):
        raise ValueError(f"config must be a xbarsim.mapping.AnalogConfig, got {config!r}")
    return replace_layers(model, {nn.Linear: _build_analog_linear, nn.Conv2d: _build_analog_conv},
                          config, overrides, seed)
