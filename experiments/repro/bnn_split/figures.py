"""BNN input-split figures from the HDF5 file only: accuracy vs A, and ADC count, area and energy vs A."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xbarsim.experiments.repro.bnn_split.spec import NETWORKS
from xbarsim.experiments.repro.bnn_split.summary import read_results, split_label

__all__ = ["draw_figures"]


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """Accuracy vs A per variant (one panel per network); ADC count, area and energy vs A."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xbarsim.experiments.repro.base import save_figure

    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    results = read_results(h5_path)["results"]
    paths: list[Path] = []
    nets = [n for n in NETWORKS if n in results]
    if not nets:
        return paths
    fig, axes = plt.subplots(1, len(nets), figsize=(6 * len(nets), 4.2), squeeze=False)
    for ax, net in zip(axes[0], nets):
        by_a = results[net]
        order = sorted(by_a, key=lambda a: (a != 0, -a))
        xs = np.arange(len(order))
        ax.plot(xs, [100 * by_a[a]["acc_retrained"] for a in order], "o-", color="k", lw=2,
                label="retrained with split (10k test images)")
        ax.plot(xs, [100 * by_a[a]["acc_no_retrain"] for a in order], "s--", color="tab:red",
                label="split, no retraining (10k test images)")
        ax.plot(xs, [100 * by_a[a]["acc_retrained_mc_subset"] for a in order], "o-", color="0.6",
                label="retrained, ideal devices (MC test subset)")
        first = by_a[order[0]]
        ratios, variations = np.asarray(first["on_off_ratios"]), np.asarray(first["variations"])
        colors = plt.cm.viridis(np.linspace(0, 0.85, len(ratios) * len(variations)))
        c = 0
        for i, r in enumerate(ratios):
            for j, v in enumerate(variations):
                acc = np.array([np.asarray(by_a[a]["device_acc"])[i, j] for a in order]) * 100
                ax.errorbar(xs + 0.03 * (c - 2.5), acc.mean(1), yerr=acc.std(1, ddof=1) if acc.shape[1] > 1 else None,
                            fmt=".:", color=colors[c], capsize=2,
                            label=f"devices on/off {r:g}, variation {100 * v:g}% (MC subset, mean ± std)")
                c += 1
        ax.set_xticks(xs, [split_label(a) for a in order])
        ax.set_xlabel("array rows A")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{net.upper()} BNN, input splitting")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, bbox_to_anchor=(0.5, -0.12))
    paths += save_figure(fig, figures_dir, "fig_accuracy_vs_A")
    plt.close(fig)

    fig, axes = plt.subplots(len(nets), 3, figsize=(14, 3.8 * len(nets)), squeeze=False)
    for row, net in zip(axes, nets):
        by_a = results[net]
        As = sorted((a for a in by_a if a), reverse=True)
        if not As:
            continue
        for ax, (key, ylabel, scale) in zip(row, (("adc_count", "ADCs", 1.0), ("area_mm2", "area (mm$^2$)", 1.0),
                                                  ("energy_j", "energy per inference (nJ)", 1e9))):
            for mp, style in (("conventional", "o-"), ("split", "s-")):
                ax.plot(As, [scale * by_a[a][f"{mp}_{key}"] for a in As], style, label=f"{mp} (all layers)")
                hk = {"adc_count": "hidden_adc_count", "area_mm2": "hidden_area_mm2",
                      "energy_j": "hidden_energy_j"}[key]
                ax.plot(As, [scale * by_a[a][f"{mp}_{hk}"] for a in As], style[0] + ":",
                        label=f"{mp} (hidden layers)")
            ax.set_xscale("log", base=2)
            ax.set_xticks(As, [str(a) for a in As])
            ax.set_xlabel("array rows A")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{net.upper()}: {ylabel}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, "fig_cost_vs_A")
    plt.close(fig)
    return paths
