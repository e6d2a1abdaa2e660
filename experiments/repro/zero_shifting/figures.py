"""Zero-shifting figures (a)-(d), PNG and PDF, from the HDF5 file only (never simulates)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xbarsim.experiments.repro.base import save_figure
from xbarsim.experiments.repro.zero_shifting.spec import MODES, point_label
from xbarsim.experiments.repro.zero_shifting.summary import read_results

__all__ = ["FIGURES", "draw_figures"]


FIGURES = ("fig_a_device", "fig_b_accuracy_vs_asymmetry", "fig_c_weight_histograms", "fig_d_accuracy_vs_states")


_MODE_STYLE = {"none": dict(color="tab:red", marker="o", label="none (W = G)"),
               "zero": dict(color="tab:orange", marker="s", label="reference at 0"),
               "symmetry_point": dict(color="tab:blue", marker="^", label="zero-shifting (ref = w*)")}


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """Figures (a)-(d) as PNG and PDF, from the HDF5 file only (never simulates)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = read_results(h5_path)
    runs, devices, meta = res["runs"], res["devices"], res["meta"]
    preset = meta
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    title = f"{meta.get('dataset', '?')}, {preset['epochs']} epoch(s), {preset['train_subset'] or 'all'} training samples"
    paths: list[Path] = []
    fp = runs.get("fp")
    main_n = int(preset["main_states"])

    # (a) device
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (key, d) in enumerate(sorted(devices.items(), key=lambda kv: kv[1]["up_down"])):
        c = f"C{i}"
        ax1.plot(np.arange(d["pulse_response"].size), d["pulse_response"], color=c, lw=1,
                 label=f"up_down = {d['up_down']:+.1f}")
        ax1.axvline(d["n_up"], color="0.7", lw=0.8, ls=":")
        x = np.arange(d["alternating"].size) / 2.0
        ax2.plot(x, d["alternating"], color=c, lw=0.6,
                 label=f"up_down = {d['up_down']:+.1f}: measured {d['measured_w_star']:+.3f}")
        ax2.axhline(d["w_star"], color=c, ls="--", lw=1.2, label=f"closed-form w* = {d['w_star']:+.3f}")
    ax1.set(xlabel="pulse number (up, then down)", ylabel="weight w (G, weight units)",
            title=f"(a) pulse response of one cell ({main_n} states)")
    ax2.set(xlabel="alternating up/down pulse pairs", ylabel="weight w",
            title="convergence to the symmetry point")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, FIGURES[0])
    plt.close(fig)

    # (b) accuracy vs asymmetry
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode in MODES:
        pts = sorted((float(r["up_down"]), float(r["final_test_acc"])) for r in runs.values()
                     if r["mode"] == mode and int(r["states"]) == main_n)
        if pts:
            ax.plot(*zip(*pts), **_MODE_STYLE[mode])
    if fp is not None:
        ax.axhline(float(fp["final_test_acc"]), color="k", ls="--", lw=1, label="floating point")
    ax.set(xlabel="asymmetry up_down", ylabel="test accuracy", ylim=(0, 1),
           title=f"(b) accuracy vs asymmetry ({main_n} states)\n{title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower center")
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, FIGURES[1])
    plt.close(fig)

    # (c) weight histograms: none vs symmetry_point at the histogram asymmetry
    ud = float(preset["histogram_up_down"])
    chosen = [(m, runs.get(point_label("train", m, ud, main_n))) for m in ("none", "symmetry_point")]
    chosen = [(m, r) for m, r in chosen if r is not None and "weight_hist" in r]
    layers = sorted({layer for _, r in chosen for layer in r["weight_hist"]}, key=lambda s: (len(s), s))
    fig, axes = plt.subplots(1, max(1, len(layers)), figsize=(4.2 * max(1, len(layers)), 3.8), squeeze=False)
    dev = devices.get(f"ud{ud:+.2f}")
    w_star_nominal = None if dev is None else float(dev["w_star_nominal"])
    for k, (ax, layer) in enumerate(zip(axes[0], layers)):
        shape = None
        for mode, r in chosen:
            if layer not in r["weight_hist"]:
                continue
            counts, shape = r["weight_hist"][layer]
            edges = r["weight_hist_edges"]
            frac = counts / max(counts.sum(), 1)
            ax.stairs(frac, edges, color=_MODE_STYLE[mode]["color"], label=_MODE_STYLE[mode]["label"],
                      fill=True, alpha=0.35)
        if w_star_nominal is not None:
            ax.axvline(w_star_nominal, color="k", ls="--", lw=1, label=f"nominal w* = {w_star_nominal:+.3f}")
        ax.axvline(0.0, color="0.5", ls=":", lw=1)
        ax.set(xlabel="effective weight W = G - G_ref", ylabel="fraction of weights", xlim=(-0.8, 0.8),
               title=f"layer {k + 1}: {shape[1]} -> {shape[0]}" if shape else f"layer {k + 1}")
        ax.legend(fontsize=7)
    fig.suptitle(f"(c) weights after training, up_down = {ud:+.1f}, {main_n} states; {title}", fontsize=10)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, FIGURES[2])
    plt.close(fig)

    # (d) accuracy vs number of states
    ud = float(preset["states_up_down"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for mode in MODES:
        pts = sorted((int(r["states"]), float(r["final_test_acc"])) for r in runs.values()
                     if r["mode"] == mode and abs(float(r["up_down"]) - ud) < 1e-9)
        if pts:
            ax.plot(*zip(*pts), **_MODE_STYLE[mode])
    sym = runs.get(point_label("train", "none", 0.0, main_n))
    if sym is not None:
        ax.plot([main_n], [float(sym["final_test_acc"])], "k*", ms=10, label=f"symmetric device ({main_n} states)")
    if fp is not None:
        ax.axhline(float(fp["final_test_acc"]), color="k", ls="--", lw=1, label="floating point")
    ax.set(xscale="log", xlabel="number of states (w_max - w_min)/dw_min", ylabel="test accuracy", ylim=(0, 1),
           title=f"(d) accuracy vs number of states, up_down = {ud:+.1f}\n{title}")
    ticks = sorted({int(r["states"]) for r in runs.values() if r["mode"] != "fp"})
    if ticks:
        from matplotlib.ticker import NullFormatter
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, FIGURES[3])
    plt.close(fig)
    return paths
