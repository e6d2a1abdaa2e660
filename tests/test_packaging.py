"""Every package folder of the checkout is listed in pyproject.toml, so the wheel carries it."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("devices", "crossbar", "mapping", "training", "experiments")


def test_every_package_folder_is_in_the_wheel():
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("pyproject.toml is not beside tests/ (run from the checkout)")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"xbarsim." + ".".join(d.relative_to(ROOT).parts)
             for top in TOPS for d in [ROOT / top, *(ROOT / top).rglob("*")]
             if d.is_dir() and (d / "__init__.py").is_file() and "__pycache__" not in d.parts}
    assert found <= listed, f"pyproject.toml [tool.setuptools] packages lacks {sorted(found - listed)}"
