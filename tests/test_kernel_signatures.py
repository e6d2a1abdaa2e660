"""Every compiled function of the engine takes at most 8 parameters (state, parameters, data).

A compiled function is one decorated with ``numba.njit`` or handed to
``xbarsim.devices.kernels.specialise`` / ``device_build``; records (``ArrayState``,
``ReadParams``, ``UpdateParams``, ...) travel as one parameter each.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("crossbar", "devices", "training")
MAX_PARAMS = 8
pytestmark = pytest.mark.skipif(not (ROOT / "crossbar").is_dir(), reason="the sources are not beside tests/ "
                                "(run from the checkout)")


def _is_njit(dec: ast.expr) -> bool:
    target = dec.func if isinstance(dec, ast.Call) else dec
    return isinstance(target, ast.Attribute) and target.attr == "njit" or isinstance(target, ast.Name) and \
        target.id == "njit"


def _compiled_functions():
    for package in PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            tree = ast.parse(path.read_text())
            defs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            built = {call.args[0].id for call in ast.walk(tree)
                     if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                     and call.func.id in ("specialise", "device_build") and call.args
                     and isinstance(call.args[0], ast.Name)}
            for name, node in defs.items():
                if name in built or any(_is_njit(d) for d in node.decorator_list):
                    yield f"{package}/{path.name}::{name}", node


def test_the_scan_finds_the_engines_kernels():
    names = {n for n, _ in _compiled_functions()}
    for expected in ("crossbar/kernels.py::_read_tiles", "crossbar/kernels.py::_pulse_rows",
                     "crossbar/pulse_helper.py::pulse_tile_shared", "training/mlp_loop.py::_run",
                     "devices/kernels.py::_apply_pulse_counts", "devices/linear_step.py::linear_step"):
        assert expected in names


@pytest.mark.parametrize("name, node", list(_compiled_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_compiled_functions_take_at_most_eight_parameters(name, node):
    a = node.args
    n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)
    assert n <= MAX_PARAMS, f"{name} takes {n} parameters (at most {MAX_PARAMS}: pass records)"
