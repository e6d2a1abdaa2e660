"""Sweep spec files: parse, validate, expand into points.

A spec is a TOML file::

    # which task every point runs; keys other than `name` are task options
    [task]
    name = "train"                 # registry name, or "package.module:attribute"
    preset = "smoke"               # (or simply:  task = "train")

    seed = 0                       # root seed (int >= 0), default 0
    repeats = 3                    # seeds per axis combination (int >= 1), default 1
    # seeds = [1, 2]               # or: these seeds themselves, one repeat each (not with seed/repeats)
    output = "runs/sweep.h5"       # HDF5 file; relative to the spec's directory
    description = "..."            # optional free text

    [base]                         # parameters fixed for every point
    w_max = 0.6

    [axes]                         # Cartesian product over these
    up_down = {linspace = [0.0, 0.8, 5]}     # numpy.linspace(start, stop, num)
    dw_min  = [0.0005, 0.001, 0.002]         # explicit values
    lr      = {logspace = [-3, -1, 3]}       # numpy.logspace: 10**start .. 10**stop
    # also {geomspace = [1e-3, 1e-1, 3]}     # numpy.geomspace: endpoints themselves

    [[zip]]                        # axes varied together (equal lengths): one more
    w_max = [0.6, 1.0]             # dimension of the product, not two
    w_min = [-0.6, -1.0]

Every point's parameters are ``task options | base | axis values``; a
parameter may be set in only one of them. Where the task has table-valued
parameters (``schema.is_nested``), dotted names reach inside them:
``device_params.dw_min = [...]`` in ``[axes]`` (or a ``[base.device_params]``
table) gives the task ``{"device_params": {"dw_min": ...}}``. Each point is validated against the
task's parameter schema before any work starts.

Seeds: repeat ``r`` uses ``SeedSequence([seed, r]).generate_state(1)[0] >> 1`` (31 bits,
numpy), the same for every axis combination (common random numbers across the sweep).
An explicit ``seeds`` list (e.g. a paper's published seed) is used as given instead.

A point's key is the first 16 hex digits of the sha256 of the canonical JSON
(sorted keys, no spaces) of ``{"task", "params", "seed"}``; the store uses it as
the group name, so the same point always lands in the same group.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from xbarsim.experiments.sweeps.tasks import Task, get_task

__all__ = ["SpecError", "SweepSpec", "SweepPoint", "load_spec", "parse_spec", "canonical_json", "point_key",
           "repeat_seed", "nest"]

TOP_LEVEL_KEYS = ("task", "seed", "repeats", "seeds", "output", "description", "base", "axes", "zip")
RANGE_FORMS = ("linspace", "logspace", "geomspace")
MAX_REPEATS = 100_000
MAX_SEED = 2**63 - 1


class SpecError(ValueError):
    """A malformed sweep spec; the message names the bad key or value."""


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, NaN refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def point_key(task: str, params: dict, seed: int) -> str:
    """Stable 16-hex-digit key of one point (group name in the store)."""
    blob = canonical_json({"task": task, "params": params, "seed": int(seed)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def repeat_seed(seed: int, repeat: int) -> int:
    """Seed of repeat ``repeat`` under root ``seed`` (uint32, deterministic)."""
    state = np.random.SeedSequence([int(seed), int(repeat)]).generate_state(1, dtype=np.uint32)[0]
    return int(state) >> 1  # 31 bits: every seeding API (torch, numpy, run_train) accepts it


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """One unit of work: a task's params and a seed."""

    index: int
    key: str
    task: str
    params: dict          # as written in the spec, dotted names nested (what is hashed and stored)
    axis_values: dict     # the swept subset of params, by (dotted) axis name
    repeat: int
    seed: int

    def config(self) -> dict:
        """The point's full config, stored as JSON in its group's ``config`` attribute."""
        return {"task": self.task, "params": self.params, "seed": self.seed,
                "repeat": self.repeat, "axes": self.axis_values}


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated spec. Build it with :func:`load_spec` / :func:`parse_spec`."""

    task: str
    options: dict
    base: dict
    axes: tuple          # ((name, (values...)), ...) — Cartesian
    zipped: tuple        # (((name, (values...)), ...), ...) — each group one dimension
    seed: int
    repeats: int
    output: Path
    description: str = ""
    source: str = "<spec>"
    seeds: tuple | None = None  # explicit seeds, one repeat each (instead of seed/repeats)

    @property
    def axis_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.axes) + tuple(n for g in self.zipped for n, _ in g)

    def compat(self) -> dict:
        """What must not change between runs writing to the same file.

        Axis *values*, ``repeats`` and ``seed`` may change (new points are added);
        the task, its options, the base config and the axis names may not.
        """
        return {"task": self.task, "options": self.options, "base": self.base,
                "axis_names": sorted(self.axis_names)}

    def fingerprint(self) -> str:
        return hashlib.sha256(canonical_json(self.compat()).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The expanded spec (ranges resolved), stored as the file's ``spec`` attribute."""
        seeds = {} if self.seeds is None else {"seeds": list(self.seeds)}
        return {"task": {"name": self.task, **self.options}, "seed": self.seed, "repeats": self.repeats, **seeds,
                "output": str(self.output), "description": self.description, "base": self.base,
                "axes": {n: list(v) for n, v in self.axes},
                "zip": [{n: list(v) for n, v in g} for g in self.zipped]}

    def combos(self) -> list[dict]:
        dims = [[{n: v} for v in vals] for n, vals in self.axes]
        for group in self.zipped:
            names = [n for n, _ in group]
            dims.append([dict(zip(names, vals)) for vals in zip(*(v for _, v in group))])
        return [{k: v for d in combo for k, v in d.items()} for combo in itertools.product(*dims)]

    def points(self) -> list[SweepPoint]:
        seeds = list(self.seeds) if self.seeds is not None else \
            [repeat_seed(self.seed, r) for r in range(self.repeats)]
        fixed = {**self.options, **self.base}
        out = []
        for combo in self.combos():
            params = nest({**fixed, **combo})
            for r, s in enumerate(seeds):
                out.append(SweepPoint(len(out), point_key(self.task, params, s), self.task, params, combo, r, s))
        return out


