r"""BasisN-style reprogramming-free mapping: ``xbarsim repro basisn``.

Reproduces, reconstructed ("BasisN-style"), the claim of Eldebiky et al., "BasisN:
Reprogramming-free RRAM-based in-memory-computing by basis combination for deep neural
networks", ICCAD 2024 (arXiv 2407.03738): when a network's weights exceed the chip's
crossbars, global bases written once and combined with quantised digital coefficients
cut cycles and EDP per inference to below 1 % of conventional mapping with
reprogramming, within a few points of the unconstrained network's accuracy.  The run
history, timings and findings are in ``experiments/figures/basisn/NOTES.md``; the cost
model's closed form and hardware figures in :mod:`..basisn_hardware`.

What runs (one sweep point each, :mod:`.point`)
    ``baseline`` (per model): the unconstrained network, trained in float32.
    ``basis`` (per model, bases ``M``, coefficient bits ``q``):
    :class:`xbarsim.mapping.basis.BasisNet` from the baseline (global bases, SVD
    initialisation), fine-tuned, evaluated digitally and on crossbars.
    ``cost`` (per model, arrays ``K``): simulated batch-1 inferences of conventional
    mapping with reprogramming, conventional with the weights resident, and
    BasisN-style on ``K`` arrays; counters checked against the explicit schedules of
    :mod:`xbarsim.mapping.basis_schedule`, costed by :mod:`xbarsim.crossbar.costs`.

Reconstructed choices (PAPERS.md section 3)
    * Arrays ``32 x 32`` (``array_size``; NeuroSim and ISAAC use 128): ``K = 1`` holds
      well under 1/100 of the weights; cell-serial, the ratio falls as ``1/R``, so 32 is
      the size least favourable to BasisN (``array_size_sensitivity``).
    * Hardware: :func:`..basisn_hardware.preset_hardware`, each figure with its source;
      cell-serial program-and-verify, 10 iterations of 100 ns pulse + 100 ns read
      (``paper_scale_check``: the paper's < 1 % on ImageNet implies cell-serial writes).
    * Models: VGG-style (16-32-64-64-128, 282 k weights) and ResNet-style (24-48-96,
      173 k), BatchNorm digital; every conv and linear layer decomposed.
    * Bases: one global set, SVD of all segments (each layer's divided by its RMS),
      ``main_bases = 16`` of 32 dimensions, ``main_bits = 8``; per-channel coefficient scale.
    * Training (:mod:`.training`): SGD, momentum 0.9, cosine decay, lr 0.05, wd 1e-4,
      batch 128, 3 epochs on 20 k images; fine-tuning 1 epoch at lr 0.01.
    * Crossbars: ``IOConfig`` defaults (7-bit DAC, 9-bit ADC, ``out_noise`` 0.06), ideal
      cells; crossbar accuracy on the first 2000 test images.
    * Costs per inference at batch 1, BasisN's one-time programming separate; partly
      filled blocks programmed whole; arrays of a layer in parallel, layers in sequence,
      digital MACs after the reads.  Sensitivities (:mod:`.sensitivity`) re-cost the
      stored op counts: write figures, programming granularity, batch, array size.
    * Not reproduced: ImageNet/CIFAR-100 networks, the paper's training method and
      hardware figures.

Modules: :mod:`.spec`, :mod:`.training`, :mod:`.point`, :mod:`.sensitivity`,
:mod:`.summary` (tables and claims from the HDF5 file), :mod:`.figures`.
"""
from xbarsim.experiments.repro.basisn.figures import draw_figures
from xbarsim.experiments.repro.basisn.point import TASK, run_point
from xbarsim.experiments.repro.basisn.spec import PRESETS, build_spec, k_values
from xbarsim.experiments.repro.basisn.summary import read_results, summarize

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "k_values", "read_results"]
