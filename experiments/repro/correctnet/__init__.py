r"""CorrectNet-style robustness to weight variations: ``xbarsim repro correctnet``.

Reconstructs Eldebiky, Zhang, Böcherer, Li, Schlichtmann, "CorrectNet: Robustness
Enhancement of Analog In-Memory Computing for Neural Networks by Error Suppression
and Compensation", DATE 2023 (arXiv 2211.14917).  Only the abstract and section
summaries were available, so this is *CorrectNet-style*: every choice marked (R)
is reconstructed.  The run history, the pilots and calibrations behind each choice
and the findings are in ``experiments/figures/correctnet/NOTES.md``.

Per point (:mod:`.point`), ``kind = "sigma"`` (one network, one lognormal σ):

1. Networks trained in float32 and shared between points (:mod:`.networks`):
   *plain*, *regularized* (spectral Lipschitz penalty, β = 0.01 (R)) and
   *variation-aware* (the same loss, each mini-batch's forward on a fresh lognormal
   chip of σ_t = ``train_sigma``; HWA-style noise injection, Joshi et al. 2020 (R):
   error suppression beyond the paper's penalty).
2. Test accuracy clean and under :math:`w' = w e^{\theta}`, :math:`\theta\sim N(0,\sigma^2)`
   per weight, ``n_mc`` chips (common seeds for every variant), on the first
   ``test_subset`` test images; the claim's variants again on the next
   ``heldout_subset`` images.
3. The *base* to compensate: the variation-aware network if it scores higher on the
   validation split at this σ, else the Lipschitz-only one.  Per-layer sensitivity:
   accuracy won back when that layer alone is exact (``sensitivity = "recovery"`` (R)).
4. RL placement (REINFORCE (R), :mod:`xbarsim.training.placement_rl`) of compensation
   units (a digital rank-``rank`` path :math:`U V x` from the layer's input, rank 8 (R))
   scored on the validation split; reward = accuracy - ``penalty`` x overhead
   fraction, units over ``budget_pct`` % of the parameters masked (R); successive
   halving over the best placements (``halving_top`` at ``halving_steps``, then
   ``rescore_top`` at ``final_steps``); cosine-decayed unit training (R).
5. Greedy (most sensitive layers first) and all-layer (rank lowered to fit) placements
   at the same budget.  No search where the base loses less than ``skip_below_drop``.

``kind = "device"``: weights written by program-and-verify onto :mod:`xbarsim.devices`
cells (largest weight at ``weight_fraction`` = 0.5 of ``w_max`` (R)) and read through a
:class:`~xbarsim.crossbar.CrossbarArray` with the default IO; settings ``softbounds``
(aihwkit's SoftBounds defaults) and ``low_variation`` (5 % d2d and c2c (R)).

Networks (R): LeNet-5 (61.7 k parameters) and a small VGG-style CNN (27.9 k), all-analog,
biases digital; Fashion-MNIST (MNIST when a full copy is found); Adam, batch 128, lr 1e-3
cosine-decayed.  Each network has its own recipe (``networks`` option: σ list, epochs,
variation-aware epochs and σ_t, training and test subsets; :mod:`.spec`).

Departures: small networks (VGG16 and the 100-class task are out of reach); σ up to 1.0
(paper: 0.5); regularizer, unit, agent, state and reward reconstructed; overhead counted
analytically; units trained per σ on the variation distribution, not per chip.

Modules: :mod:`.spec` (presets, options, the sweep spec), :mod:`.networks` (data,
models, training), :mod:`.point` (one point), :mod:`.summary` (tables and claims from
the HDF5 file), :mod:`.figures`.
"""
from xbarsim.experiments.repro.correctnet.figures import draw_figures
from xbarsim.experiments.repro.correctnet.networks import build_model
from xbarsim.experiments.repro.correctnet.point import TASK, run_point
from xbarsim.experiments.repro.correctnet.spec import DEVICE_SETTINGS, MODELS, PRESETS, build_spec
from xbarsim.experiments.repro.correctnet.summary import read_results, summarize

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "read_results",
           "build_model", "MODELS", "DEVICE_SETTINGS"]
