"""Validation of configuration values.

Every config in xbarsim is a frozen dataclass validated in ``__post_init__``.
A bad value raises ``ValueError`` naming the field, the value and the allowed
range, so a user sweeping parameters sees at once which knob is wrong.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any


class Serialisable:
    """The one config base: ``to_dict`` / ``from_dict`` / ``replace`` for frozen config dataclasses.

    ``from_dict`` refuses unknown keys and names them, so a config stored in an
    HDF5 attribute or a checkpoint never loads half-understood.  ``replace``
    returns a copy with some fields changed, validated again by ``__post_init__``.
    """

    #: the name error messages use (default: the class name)
    config_name = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def check_keys(cls, d: dict) -> None:
        """Raise ``ValueError`` naming every key of ``d`` that is not a field."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"{cls.config_name or cls.__name__} has no field(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")

    @classmethod
    def from_dict(cls, d: dict) -> Any:
        cls.check_keys(d)
        return cls(**d)

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def tagged_dict(obj: Any) -> dict:
    """A config's fields as a plain dict with a ``type`` key naming its class (tuples stored as lists)."""
    d: dict[str, Any] = {"type": type(obj).__name__}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        d[f.name] = list(v) if isinstance(v, tuple) else v
    return d


def from_tagged_dict(registry: dict, d: dict, what: str) -> Any:
    """Inverse of :func:`tagged_dict` over ``registry`` (class name -> class); unknown types or fields raise."""
    d = dict(d)
    name = d.pop("type", None)
    if name not in registry:
        raise ValueError(f"{what} type {name!r} is unknown; choose one of {sorted(registry)}")
    cls = registry[name]
    cls.check_keys(d)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _fmt_interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if (lo_open or lo is None) else "["
    right = ")" if (hi_open or hi is None) else "]"
    lo_s = "-inf" if lo is None else repr(lo)
    hi_s = "inf" if hi is None else repr(hi)
    return f"{left}{lo_s}, {hi_s}{right}"


def require_number(owner: str, field: str, value: Any, lo: float | None = None, hi: float | None = None,
                   lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number in the interval.

    The message names ``owner.field``, the value, and the allowed interval.
    """
    interval = _fmt_interval(lo, hi, lo_open, hi_open)
    kind = "an integer" if integer else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise ValueError(f"{owner}.{field} must be {kind} in {interval}, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}.{field} must be {kind} in {interval}, got {value!r}")
    bad = (lo is not None and (value < lo or (lo_open and value == lo))) or \
          (hi is not None and (value > hi or (hi_open and value == hi)))
    if bad:
        raise ValueError(f"{owner}.{field} = {value!r} is outside the allowed range {interval}")


def require_choice(owner: str, field: str, value: Any, choices: tuple) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{owner}.{field} = {value!r} is not allowed; choose one of {list(choices)}")


def require_bool(owner: str, field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{field} must be True or False, got {value!r}")
