"""Paper reproductions: one module per paper, each a sweep spec, a task and a figure function.

:mod:`xbarsim.experiments.repro.base` runs them; adding one is one line here.
"""

#: ``xbarsim repro NAME`` -> the module implementing it
REPRODUCTIONS = {
    "zero-shifting": "xbarsim.experiments.repro.zero_shifting",
    "bnn-split": "xbarsim.experiments.repro.bnn_split",
    "basisn": "xbarsim.experiments.repro.basisn",
    "correctnet": "xbarsim.experiments.repro.correctnet",
    "inference-physics": "xbarsim.experiments.repro.inference_physics",
}
