"""CorrectNet-style figures from the HDF5 file only: accuracy vs σ, sensitivity and placement, devices."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xbarsim.experiments.repro.base import save_figure
from xbarsim.experiments.repro.correctnet.spec import VARIANTS
from xbarsim.experiments.repro.correctnet.summary import read_results

__all__ = ["draw_figures"]


_STYLE = {"clean": dict(color="k", ls="--"), "plain": dict(color="tab:red", marker="o"),
          "reg": dict(color="tab:orange", marker="s"), "vat": dict(color="tab:brown", marker="D"),
          "rl": dict(color="tab:green", marker="^"),
          "greedy": dict(color="tab:blue", marker="v", ls=":"), "all": dict(color="tab:purple", marker="x", ls=":")}
_LABEL = {"clean": "clean", "plain": "under variations", "reg": "+ Lipschitz reg.",
          "vat": "+ Lipschitz reg., variation-aware training", "rl": "reg. + RL compensation",
          "greedy": "reg. + greedy compensation", "all": "reg. + all-layer compensation"}


def draw_figures(h5_path: str | os.PathLike, figures_dir: str | os.PathLike) -> list[Path]:
    """accuracy_vs_sigma (per network) and sensitivity_placement (per network, at the half-accuracy σ)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = read_results(h5_path)
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    models = sorted(res["sigma"])
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.8), squeeze=False)
        for ax, model in zip(axes[0], models):
            by = res["sigma"][model]
            sig = sorted(by)
            ax.plot(sig, [by[s]["clean_plain"] for s in sig], label=_LABEL["clean"], **_STYLE["clean"])
            for v in VARIANTS:
                if not all(f"{v}_mean" in by[s] for s in sig) or not any(np.isfinite(by[s][f"{v}_mean"]) for s in sig):
                    continue
                ax.errorbar(sig, [by[s][f"{v}_mean"] for s in sig], yerr=[by[s][f"{v}_std"] for s in sig],
                            label=_LABEL[v], capsize=2, ms=4, **_STYLE[v])
            ax.set_xlabel("lognormal σ")
            ax.set_ylabel("test accuracy (mean ± std over chips)")
            ax.set_title(f"{model}: CorrectNet-style")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        paths += save_figure(fig, figures_dir, "accuracy_vs_sigma")
        plt.close(fig)

        fig, axes = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.6), squeeze=False)
        for ax, model in zip(axes[0], models):
            by = res["sigma"][model]
            sig = sorted(by)
            half = [s for s in sig if by[s]["plain_mean"] <= 0.5 * by[s]["clean_plain"]]
            s = half[0] if half else sig[-1]
            m = by[s]
            sens = np.asarray(m["sensitivity"])
            x = np.arange(len(sens))
            colors = ["tab:green" if a else "0.7" for a in np.asarray(m["rl_placement"])]
            ax.bar(x, sens, color=colors)
            for k, (g, a) in enumerate(zip(np.asarray(m["greedy_placement"]), np.asarray(m["rl_placement"]))):
                if g:
                    ax.plot(k, sens[k], "v", color="tab:blue", ms=7)
            ax.set_xticks(x)
            ax.set_xticklabels([f"L{k + 1}" for k in x])
            ax.set_ylabel("accuracy won back, this layer alone exact" if m["sensitivity_mode"] == "recovery"
                          else "accuracy drop, this layer alone varied", fontsize=8)
            ax.set_title(f"{model}, σ = {s:g}: green = RL placement, ▼ = greedy")
            ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        paths += save_figure(fig, figures_dir, "sensitivity_placement")
        plt.close(fig)
    if any(res["device"].values()):
        models_d = sorted(res["device"])
        fig, axes = plt.subplots(1, len(models_d), figsize=(5.2 * len(models_d), 3.6), squeeze=False)
        for ax, model in zip(axes[0], models_d):
            by = res["device"][model]
            keys = sorted(by)
            shown = ("clean", "plain", "reg", "rl")
            width = 0.8 / len(shown)
            for j, v in enumerate(shown):
                vals = [by[k]["clean_plain"] if v == "clean" else by[k][f"{v}_mean"] for k in keys]
                errs = [0.0 if v == "clean" else by[k][f"{v}_std"] for k in keys]
                ax.bar(np.arange(len(keys)) + j * width, vals, width, yerr=errs, label=_LABEL[v],
                       color=_STYLE[v]["color"], capsize=2)
            ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
            ax.set_xticklabels(keys)
            ax.set_ylim(0, 1)
            ax.set_ylabel("test accuracy")
            ax.set_title(f"{model}: programmed onto devices")
        axes[0][-1].legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        paths += save_figure(fig, figures_dir, "device_programming")
        plt.close(fig)
    return paths
