"""BNN input-split accuracy table (percent), cost table and claims, read from the HDF5 file only."""
from __future__ import annotations

import os

import numpy as np

from xbarsim.experiments.sweeps.store import read_points

__all__ = ["read_results", "summarize", "split_label"]


def read_results(path: str | os.PathLike) -> dict:
    """``results[network][A]`` = the point's metrics (A = 0: unsplit), from the HDF5 file only."""
    res: dict[str, dict[int, dict]] = {}
    meta: dict = {}
    for rec in read_points(path):
        if rec.status != "complete":
            continue
        p = rec.params
        meta = {k: p.get(k) for k in ("train_subset", "test_subset", "epochs", "retrain_epochs", "batch_size", "lr",
                                      "retrain_lr",
                                  "n_mc", "mc_test_subset", "dataset", "mlp_widths", "cnn_channels", "cnn_fc")}
        res.setdefault(p["network"], {})[int(p["array_rows"])] = dict(rec.metrics, wall_s=rec.wall_s)
    return {"meta": meta, "results": res}


def split_label(a: int) -> str:
    return "unsplit" if a == 0 else f"A={a}"


def _pct(x: float) -> float:
    return round(100.0 * float(x), 2)


def summarize(h5_path: str | os.PathLike) -> dict:
    """The accuracy table (percent), the cost table, and the claims."""
    data = read_results(h5_path)
    table: dict[str, dict] = {}
    cost: dict[str, dict] = {}
    for net, by_a in data["results"].items():
        table[net] = {}
        for a in sorted(by_a, key=lambda a: (a != 0, -a)):
            m = by_a[a]
            row = {"groups_per_layer": [int(g) for g in np.asarray(m["groups"])],
                   "retrained": _pct(m["acc_retrained"]), "no_retraining": _pct(m["acc_no_retrain"]),
                   "baseline": _pct(m["acc_baseline"]),
                   "ideal_deploy_bit_exact": bool(m["ideal_deploy_bit_exact"]),
                   "retrained_on_mc_subset": _pct(m["acc_retrained_mc_subset"]), "devices": {}}
            acc = np.asarray(m["device_acc"])
            for i, r in enumerate(np.asarray(m["on_off_ratios"])):
                for j, v in enumerate(np.asarray(m["variations"])):
                    row["devices"][f"on/off {r:g}, variation {100 * v:g}%"] = {
                        "mean": _pct(acc[i, j].mean()), "std": _pct(acc[i, j].std(ddof=1) if acc.shape[2] > 1 else 0),
                        "n": int(acc.shape[2]) if v > 0 else 1}
            table[net][split_label(a)] = row
            if a:
                cost.setdefault(net, {})[split_label(a)] = {
                    mp: {"adcs": int(m[f"{mp}_adc_count"]), "hidden_adcs": int(m[f"{mp}_hidden_adc_count"]),
                         "sense_amps": int(m[f"{mp}_sense_amps"]), "arrays": int(m[f"{mp}_arrays"]),
                         "energy_nj": round(1e9 * float(m[f"{mp}_energy_j"]), 3),
                         "area_mm2": round(float(m[f"{mp}_area_mm2"]), 4),
                         "hidden_energy_nj": round(1e9 * float(m[f"{mp}_hidden_energy_j"]), 3),
                         "hidden_area_mm2": round(float(m[f"{mp}_hidden_area_mm2"]), 4)}
                    for mp in ("conventional", "split")}
    return {"dataset": data["meta"].get("dataset"), "schedule": data["meta"], "accuracy_percent": table,
            "cost_per_inference": cost, "claims": _claims(data["results"])}


def _claims(results: dict) -> list[dict]:
    claims = []
    mlp = results.get("mlp", {})
    smallest = min((a for a in mlp if a), default=None)
    if 0 in mlp and smallest is not None:
        gap = 100 * (mlp[smallest]["acc_retrained"] - mlp[0]["acc_baseline"])
        claims.append({"claim": f"split MLP retrained at A={smallest} is within 1.5 points of the unsplit BNN "
                                f"(retrained minus unsplit test accuracy, points; paper: MNIST 98.8 -> 98.7)",
                       "value": round(gap, 2), "op": ">=", "target": -1.5})
    for net, by_a in results.items():
        for a in sorted((a for a in by_a if a), reverse=True):
            m = by_a[a]
            claims.append({"claim": f"{net} A={a}: retraining with the split recovers what splitting the baseline "
                                    f"directly loses (retrained minus split-without-retraining, points)",
                           "value": round(100 * (m["acc_retrained"] - m["acc_no_retrain"]), 2), "op": ">=",
                           "target": 0.0})
            claims.append({"claim": f"{net} A={a}: the split mapping's hidden layers need no ADC (ADC count)",
                           "value": int(m["split_hidden_adc_count"]), "op": "<=", "target": 0})
        if smallest is not None and smallest in by_a:
            m = by_a[smallest]
            claims.append({"claim": f"{net} A={smallest}: hidden-layer energy per inference, split relative to "
                                    f"conventional (multi-bit ADC) mapping",
                           "value": round(m["split_hidden_energy_j"] / m["conventional_hidden_energy_j"], 4),
                           "op": "<=", "target": 1.0})
        exact = all(bool(m["ideal_deploy_bit_exact"]) for m in by_a.values())
        claims.append({"claim": f"{net}: ideal deployment on arrays equals the torch BNN bit for bit (1 = yes)",
                       "value": int(exact), "op": ">=", "target": 1})
    return claims
