"""The built-in sweep tasks, registered by name with the generic sweep engine.

``train``
    In-situ MLP training (:mod:`xbarsim.experiments.tasks.train`): params are
    ``TrainConfig`` fields, plus ``preset`` (a named base config, e.g. ``"smoke"``)
    and, like ``xbarsim train --set``, bare device-model fields (``dw_min``,
    ``up_down``, ...) which go into ``device_params``.
``pulse_response``
    Up then down pulses on cells of one device model, and their symmetry point
    (:mod:`xbarsim.experiments.tasks.pulse_response`).

Both are registered lazily: naming or listing them imports neither torch nor the
device models; the first :func:`~xbarsim.experiments.sweeps.tasks.get_task` does.
``xbarsim.experiments`` imports this module, so every process that imports the
sweep engine (the CLI, a Dask worker, a test) knows these names.  A new domain task
registers itself the same way, from its own module listed here.
"""
from __future__ import annotations

from xbarsim.experiments.sweeps.tasks import Task, register_lazy_task

__all__ = ["TASK_MODULES"]

#: registry name -> the module whose ``TASK`` it is (imported on first use)
TASK_MODULES = {
    "train": "xbarsim.experiments.tasks.train",
    "pulse_response": "xbarsim.experiments.tasks.pulse_response",
}


def _loader(module_name: str):
    def load() -> Task:
        import importlib

        return importlib.import_module(module_name).TASK
    return load


for _name, _module in TASK_MODULES.items():
    register_lazy_task(_name, _loader(_module))
