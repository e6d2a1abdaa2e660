"""xbarsim.experiments: datasets, sweeps, reproductions and the ``xbarsim`` command line.

Importing the package registers the built-in sweep tasks (:mod:`xbarsim.experiments.tasks`,
lazily: nothing heavy is imported), so every process that uses the sweep engine knows them.
"""
from xbarsim.experiments import tasks as _tasks  # noqa: F401  registers the built-in sweep tasks
