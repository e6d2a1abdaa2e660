r"""Zero-shifting on asymmetric soft-bound devices: ``xbarsim repro zero-shifting``.

Reproduces the figure of Kim et al., "Zero-shifting technique for deep neural network
training on resistive cross-point arrays", arXiv:1907.10228 (2019): test accuracy of
in-situ training versus device asymmetry, with and without programming each weight's
reference device to its symmetry point.  The budget measurements, run history and
findings are in ``experiments/figures/zero_shifting/NOTES.md``.

Physics (details in :mod:`xbarsim.mapping.reference`): a soft-bound cell steps
``+alpha_+ (1 - w/b_max)`` up and ``-alpha_- (1 - w/b_min)`` down, with
``alpha_+ = dw_min (1 + min(up_down, 0))`` and ``alpha_- = dw_min (1 - max(up_down, 0))``
(aihwkit's ``up_down``).  The steps balance at the symmetry point
``w* = (alpha_+ - alpha_-)/(alpha_+/b_max - alpha_-/b_min)`` (0.257 for ``up_down = 0.6``,
``b = ±0.6``), and under SGD's zero-mean pulse traffic ``E[dw] ∝ (w* - w)``.  With
``W = G`` (mode ``none``) or ``G_ref = 0`` (``zero``) that drift is a bias the network
fights; with ``G_ref = w*`` (``symmetry_point``, zero-shifting) the attractor is ``W = 0``.

What runs (:mod:`.point`): a 784-256-128-10 sigmoid MLP trained in-situ with
:class:`xbarsim.training.AnalogSGD` on :class:`xbarsim.devices.SoftBounds` arrays
(aihwkit-default d2d/c2c variation, default IO, ``desired_bl = 31``) for each reference
mode at every ``up_down`` of the preset (main number of states) and at every number of
states ``(w_max - w_min)/dw_min`` at one asymmetry, plus the float baseline and two
device traces.  Every run uses the same seed (initial weights, d2d draws, data order),
so differences between points are paired.  The reference is measured and written with
the same pulse protocol (``reference_ideal=False``), so it carries its own error.

Presets (reconstructed schedule, PAPERS.md section 1): ``smoke`` (a 784-32-16-10
network, 300 / 200 samples, 1 epoch, ``up_down = 0.6``, 200 states: the plumbing, not
the physics); ``paper`` (10 k training samples, the 10 k test set, 5 epochs, batch 10,
lr 0.1; 600 states for ``up_down`` in {0, ±0.2, ±0.4, ±0.6, ±0.8}; states {200, 600,
1200} at 0.6; modes none, zero, symmetry_point: 34 runs).  The paper's 30-epoch, 60 k
schedule is out of budget, so accuracies are below converged values, but every point
sees the same schedule.  Dataset: MNIST when a full copy is found, else Fashion-MNIST.

Outputs: one HDF5 file in the sweep store's layout (:mod:`.point` lists each point's
metrics); figures ``fig_a_device``, ``fig_b_accuracy_vs_asymmetry``,
``fig_c_weight_histograms``, ``fig_d_accuracy_vs_states`` (:mod:`.figures`) and
``summary.json`` (:mod:`.summary`: accuracy table, baseline, claims).
"""
from xbarsim.experiments.repro.zero_shifting.figures import FIGURES, draw_figures
from xbarsim.experiments.repro.zero_shifting.point import TASK, WEIGHT_HIST_EDGES, run_point
from xbarsim.experiments.repro.zero_shifting.spec import MODES, PRESETS, build_spec, choose_dataset, point_label
from xbarsim.experiments.repro.zero_shifting.summary import read_results, summarize

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "read_results",
           "choose_dataset", "point_label", "MODES", "FIGURES", "WEIGHT_HIST_EDGES"]
