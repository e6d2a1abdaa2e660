"""Paper reproductions: one package per paper, each a sweep spec, a point task, a summary and figures.

A package's ``spec`` holds its presets and point parameters, ``point`` the task that
computes one point, ``summary`` the tables and claims read from the HDF5 file, and
``figures`` the figures; its run history is in ``experiments/figures/<name>/NOTES.md``.
:mod:`xbarsim.experiments.repro.base` runs them; adding one is one line here.
"""

#: ``xbarsim repro NAME`` -> the package implementing it
REPRODUCTIONS = {
    "zero-shifting": "xbarsim.experiments.repro.zero_shifting",
    "bnn-split": "xbarsim.experiments.repro.bnn_split",
    "basisn": "xbarsim.experiments.repro.basisn",
    "correctnet": "xbarsim.experiments.repro.correctnet",
    "inference-physics": "xbarsim.experiments.repro.inference_physics",
}
