r"""Inference physics over time and space: ``xbarsim repro inference-physics``.

Three questions, one sweep (:mod:`xbarsim.experiments.repro.base`).  The run history
and the findings of the paper preset are in ``experiments/figures/inference_physics/NOTES.md``.

(a) **Drift.** LeNet-5 on Fashion-MNIST, trained plain or hardware-aware
    (``hwa``: additive Gaussian weight noise of ``hwa_noise`` x max|W| per layer
    on every training forward, the recipe of Joshi et al., Nat. Commun. 11:2473,
    2020), is programmed onto PCM-like cells (:class:`xbarsim.devices.PCMLikeDrift`)
    or CMO/HfOx RRAM cells (:class:`xbarsim.devices.RRAMRelaxation`) with
    :func:`xbarsim.mapping.inference_physics.program`, and read at the preset's
    times (1 s to 1 year) with and without global drift compensation; mean ± std
    of the test accuracy over ``n_chips`` programmed chips (seeds).
(b) **IR drop.** The plain network on noiseless, drift-free cells (only the wires
    act), tiled on ``array_size`` x ``array_size`` arrays (64 ... 512), read through
    the exact network solve (``solve``) and through aihwkit's approximation
    (``approx``, ``ir_drop = 1``, ``g_ratio = R_on / r_wire``), against the wire
    resistance ``r_wire`` relative to the cell's on-resistance ``1/g_max``
    (ideal drivers and sense nodes).
(c) **Solver.** On random ``n`` x ``n`` arrays, the network solve's largest
    relative deviation from scipy's direct sparse solve of the full ``2 n^2``-node
    system, and its time per batch read against a plain read of the same batch
    (``CrossbarArray.forward``, perfect IO, float32), medians of alternated repeats.

Every choice is fixed in the preset or made on the validation split (the first
``val_subset`` images of a seeded permutation of the training set; the networks
train on the rest): the validation accuracy of every drift and IR point is
stored beside the test accuracy.  The claims and their targets (:mod:`.summary`)
were fixed before the first paper run; a missed claim stays in the list.

Presets: ``smoke`` (seconds, for the tests: a few hundred images, one epoch, two
times, two chips, arrays of 32 and 64) and ``paper`` (8 epochs on the 58k training
images outside the validation split, 8 chips, the full 10k test set for drift,
2000 test images for IR drop).

Modules: :mod:`.spec` (presets, point parameters, the sweep spec), :mod:`.networks`
(LeNet-5, data splits, plain and hardware-aware training), :mod:`.point` (one point),
:mod:`.summary` (tables and claims from the HDF5 file), :mod:`.figures`.
"""
from xbarsim.experiments.repro.inference_physics.figures import draw_figures
from xbarsim.experiments.repro.inference_physics.networks import build_lenet5
from xbarsim.experiments.repro.inference_physics.point import TASK, run_point
from xbarsim.experiments.repro.inference_physics.spec import (COMPENSATIONS, DAY, DEVICES, HOUR, METHODS, PRESETS,
                                                              TRAININGS, YEAR, build_spec)
from xbarsim.experiments.repro.inference_physics.summary import read_results, summarize

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "read_results",
           "build_lenet5", "HOUR", "DAY", "YEAR", "DEVICES", "TRAININGS", "COMPENSATIONS", "METHODS"]
