"""Sweep specs: parsing, point expansion, and one clear error per malformed spec."""
from __future__ import annotations

import hashlib
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from xbarsim.experiments import cli
from xbarsim.experiments.sweeps.spec import SpecError, load_spec, point_key, repeat_seed
from xbarsim.experiments.sweeps.tasks import Param, ParamSchema, Task, get_task, register_lazy_task, register_task

TOY = "tests.sweep_tasks:toy_task"


def write_spec(tmp_path: Path, body: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GOOD = f"""
    task = "{TOY}"
    seed = 7
    repeats = 2
    output = "out/sweep.h5"
    [base]
    b = 6
    [axes]
    a = {{linspace = [0.0, 1.0, 3]}}
    mode = ["x", "y"]
    [[zip]]
    lo = [0.0, 0.2]
    hi = [1.0, 0.8]
"""


def test_good_spec_expands_to_product_of_axes_zip_and_repeats(tmp_path):
    spec = load_spec(write_spec(tmp_path, GOOD))
    assert spec.output == (tmp_path / "out" / "sweep.h5").resolve()
    assert spec.axis_names == ("a", "mode", "lo", "hi")
    points = spec.points()
    assert len(points) == 3 * 2 * 2 * 2
    assert [p.axis_values["a"] for p in points[::8]] == [0.0, 0.5, 1.0]
    # zipped axes move together
    assert {(p.axis_values["lo"], p.axis_values["hi"]) for p in points} == {(0.0, 1.0), (0.2, 0.8)}
    assert all(p.params["b"] == 6 for p in points)
    # repeats: distinct seeds, the same for every axis combination
    assert [p.seed for p in points[:2]] == [repeat_seed(7, 0), repeat_seed(7, 1)]
    assert repeat_seed(7, 0) != repeat_seed(7, 1)
    assert len({p.key for p in points}) == len(points)
    # deterministic: reloading gives the same keys
    assert [p.key for p in load_spec(write_spec(tmp_path, GOOD)).points()] == [p.key for p in points]


def test_point_key_is_sha256_of_canonical_json():
    expected = hashlib.sha256(b'{"params":{"a":1.0,"mode":"x"},"seed":3,"task":"t"}').hexdigest()[:16]
    assert point_key("t", {"mode": "x", "a": 1.0}, 3) == expected


def test_task_table_options_and_logspace(tmp_path):
    spec = load_spec(write_spec(tmp_path, f"""
        output = "o.h5"
        [task]
        name = "{TOY}"
        mode = "y"
        [axes]
        a = {{logspace = [-1, 0, 2]}}
        fail_above = {{geomspace = [1.0, 100.0, 3]}}
    """))
    assert spec.options == {"mode": "y"}
    assert dict(spec.axes)["a"] == (0.1, 1.0)
    assert dict(spec.axes)["fail_above"] == (1.0, 10.0, 100.0)
    assert all(p.params["mode"] == "y" for p in spec.points())


def test_dry_run_prints_points_and_writes_nothing(tmp_path, capsys):
    path = write_spec(tmp_path, GOOD)
    assert cli.main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "24 points" in out and "todo" in out and "mode" in out
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ malformed specs
BASE_OK = f'task = "{TOY}"\noutput = "out/bad.h5"\n'
MALFORMED = {
    "unknown_top_level_key": (BASE_OK + "[axis]\na = [1.0]\n", r"unknown top-level key 'axis' \(did you mean 'axes'\?\)"),
    "missing_output": (f'task = "{TOY}"\n[axes]\na = [1.0]\n', r"missing required key 'output'"),
    "missing_task": ('output = "out/bad.h5"\n[axes]\na = [1.0]\n', r"missing required key 'task'"),
    "unknown_task": ('task = "trian"\noutput = "out/bad.h5"\n', r"unknown task 'trian'"),
    "unimportable_task": ('task = "tests.no_such_module:x"\noutput = "out/bad.h5"\n',
                          r"cannot import module 'tests.no_such_module'"),
    "unknown_parameter": (BASE_OK + "[axes]\nalpha = [1.0, 2.0]\n",
                          r"axes.alpha\[0\]: unknown parameter 'alpha'"),
    "out_of_range": (BASE_OK + "[axes]\na = [1.0, 12.5]\n",
                     r"axes.a\[1\]: parameter 'a' = 12.5 is out of range; allowed: 0 <= a <= 10"),
    "type_mismatch": (BASE_OK + "[base]\nb = \"six\"\n",
                      r"base.b: parameter 'b' = 'six' has type str; expected int"),
    "bad_choice": (BASE_OK + "[axes]\nmode = [\"x\", \"z\"]\n", r"axes.mode\[1\]: parameter 'mode' = 'z' is not allowed"),
    "duplicate_axis": (BASE_OK + "[axes]\na = [1.0, 2.0]\n[[zip]]\na = [3.0]\nb = [4]\n",
                       r"duplicate axis 'a': set in \[axes\] and again in \[zip\[0\]\]"),
    "duplicate_key_in_toml": (BASE_OK + "[axes]\na = [1.0]\na = [2.0]\n", r"not valid TOML.*given twice"),
    "zip_unequal_lengths": (BASE_OK + "[[zip]]\nlo = [0.0, 0.1]\nhi = [1.0, 0.9, 0.8]\n",
                            r"zip\[0\]: zipped axes must have equal lengths, but lo has 2, hi has 3 values"),
    "empty_axis": (BASE_OK + "[axes]\na = []\n", r"axes.a is empty"),
    "bad_linspace_args": (BASE_OK + "[axes]\na = {linspace = [0.0, 1.0]}\n",
                          r"axes.a = \{linspace = \[0.0, 1.0\]\} must be \[start, stop, num\]"),
    "bad_linspace_num": (BASE_OK + "[axes]\na = {linspace = [0.0, 1.0, 0]}\n", r"linspace num = 0 must be an integer >= 1"),
    "unknown_range_form": (BASE_OK + "[axes]\na = {arange = [0.0, 1.0, 0.1]}\n", r"must be a list of values or one of"),
    "bad_repeats": (BASE_OK + "repeats = 0\n", r"repeats = 0 must be an integer with 1 <= repeats"),
    "bad_seed": (BASE_OK + "seed = -1\n", r"seed = -1 must be an integer with 0 <= seed"),
    "param_in_base_and_axes": (BASE_OK + "[base]\na = 1.0\n[axes]\na = [2.0]\n",
                               r"parameter 'a': set in \[base\] and again in \[axes\]"),
    "duplicate_axis_value": (BASE_OK + "[axes]\na = [1.0, 2.0, 1.0]\n", r"axes.a has the value 1.0 twice"),
    "cross_parameter_rule": (BASE_OK + "[base]\nlo = 0.5\n[axes]\nhi = [0.9, 0.4]\n",
                             r"point with hi=0.4: parameters lo = 0.5 and hi = 0.4: need lo < hi"),
    "bad_output_suffix": (f'task = "{TOY}"\noutput = "out/bad.csv"\n', r"output = 'out/bad.csv' must end in .h5"),
    "scalar_axis": (BASE_OK + "[axes]\na = 1.0\n", r"axes.a = 1.0 must be a list of values"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_spec_fails_with_its_own_message_and_writes_nothing(tmp_path, capsys, case):
    body, pattern = MALFORMED[case]
    path = write_spec(tmp_path, body)
    with pytest.raises(SpecError, match=pattern):
        load_spec(path)
    for argv in (["sweep", str(path), "--dry-run"], ["sweep", str(path), "--workers", "1"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"spec {path}" in err and "error" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]  # no output file, no out/ dir


def test_malformed_messages_are_distinct(tmp_path):
    messages = set()
    for case, (body, _) in MALFORMED.items():
        with pytest.raises(SpecError) as info:
            load_spec(write_spec(tmp_path, body, f"{case}.toml"))
        messages.add(str(info.value).split(": ", 1)[1])
    assert len(messages) == len(MALFORMED)


# ------------------------------------------------------------------ registry
def _const(params: dict, seed: int) -> dict:
    return {"value": params["x"] * seed}


def test_register_and_get_task():
    task = register_task("test_const", _const, {"x": Param(float, 0.0, 1.0, default=0.5)}, replace=True)
    assert get_task("test_const") is task
    assert task.validate({}) == {"x": 0.5}
    with pytest.raises(ValueError, match="already registered"):
        register_task("test_const", _const, {"x": Param(float)})
    with pytest.raises(ValueError, match=r"parameter 'x' = 2.0 is out of range; allowed: 0 <= x <= 1"):
        task.validate({"x": 2.0})
    with pytest.raises(ValueError, match=r"unknown parameter 'y'.*allowed: x"):
        task.validate({"y": 1})
    with pytest.raises(ValueError, match=r"parameter 'x' = True has type bool"):
        task.validate({"x": True})


def test_schema_forms_dict_tuple_and_callable():
    t1 = Task("d", _const, {"x": {"type": "float", "min": 0, "max": 2}, "n": (int, 1, 3)})
    assert t1.validate({"x": 1, "n": 2}) == {"x": 1.0, "n": 2}
    with pytest.raises(ValueError, match="'n' = 4 is out of range"):
        t1.validate({"n": 4})

    def check(params):
        if params.get("x", 0) < 0:
            raise ValueError(f"x = {params['x']} must be >= 0")

    t2 = Task("c", _const, check)
    assert t2.validate({"x": 1.0}) == {"x": 1.0}
    with pytest.raises(ValueError, match="x = -1 must be >= 0"):
        t2.validate({"x": -1})


def test_lazy_task_is_loaded_on_first_use():
    calls = []

    def loader():
        calls.append(1)
        return Task("test_lazy", _const, ParamSchema({"x": Param(float)}))

    register_lazy_task("test_lazy", loader)
    assert calls == []
    assert get_task("test_lazy").run_fn is _const
    get_task("test_lazy")
    assert calls == [1]


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; known tasks: .*train"):
        get_task("nope")


def test_dotted_names_reach_into_table_parameters(tmp_path):
    spec = load_spec(write_spec(tmp_path, """
        task = "tests.sweep_tasks:nested_task"
        output = "o.h5"
        [base]
        scale = 2.0
        [base.inner]
        x = 1.0
        [axes]
        inner.y = [1.0, 2.0]
        "inner.z" = {linspace = [0, 1, 2]}
    """))
    assert spec.axis_names == ("inner.y", "inner.z")
    points = spec.points()
    assert points[0].params == {"scale": 2.0, "inner": {"x": 1.0, "y": 1.0, "z": 0.0}}
    assert points[0].axis_values == {"inner.y": 1.0, "inner.z": 0.0}
    with pytest.raises(SpecError, match=r"point with inner.y=-1.0, inner.z=0.0: NestedConfig.inner.y = -1.0"):
        load_spec(write_spec(tmp_path, """
            task = "tests.sweep_tasks:nested_task"
            output = "o.h5"
            [axes]
            inner.y = [-1.0]
            inner.z = [0.0]
        """))
    with pytest.raises(SpecError, match=r"parameter 'inner.x': set in \[base\] and again in \[axes\]"):
        load_spec(write_spec(tmp_path, """
            task = "tests.sweep_tasks:nested_task"
            output = "o.h5"
            [base]
            inner = {x = 1.0}
            [axes]
            inner.x = [2.0]
        """))
    with pytest.raises(SpecError, match=r"axes.scale = \{'y': \[1.0\]\} must be a list of values"):
        load_spec(write_spec(tmp_path, """
            task = "tests.sweep_tasks:nested_task"
            output = "o.h5"
            [axes]
            scale.y = [1.0]
        """))


SPECS = sorted(Path(str(resources.files("xbarsim.experiments.sweeps") / "specs")).glob("*.toml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_example_specs_validate(path):
    """Validation only (no simulation); skipped while the task's module is missing."""
    import tomllib

    task = tomllib.loads(path.read_text())["task"]
    name = task if isinstance(task, str) else task["name"]
    try:
        get_task(name)
    except ValueError as exc:
        pytest.skip(f"task {name!r} not available here: {exc}")
    spec = load_spec(path)
    assert spec.points() and spec.output.suffix == ".h5"


def test_train_adapter_merges_preset_tables_and_routes_device_fields():
    """The `train` adapter against a stand-in train module (the real one is not needed)."""
    import dataclasses
    import types

    from xbarsim.experiments.tasks.train import TrainSchema

    @dataclasses.dataclass(frozen=True)
    class TrainConfig:
        device: str = "SoftBounds"
        device_params: dict = dataclasses.field(default_factory=dict)
        epochs: int = 1

        @classmethod
        def from_dict(cls, d):
            return cls(**d)

    presets = {"smoke": {"epochs": 2, "device_params": {"dw_min": 0.005, "w_max": 0.7}}}

    def preset_config(preset, **overrides):
        return TrainConfig.from_dict({**presets[preset], **overrides})

    fake = types.SimpleNamespace(TrainConfig=TrainConfig, PRESETS=presets, preset_config=preset_config)
    schema = TrainSchema(fake)
    cfg = schema.config({"preset": "smoke", "up_down": 0.3, "device_params": {"w_max": 0.9}})
    assert cfg == TrainConfig(device_params={"dw_min": 0.005, "w_max": 0.9, "up_down": 0.3}, epochs=2)
    assert schema.config({"dw_min": 0.01}) == TrainConfig(device_params={"dw_min": 0.01})
    assert schema.is_nested("device_params") and not schema.is_nested("epochs")
    with pytest.raises(ValueError, match=r"unknown parameter 'dwmin' \(did you mean 'dw_min'\?\)"):
        schema.check_value("dwmin", 0.1)


def test_the_sweep_engine_names_no_domain_task_and_a_fresh_process_still_finds_them():
    """``sweeps/tasks.py`` imports nothing of training or devices; the built-in tasks register
    themselves through ``xbarsim.experiments``, so a fresh interpreter (a Dask worker) that
    only imports the engine can look ``train`` and ``pulse_response`` up by name."""
    import subprocess
    import sys
    from pathlib import Path

    import xbarsim.experiments.sweeps.tasks as engine

    source = Path(engine.__file__).read_text()
    assert "xbarsim.devices" not in source and "experiments.train" not in source
    code = ("import sys\n"
            "from xbarsim.experiments.sweeps.tasks import get_task, task_names\n"
            "assert {'train', 'pulse_response'} <= set(task_names()), task_names()\n"
            "assert 'torch' not in sys.modules\n"
            "t = get_task('pulse_response')\n"
            "print(t.run_fn.__module__, sorted(t.validate({'n_up': 3})) [:3])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "xbarsim.experiments.tasks.pulse_response"