# --------------------------------------------------------------------------- parsing
def load_spec(path: str | Path, output: str | Path | None = None) -> SweepSpec:
    """Read and fully validate the spec at ``path`` (see module docstring).

    ``output`` overrides the spec's ``output`` key (relative to the current directory).
    """
    path = Path(path)
    where = f"spec {path}"
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        hint = " (a key given twice, e.g. the same axis twice in [axes], is reported this way)" \
            if "overwrite" in str(exc).lower() else ""
        raise SpecError(f"{where}: not valid TOML: {exc}{hint}") from exc
    return parse_spec(raw, base_dir=path.resolve().parent, source=str(path),
                      output=None if output is None else Path(output).resolve())


def parse_spec(raw: dict, base_dir: Path = Path("."), source: str = "<spec>",
               output: Path | None = None) -> SweepSpec:
    """Validate a spec dict (as parsed from TOML) and build a :class:`SweepSpec`."""
    where = f"spec {source}"

    def fail(msg: str) -> SpecError:
        return SpecError(f"{where}: {msg}")

    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"unknown top-level key {key!r}{hint}; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    for key in ("task", "output"):
        if key not in raw:
            raise fail(f"missing required key {key!r}")

    task_name, options = _parse_task(raw["task"], fail)
    try:
        task = get_task(task_name)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    schema = task.param_schema

    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise fail(f"seed = {seed!r} must be an integer with 0 <= seed <= 2**63-1")
    repeats = raw.get("repeats", 1)
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise fail(f"repeats = {repeats!r} must be an integer with 1 <= repeats <= {MAX_REPEATS}")

    seeds = raw.get("seeds")
    if seeds is not None:
        if "seed" in raw or "repeats" in raw:
            raise fail("give either seeds = [...] or seed/repeats, not both")
        if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) or not all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds):
            raise fail(f"seeds = {seeds!r} must be a non-empty list of distinct integers in [0, 2**31)")
        seeds, repeats = tuple(seeds), len(seeds)

    out_path = output if output is not None else _parse_output(raw["output"], base_dir, fail)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise fail(f"description = {description!r} must be a string")

    base = raw.get("base", {})
    if not isinstance(base, dict):
        raise fail(f"base = {base!r} must be a table of parameter values")
    origin: dict[str, str] = {}
    checked_options, checked_base = {}, {}
    for section, table, dest in (("task", options, checked_options), ("base", base, checked_base)):
        for name, v in _flatten(schema, section, table, fail):
            _claim(origin, name, section, fail)
            dest[name] = _check_value(schema, f"{section}.{name}", name, v, fail)

    axes_raw = raw.get("axes", {})
    if not isinstance(axes_raw, dict):
        raise fail(f"axes = {axes_raw!r} must be a table of axis-name = values")
    axes = []
    for name, spec in _flatten(schema, "axes", axes_raw, fail, axis=True):
        axes.append((name, _axis_values(schema, f"axes.{name}", name, spec, fail)))
        _claim(origin, name, "axes", fail)

    zip_raw = raw.get("zip", [])
    if isinstance(zip_raw, dict):
        zip_raw = [zip_raw]
    if not isinstance(zip_raw, list) or not all(isinstance(g, dict) for g in zip_raw):
        raise fail("zip must be an array of tables ([[zip]] sections), each a group of axes varied together")
    zipped = []
    for gi, group in enumerate(zip_raw):
        if not group:
            raise fail(f"zip[{gi}] is empty; a zipped group needs at least one axis")
        entries = []
        for name, spec in _flatten(schema, f"zip[{gi}]", group, fail, axis=True):
            entries.append((name, _axis_values(schema, f"zip[{gi}].{name}", name, spec, fail, distinct=False)))
            _claim(origin, name, f"zip[{gi}]", fail)
        lengths = {n: len(v) for n, v in entries}
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{n} has {k}" for n, k in lengths.items())
            raise fail(f"zip[{gi}]: zipped axes must have equal lengths, but {desc} values")
        rows = [canonical_json(row) for row in zip(*(v for _, v in entries))]
        if len(set(rows)) != len(rows):
            dup = next(r for r in rows if rows.count(r) > 1)
            raise fail(f"zip[{gi}]: the row {dup} appears twice; each row of a zipped group is one point")
        zipped.append(tuple(entries))

    spec = SweepSpec(task=task_name, options=checked_options, base=checked_base, axes=tuple(axes),
                     zipped=tuple(zipped), seed=seed, repeats=repeats, output=out_path,
                     description=description, source=source, seeds=seeds)
    _validate_points(task, spec, fail)
    return spec


