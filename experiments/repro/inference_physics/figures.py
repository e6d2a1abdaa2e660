"""Inference-physics figures (a)-(c), PNG and PDF, from the HDF5 file only (never simulates)."""
from __future__ import annotations

import os
from pathlib import Path

from xbarsim.experiments.repro.base import save_figure
from xbarsim.experiments.repro.inference_physics.summary import read_results

__all__ = ["draw_figures"]


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """Accuracy over time, accuracy against wire resistance, solver accuracy and speed; from the HDF5 file only."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = read_results(h5_path)
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    devs = sorted(res["drift"])
    fig, axes = plt.subplots(1, max(1, len(devs)), figsize=(5.5 * max(1, len(devs)), 4), squeeze=False)
    for ax, dev in zip(axes[0], devs):
        for tr, by_comp in sorted(res["drift"][dev].items()):
            for comp, m in sorted(by_comp.items()):
                acc = m["test_acc"]
                ax.errorbar(m["times"], acc.mean(0), yerr=acc.std(0), capsize=3, marker="o",
                            ls="-" if comp == "global" else "--", label=f"{tr}, compensation {comp}")
            ax.axhline(float(m["digital_test_acc"]), color="0.6", lw=0.8, ls=":")
        ax.set(xscale="log", xlabel="time after programming (s)", ylabel="test accuracy",
               title=f"(a) LeNet-5, {'PCM-like' if dev == 'pcm' else 'CMO/HfOx RRAM'}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, "fig_a_accuracy_over_time")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, (size, by_m) in enumerate(sorted(res["ir"].items())):
        for method, m in by_m.items():
            ax.plot(m["r_wires"], m["test_acc"], color=f"C{k}", marker="o" if method == "solve" else "x",
                    ls="-" if method == "solve" else "--", label=f"{size}x{size}, {method}")
    ax.set(xscale="log", xlabel="wire segment resistance / cell on-resistance", ylabel="test accuracy",
           title="(b) IR drop: network solve (solid) and aihwkit's approximation (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, "fig_b_accuracy_vs_wire_resistance")
    plt.close(fig)

    sol = res["solver"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if sol:
        n = sorted(sol)
        ax1.plot(n, [sol[k]["rel_error"] for k in n], "o-")
        ax2.plot(n, [sol[k]["ratio"] for k in n], "o-", label="per batch (network solve)")
        ax2.plot(n, [sol[k]["t_direct"] / sol[k]["t_read"] for k in n], "s--", label="direct sparse solve")
        ax2.axhline(20, color="k", lw=0.8, ls=":", label="target 20x")
    ax1.set(xscale="log", yscale="log", xlabel="array size n", ylabel="max relative deviation",
            title="(c) network solve vs direct sparse solve")
    ax2.set(xscale="log", yscale="log", xlabel="array size n", ylabel="time / plain read of the batch",
            title="(c) cost per batch read")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, "fig_c_solver")
    plt.close(fig)
    return paths
