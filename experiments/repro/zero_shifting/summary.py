"""Zero-shifting results, table and claims, read from the HDF5 file only."""
from __future__ import annotations

import os

from xbarsim.experiments.repro.zero_shifting.spec import point_label
from xbarsim.experiments.sweeps.store import read_points

__all__ = ["read_results", "summarize"]


def read_results(path: str | os.PathLike) -> dict:
    """Everything the figures and the summary need, from the HDF5 file only.

    ``runs[label]`` for training points (``mode``, ``up_down``, ``states``,
    ``final_test_acc``, curves, weight histograms) and ``devices["ud+0.60"]`` for
    device traces; ``meta`` holds the schedule (the base params).
    """
    runs, devices, meta = {}, {}, {}
    for rec in read_points(path):
        if rec.status != "complete":
            continue
        p, m = rec.params, rec.metrics
        meta = {k: p[k] for k in ("epochs", "train_subset", "test_subset", "batch_size", "lr", "lr_schedule",
                                  "hidden", "dataset", "histogram_up_down", "states_up_down", "main_states")}
        meta["seed"] = rec.seed
        if p["kind"] == "device":
            devices[f"ud{p['up_down']:+.2f}"] = dict(m, up_down=p["up_down"], states=p["states"])
            continue
        r = dict(m, mode=p["mode"], up_down=p["up_down"], states=p["states"], wall_s=rec.wall_s, seed=rec.seed)
        layers = sorted(int(k.rsplit("_", 1)[1]) for k in m if k.startswith("weight_hist_") and k[-1].isdigit())
        if layers:
            r["weight_hist"] = {f"layer{k}": (m[f"weight_hist_{k}"], list(m[f"weight_shape_{k}"])) for k in layers}
        runs[point_label("train", p["mode"], p["up_down"], p["states"])] = r
    return {"meta": meta, "runs": runs, "devices": devices}


def _acc(runs: dict, mode: str, up_down: float, states: int) -> float | None:
    r = runs.get(point_label("train", mode, up_down, states))
    return None if r is None else float(r["final_test_acc"])


def _claims(runs: dict, n: int) -> list[dict]:
    """The paper's trend at up_down = +0.6 (and -0.6), main number of states, same epochs."""
    claims = []
    sym = _acc(runs, "none", 0.0, n)
    for ud in (0.6, -0.6):
        sp, none = _acc(runs, "symmetry_point", ud, n), _acc(runs, "none", ud, n)
        if sp is not None and sym is not None:
            claims.append({"claim": f"zero-shifting at up_down={ud:+.1f} is within 3 points of the symmetric "
                                    f"device (no reference, up_down=0), {n} states: |gap| in points",
                           "value": round(100 * abs(sp - sym), 2), "op": "<=", "target": 3.0})
        if sp is not None and none is not None:
            claims.append({"claim": f"zero-shifting at up_down={ud:+.1f} gains at least 15 points over no "
                                    f"reference, {n} states (the paper's trend: asymmetry collapses training)",
                           "value": round(100 * (sp - none), 2), "op": ">=", "target": 15.0})
    return claims


def summarize(h5_path: str | os.PathLike) -> dict:
    """Accuracy table mode x states x up_down, the float baseline and the claims."""
    res = read_results(h5_path)
    runs, meta = res["runs"], res["meta"]
    table: dict[str, dict[str, dict[str, float]]] = {}
    rows = []
    for key, r in sorted(runs.items()):
        if r["mode"] == "fp":
            continue
        table.setdefault(r["mode"], {}).setdefault(str(int(r["states"])), {})[f"{float(r['up_down']):+.1f}"] = \
            round(float(r["final_test_acc"]), 4)
        rows.append({"key": key, "mode": r["mode"], "up_down": float(r["up_down"]), "states": int(r["states"]),
                     "final_test_acc": float(r["final_test_acc"]),
                     "test_acc_per_epoch": [round(float(a), 4) for a in r.get("test_acc", [])],
                     "wall_s": round(float(r["wall_s"]), 1)})
    fp = runs.get("fp")
    return {
        "dataset": meta.get("dataset"),
        "data_source": next((str(r.get("data_source", "")) for r in runs.values()), None),
        "schedule": meta,
        "fp_test_acc": None if fp is None else round(float(fp["final_test_acc"]), 4),
        "accuracy": table,
        "accuracy_table_keys": "accuracy[mode][states][up_down] = final test accuracy",
        "runs": rows,
        "claims": _claims(runs, int(meta.get("main_states", 0))) if meta else [],
    }