def _parse_task(value: Any, fail) -> tuple[str, dict]:
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict):
        if "name" not in value:
            raise fail("missing required key 'task.name' (the task to run, e.g. name = \"train\")")
        options = {k: v for k, v in value.items() if k != "name"}
        return value["name"], options
    raise fail(f"task = {value!r} must be a task name or a [task] table with a 'name' key")


def _parse_output(value: Any, base_dir: Path, fail) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"output = {value!r} must be a non-empty path string")
    path = Path(value).expanduser()
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise fail(f"output = {value!r} must end in .h5 or .hdf5")
    path = (path if path.is_absolute() else base_dir / path).resolve()
    if path.is_dir():
        raise fail(f"output = {value!r} is a directory")
    return path


def _is_range(spec: Any) -> bool:
    return isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGE_FORMS


def _flatten(schema, section: str, table: dict, fail, axis: bool = False, prefix: str = ""):
    """``(dotted_name, value)`` pairs; tables recurse only under a nested parameter."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not (axis and _is_range(value)) and schema.is_nested(name.split(".")[0]):
            yield from _flatten(schema, section, value, fail, axis, f"{name}.")
        elif isinstance(value, dict) and not axis:
            raise fail(f"{section}.{name} = {value!r} must be a single value, not a table")
        else:
            yield name, value


def _claim(origin: dict, name: str, section: str, fail) -> None:
    for other, where in origin.items():
        if other == name or other.startswith(name + ".") or name.startswith(other + "."):
            sweeping = ("axes", "zip")
            what = "duplicate axis" if section.startswith(sweeping) and where.startswith(sweeping) else "parameter"
            raise fail(f"{what} {name!r}: set in [{where}] and again in [{section}]; sweep or fix it once")
    origin[name] = section


def nest(flat: dict) -> dict:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}`` (the params a task receives)."""
    out: dict = {}
    for name, value in flat.items():
        *heads, last = name.split(".")
        d = out
        for h in heads:
            d = d.setdefault(h, {})
        d[last] = value
    return out


