"""Sweep tasks: what one sweep point runs, and which parameters it accepts.

A *task* is a run function plus a parameter schema::

    run_fn(params: dict, seed: int) -> dict

The returned dict maps metric names to JSON-able scalars (``float``, ``int``,
``bool``, ``str``) or 1-D numeric sequences (curves, e.g. per-epoch accuracy).
The sweep store writes each one as a dataset of the point's group.

The schema decides which ``params`` a task accepts. Unknown keys, wrong types
and out-of-range values raise ``ValueError`` naming the key, the value and the
allowed range, so a bad spec fails before any work starts. A schema may be

* a :class:`ParamSchema` (a mapping of names to :class:`Param`),
* a plain mapping ``{name: Param | {"type":, "low":, "high":, "choices":,
  "default":, "required":} | (type, low, high)}``,
* a config dataclass type (validated by constructing it, e.g. ``TrainConfig``),
* any callable ``validate(params) -> dict | None`` that raises ``ValueError``.

Tasks are looked up by name (:func:`get_task`) or, for tasks living outside
the package, by import path ``"package.module:attribute"`` where the
attribute is a :class:`Task` (or a run function with a ``param_schema``
attribute). Built-in tasks import their heavy dependencies lazily, so listing
or validating a spec never imports torch.

Nested parameters: a schema whose parameter is itself a table (e.g. the train
task's ``device_params``) reports it through ``is_nested(name)``; a spec can
then set or sweep ``device_params.dw_min`` and the run function receives
``{"device_params": {"dw_min": ...}}``.

Which tasks exist: this module names none.  A domain module registers its own
(:func:`register_task`, or :func:`register_lazy_task` so that listing tasks imports
nothing heavy); ``xbarsim.experiments`` imports :mod:`xbarsim.experiments.tasks`
when it is first imported, which registers ``train`` and ``pulse_response``.  Any
process that imports this module (a CLI, a Dask worker, a test) imports the
``xbarsim.experiments`` package first, so ``get_task("train")`` works there too.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any


__all__ = [
    "Param",
    "ParamSchema",
    "Task",
    "register_task",
    "register_lazy_task",
    "get_task",
    "task_names",
    "as_schema",
    "check_param_name",
    "did_you_mean",
]

RunFn = Callable[[dict, int], dict]

_TYPES: dict[str, type] = {"float": float, "int": int, "bool": bool, "str": str}


def did_you_mean(name: str, allowed) -> str:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- schema
@dataclasses.dataclass(frozen=True)
class Param:
    """One task parameter: its type and allowed values.

    ``low``/``high`` bound numbers (inclusive unless ``low_open``/``high_open``);
    ``choices`` lists the allowed values of any type. An ``int`` given for a
    ``float`` parameter is accepted and converted; a ``bool`` is never a number.
    """

    type: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    default: Any = None
    required: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.type not in _TYPES.values():
            raise ValueError(f"Param.type = {self.type!r} is not supported; allowed: float, int, bool, str")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"Param.low = {self.low} must be <= Param.high = {self.high}")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))

    def allowed(self, name: str) -> str:
        """Human-readable allowed range, e.g. ``0 < dw_min <= 1``."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.low is None and self.high is None:
            return f"any {self.type.__name__}"
        lo = "" if self.low is None else f"{self.low:g} {'<' if self.low_open else '<='} "
        hi = "" if self.high is None else f" {'<' if self.high_open else '<='} {self.high:g}"
        return f"{lo}{name}{hi}"

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` (converted int -> float where asked) or raise ``ValueError``."""
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (isinstance(value, bool) and t is not bool) or not isinstance(value, t):
            raise ValueError(
                f"parameter {name!r} = {value!r} has type {type(value).__name__}; "
                f"expected {t.__name__} ({self.allowed(name)})"
            )
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"parameter {name!r} = {value!r} is not allowed; allowed: {self.allowed(name)}")
            return value
        if t in (int, float):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"parameter {name!r} = {value!r} is not finite; allowed: {self.allowed(name)}")
            too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
            too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
            if too_low or too_high:
                raise ValueError(f"parameter {name!r} = {value!r} is out of range; allowed: {self.allowed(name)}")
        return value


class ParamSchema:
    """A named set of :class:`Param`; validates a whole params dict.

    ``check_all`` (optional) is called with the full, default-filled dict for
    constraints between parameters (e.g. ``w_min < w_max``).
    """

    def __init__(self, params: Mapping[str, Param], check_all: Callable[[dict], None] | None = None):
        self.params = dict(params)
        self.check_all = check_all

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.params)

    def is_nested(self, name: str) -> bool:
        return False

    def check_value(self, name: str, value: Any) -> Any:
        if name not in self.params:
            raise ValueError(
                f"unknown parameter {name!r}{did_you_mean(name, self.params)}; allowed: {', '.join(sorted(self.params))}"
            )
        return self.params[name].check(name, value)

    def validate(self, params: Mapping[str, Any]) -> dict:
        out = {k: self.check_value(k, v) for k, v in params.items()}
        for name, p in self.params.items():
            if name not in out:
                if p.required:
                    raise ValueError(f"missing required parameter {name!r} ({p.allowed(name)})")
                out[name] = p.default
        if self.check_all is not None:
            self.check_all(out)
        return out

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "ParamSchema":
        params = {}
        for name, spec in mapping.items():
            if isinstance(spec, Param):
                params[name] = spec
            elif isinstance(spec, Mapping):
                spec = dict(spec)
                spec.setdefault("low", spec.pop("min", None))
                spec.setdefault("high", spec.pop("max", None))
                if isinstance(spec.get("type"), str):
                    spec["type"] = _TYPES[spec["type"]]
                params[name] = Param(**spec)
            elif isinstance(spec, tuple) and 1 <= len(spec) <= 3:
                params[name] = Param(*spec)
            else:
                raise ValueError(f"schema entry {name!r} = {spec!r} is not a Param, a dict or a (type, low, high) tuple")
        return cls(params)


class _DataclassSchema:
    """Validates params by constructing a config dataclass (its ``__post_init__`` checks ranges)."""

    def __init__(self, cls: type):
        self.cls = cls
        self.fields = {f.name: f for f in dataclasses.fields(cls)}

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.fields))

    def is_nested(self, name: str) -> bool:
        f = self.fields.get(name)
        return f is not None and "dict" in str(f.type).lower()

    def check_value(self, name: str, value: Any) -> Any:
        check_param_name(name, self.fields, self.is_nested)
        return value

    def validate(self, params: Mapping[str, Any]) -> dict:
        for k, v in params.items():
            self.check_value(k, v)
        from_dict = getattr(self.cls, "from_dict", None)
        try:
            from_dict(dict(params)) if callable(from_dict) else self.cls(**params)
        except TypeError as exc:
            raise ValueError(f"{self.cls.__name__}: {exc}") from exc
        return dict(params)  # the run function gets the params as written; the config only checks them


def check_param_name(name: str, known, is_nested: Callable[[str], bool]) -> None:
    """``name`` (maybe dotted, ``device_params.dw_min``) must start with a known parameter."""
    head, dot, _ = name.partition(".")
    if head not in known or (dot and not is_nested(head)):
        raise ValueError(
            f"unknown parameter {name!r}{did_you_mean(name, known)}; allowed: {', '.join(sorted(known))}"
        )


class _FieldsSchema(_DataclassSchema):
    """A mapping of ``dataclasses.Field`` (e.g. ``{f.name: f for f in fields(Config)}``):
    names and nesting are known, values are checked by the task itself."""

    def __init__(self, fields: Mapping[str, dataclasses.Field]):
        self.cls = None
        self.fields = dict(fields)

    def validate(self, params: Mapping[str, Any]) -> dict:
        for k, v in params.items():
            self.check_value(k, v)
        return dict(params)


class _CallableSchema:
    """Wraps ``validate(params) -> dict | None``; no per-key knowledge."""

    keys: tuple[str, ...] = ()

    def __init__(self, fn: Callable[[dict], Any]):
        self.fn = fn

    def is_nested(self, name: str) -> bool:
        return True

    def check_value(self, name: str, value: Any) -> Any:
        return value

    def validate(self, params: Mapping[str, Any]) -> dict:
        out = self.fn(dict(params))
        return dict(params) if out is None else dict(out)


def as_schema(obj: Any):
    """Normalise any accepted schema form (see module docstring) to an object with
    ``keys``, ``check_value(name, value)`` and ``validate(params) -> dict``."""
    if obj is None:
        raise ValueError("a task needs a param_schema (a ParamSchema, mapping, config dataclass or callable)")
    if hasattr(obj, "validate") and hasattr(obj, "check_value"):
        return obj
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, dataclasses.Field) for v in obj.values()):
            return _FieldsSchema(obj)
        return ParamSchema.from_mapping(obj)
    if isinstance(obj, type) and dataclasses.is_dataclass(obj):
        return _DataclassSchema(obj)
    if callable(obj):
        return _CallableSchema(obj)
    raise ValueError(f"param_schema = {obj!r} is not a ParamSchema, mapping, config dataclass or callable")


# --------------------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class Task:
    """A named run function and its parameter schema (see module docstring)."""

    name: str
    run_fn: RunFn
    param_schema: Any

    def __post_init__(self) -> None:
        if not callable(self.run_fn):
            raise ValueError(f"Task {self.name!r}: run_fn = {self.run_fn!r} is not callable")
        object.__setattr__(self, "param_schema", as_schema(self.param_schema))

    def validate(self, params: Mapping[str, Any]) -> dict:
        return self.param_schema.validate(params)


_REGISTRY: dict[str, Task] = {}
_LAZY: dict[str, Callable[[], Task]] = {}


def register_task(name: str, run_fn: RunFn, param_schema: Any, *, replace: bool = False) -> Task:
    """Register ``run_fn`` under ``name``; returns the :class:`Task`.

    Note that a task registered at run time in the client only is not known to
    worker processes by name; the sweep ships the run function itself to the
    workers, so it must be importable there (a module-level function).
    """
    if not replace and (name in _REGISTRY or name in _LAZY):
        raise ValueError(f"task {name!r} is already registered; pass replace=True to override")
    task = Task(name, run_fn, param_schema)
    _LAZY.pop(name, None)
    _REGISTRY[name] = task
    return task


def register_lazy_task(name: str, loader: Callable[[], Task]) -> None:
    """Register a task whose module is imported only on first :func:`get_task`."""
    _LAZY[name] = loader


def task_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


def _import_task(ref: str) -> Task:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"task = {ref!r}: an import path must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"task = {ref!r}: cannot import module {module_name!r} ({exc})") from exc
    obj = getattr(module, attr, None)
    if isinstance(obj, Task):
        return obj
    if callable(obj) and getattr(obj, "param_schema", None) is not None:
        return Task(ref, obj, obj.param_schema)
    raise ValueError(
        f"task = {ref!r}: {module_name}.{attr} is "
        f"{'missing' if obj is None else type(obj).__name__}; expected a Task "
        "(or a run function with a param_schema attribute)"
    )


def get_task(name: str) -> Task:
    """The task called ``name`` (registry name or ``module:attribute`` path)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"task = {name!r} must be a non-empty string")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _LAZY:
        task = _LAZY[name]()
        _REGISTRY[name] = task
        del _LAZY[name]
        return task
    if ":" in name:
        return _import_task(name)
    raise ValueError(
        f"unknown task {name!r}{did_you_mean(name, task_names())}; known tasks: {', '.join(task_names())} "
        "(or give an import path 'package.module:attribute')"
    )
