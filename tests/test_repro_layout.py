"""The reproductions stay readable: small modules, short module docstrings (run history goes to NOTES.md)."""
import ast
from pathlib import Path

import pytest

REPRO = Path(__file__).resolve().parents[1] / "experiments" / "repro"
MODULES = sorted(REPRO.rglob("*.py"))
pytestmark = pytest.mark.skipif(not REPRO.is_dir(), reason="experiments/repro is not beside tests/ "
                                "(run from the checkout)")


def test_every_reproduction_is_a_package_with_its_notes_beside_its_figures():
    from xbarsim.experiments.repro import REPRODUCTIONS
    for name, module in REPRODUCTIONS.items():
        folder = REPRO / module.rsplit(".", 1)[1]
        assert (folder / "__init__.py").is_file(), name
        assert (REPRO.parents[0] / "figures" / folder.name / "NOTES.md").is_file(), name


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(REPRO)) for p in MODULES])
def test_a_reproduction_module_has_at_most_400_lines_and_a_docstring_of_at_most_60(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400
    doc = ast.get_docstring(ast.parse(text), clean=False) or ""
    assert len(doc.splitlines()) <= 60