def _check_value(schema, where: str, name: str, value: Any, fail) -> Any:
    if isinstance(value, dict):
        raise fail(f"{where} = {value!r} must be a single value, not a table")
    try:
        return schema.check_value(name, value)
    except ValueError as exc:
        raise fail(f"{where}: {exc}") from exc


def _range_values(where: str, form: str, args: Any, fail) -> list:
    if not (isinstance(args, list) and len(args) == 3):
        raise fail(f"{where} = {{{form} = {args!r}}} must be [start, stop, num]")
    start, stop, num = args
    for label, x in (("start", start), ("stop", stop)):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise fail(f"{where}: {form} {label} = {x!r} must be a finite number")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise fail(f"{where}: {form} num = {num!r} must be an integer >= 1")
    if form == "linspace":
        vals = np.linspace(start, stop, num)
    elif form == "logspace":
        vals = np.logspace(start, stop, num)
    else:
        if start == 0 or stop == 0 or (start < 0) != (stop < 0):
            raise fail(f"{where}: geomspace start = {start!r}, stop = {stop!r} must be nonzero and of one sign")
        vals = np.geomspace(start, stop, num)
    # 12 significant digits: 0.1*3 is stored as 0.3, so keys stay readable and stable
    return [float(f"{v:.12g}") for v in vals]


def _axis_values(schema, where: str, name: str, spec: Any, fail, distinct: bool = True) -> tuple:
    if isinstance(spec, dict):
        forms = [k for k in spec if k in RANGE_FORMS]
        if not _is_range(spec):
            raise fail(f"{where} = {spec!r} must be a list of values or one of "
                       f"{{linspace|logspace|geomspace = [start, stop, num]}}")
        values = _range_values(where, forms[0], spec[forms[0]], fail)
    elif isinstance(spec, list):
        values = spec
    else:
        raise fail(f"{where} = {spec!r} must be a list of values (a single value belongs in [base])")
    if not values:
        raise fail(f"{where} is empty; an axis needs at least one value")
    checked = [_check_value(schema, f"{where}[{i}]", name, v, fail) for i, v in enumerate(values)]
    if not distinct:  # a zipped axis: its rows, not its values, must be distinct
        return tuple(checked)
    seen = set()
    for v in checked:
        k = canonical_json(v)
        if k in seen:
            raise fail(f"{where} has the value {v!r} twice; axis values must be distinct")
        seen.add(k)
    return tuple(checked)


def _validate_points(task: Task, spec: SweepSpec, fail) -> None:
    """Run the task's full-schema check on every axis combination (cross-parameter rules)."""
    fixed = {**spec.options, **spec.base}
    for combo in spec.combos():
        try:
            task.validate(nest({**fixed, **combo}))
        except ValueError as exc:
            at = ", ".join(f"{k}={v!r}" for k, v in combo.items()) or "the base config"
            raise fail(f"point with {at}: {exc}") from exc
