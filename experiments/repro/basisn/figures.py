"""BasisN-style figures from the HDF5 file only: accuracy vs M, cycles and EDP vs K, the sensitivities."""
from __future__ import annotations

from pathlib import Path

from xbarsim.experiments.repro.base import save_figure
from xbarsim.experiments.repro.basisn.sensitivity import batch_sensitivity, stored_over_capacity, write_sensitivity
from xbarsim.experiments.repro.basisn.summary import read_results
from xbarsim.experiments.repro.basisn_hardware import WRITE_PULSES_S

__all__ = ["draw_figures"]


def draw_figures(h5_path, figures_dir) -> list[Path]:
    """Accuracy vs M, cycles per inference vs K, EDP vs K (one panel per model), and the write-time
    and batch sensitivities, from the HDF5 file."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = read_results(h5_path)
    figures_dir = Path(figures_dir)
    models = sorted(res)
    paths: list[Path] = []
    if not models:
        return paths
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        e = res[model]
        q = e["params"]["main_bits"]
        pts = [b for b in e["basis"] if b["coeff_bits"] == q]
        ms = [b["n_bases"] for b in pts]
        ax.plot(ms, [100 * b["acc_digital"] for b in pts], "o-", label=f"BasisN-style, digital ({q}-bit c)")
        ax.plot(ms, [100 * b["acc_analog"] for b in pts], "s--", label="BasisN-style on crossbars")
        for b in e["basis"]:
            if b["n_bases"] == e["params"]["main_bases"] and b["coeff_bits"] != q:
                ax.plot([b["n_bases"]], [100 * b["acc_analog"]], "^", color="tab:green")
                ax.annotate(f"{b['coeff_bits']}-bit", (b["n_bases"], 100 * b["acc_analog"]), fontsize=7,
                            xytext=(4, -3), textcoords="offset points")
        if e["fp"]:
            ax.axhline(100 * e["fp"]["acc_fp"], color="k", lw=1, label="full precision (unconstrained), all test")
        if pts:  # the crossbar runs see a test subset: its own full-precision reference
            ax.axhline(100 * pts[0]["acc_fp_analog_subset"], color="tab:orange", lw=1, ls=":",
                       label=f"full precision, crossbar's {e['params']['analog_test_subset']} images")
        ax.set_xlabel(f"bases M (segment length {e['params']['array_size']})")
        ax.set_ylabel("test accuracy [%]")
        ax.set_title(f"{model}-style, Fashion-MNIST")
        ax.legend(fontsize=7)
    fig.tight_layout()
    paths += save_figure(fig, figures_dir, "fig_accuracy_vs_bases")
    plt.close(fig)
    for metric, label, name in (("cycles", "cycles per inference", "fig_cycles_vs_arrays"),
                                ("edp", "EDP per inference [J s]", "fig_edp_vs_arrays")):
        fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.8), squeeze=False)
        for ax, model in zip(axes[0], models):
            cost = res[model]["cost"]
            if not cost:
                continue
            ks = [c["n_arrays"] for c in cost]
            ax.loglog(ks, [c[f"reprog_{metric}"] for c in cost], "o-", color="tab:red",
                      label="conventional, reprogramming")
            ax.loglog(ks, [c[f"fit_{metric}"] for c in cost], ":", color="tab:gray",
                      label=f"conventional, weights fit (K={cost[0]['n_blocks']})")
            ax.loglog(ks, [c[f"basisn_{metric}"] for c in cost], "s-", color="tab:blue", label="BasisN-style")
            ax.set_xlabel("available arrays K (32x32)")
            ax.set_ylabel(label)
            ax.set_title(f"{model}-style ({cost[0]['n_weights'] / 1e3:.0f}k weights)")
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths += save_figure(fig, figures_dir, name)
        plt.close(fig)
    paths += _draw_write_sensitivity(res, models, figures_dir, plt)
    paths += _draw_batch_sensitivity(res, models, figures_dir, plt)
    return paths


def _draw_write_sensitivity(res: dict, models: list, figures_dir: Path, plt) -> list[Path]:
    """Worst BasisN/reprogramming cycles and EDP ratio (weights >= 10x capacity) against the verify
    iterations, per write pulse and programming granularity, with the preset's point and 1 %."""
    panels = []
    for model in models:
        over = stored_over_capacity(res[model])
        if over:
            panels.append((model, over[1], write_sensitivity(*over)["grid"]))
    if not panels:
        return []
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 7), squeeze=False)
    colors = dict(zip([round(t * 1e9, 3) for t in WRITE_PULSES_S], ("tab:green", "tab:orange", "tab:blue")))
    for j, (model, hw, grid) in enumerate(panels):
        for i, (metric, label) in enumerate((("cycles_ratio", "cycles"), ("edp_ratio", "EDP"))):
            ax = axes[i][j]
            for prog, ls in (("cell", "-"), ("row", "--")):
                for tp, color in colors.items():
                    pts = [g for g in grid if g["programming"] == prog and g["write_pulse_ns"] == tp]
                    ax.loglog([g["verify_iterations"] for g in pts], [100 * g[metric] for g in pts], ls,
                              marker="o", ms=3, color=color,
                              label=f"{'row-parallel' if prog == 'row' else 'cell-serial'}, {tp:g} ns pulse")
            preset = next(g for g in grid if g["programming"] == hw.programming and g["verify_iterations"] ==
                          hw.verify_iterations and g["write_pulse_ns"] == round(hw.write_pulse_s * 1e9, 3))
            ax.plot([preset["verify_iterations"]], [100 * preset[metric]], "k*", ms=12, label="preset")
            ax.axhline(1.0, color="tab:red", lw=1, ls=":", label="paper: 1 %")
            ax.set_xlabel(f"program-and-verify iterations (verify read {hw.read_latency_s * 1e9:g} ns)")
            ax.set_ylabel(f"BasisN / reprogramming, {label} [%]")
            ax.set_title(f"{model}-style, worst K with weights >= 10x capacity")
            if i == 0 and j == 0:
                ax.legend(fontsize=6)
    fig.tight_layout()
    paths = save_figure(fig, figures_dir, "fig_write_sensitivity")
    plt.close(fig)
    return paths


def _draw_batch_sensitivity(res: dict, models: list, figures_dir: Path, plt) -> list[Path]:
    """Worst BasisN/reprogramming cycles and EDP ratio (weights >= 10x capacity) against the batch
    that shares each reprogramming, one line per model and metric, with 1 %."""
    curves = []
    for model in models:
        over = stored_over_capacity(res[model])
        if over:
            curves.append((model, batch_sensitivity(*over)["grid"]))
    if not curves:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (model, grid), color in zip(curves, ("tab:blue", "tab:orange", "tab:green")):
        b = [g["batch"] for g in grid]
        ax.loglog(b, [100 * g["cycles_ratio"] for g in grid], "-o", ms=3, color=color, label=f"{model}-style, cycles")
        ax.loglog(b, [100 * g["edp_ratio"] for g in grid], "--s", ms=3, color=color, label=f"{model}-style, EDP")
    ax.axhline(1.0, color="tab:red", lw=1, ls=":", label="paper: 1 %")
    ax.set_xlabel("inputs per batch sharing each reprogramming")
    ax.set_ylabel("BasisN / reprogramming, per inference [%]")
    ax.set_title("worst K with weights >= 10x capacity")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = save_figure(fig, figures_dir, "fig_batch_sensitivity")
    plt.close(fig)
    return paths
