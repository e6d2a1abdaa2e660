"""Every committed ``experiments/figures/<name>/summary.json`` re-derives from its committed HDF5 file.

The reproductions' paper presets take up to 90 minutes; their summaries must never drift from
the files they claim to summarise.  ``build_summary`` is what ``xbarsim repro NAME --figures-only``
writes, so this is that command's result compared number for number (JSON-equal) with the
committed file.  Only ``xbarsim_version`` (the checkout's commit) may differ.  Each takes well
under a second but BasisN (about 5 s: its sensitivity analyses re-cost stored op counts and
re-run the cost schedules).
"""
import json
from pathlib import Path

import pytest

from xbarsim.experiments.repro import REPRODUCTIONS
from xbarsim.experiments.repro.base import build_summary

FIGURES = Path(__file__).resolve().parents[1] / "experiments" / "figures"
pytestmark = pytest.mark.skipif(not FIGURES.is_dir(), reason="experiments/figures is not beside tests/ "
                                "(run from the checkout)")


def _committed(name: str) -> tuple[Path, dict]:
    folder = FIGURES / name.replace("-", "_")
    h5 = folder / f"{name.replace('-', '_')}.h5"
    if not h5.exists():
        pytest.skip(f"{h5} is not in this checkout")
    return h5, json.loads((folder / "summary.json").read_text())


def test_every_reproduction_has_a_committed_summary_and_results_file():
    for name in REPRODUCTIONS:
        folder = FIGURES / name.replace("-", "_")
        assert (folder / "summary.json").is_file(), name
        assert (folder / f"{name.replace('-', '_')}.h5").is_file(), name


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_committed_summary_rederives_from_its_hdf5_file(name):
    h5, committed = _committed(name)
    derived = json.loads(json.dumps(build_summary(name, h5)))  # the JSON that --figures-only would write
    committed.pop("xbarsim_version")
    derived.pop("xbarsim_version")
    assert sorted(derived) == sorted(committed)
    for key in committed:
        assert derived[key] == committed[key], f"{name}: summary[{key!r}] differs from the committed file"
    claims = committed["claims"]
    assert claims and all({"claim", "value", "op", "target"} <= set(c) for c in claims)
