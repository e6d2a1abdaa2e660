"""Inference-physics results, tables and claims, read from the HDF5 file only."""
from __future__ import annotations

import os

import numpy as np

from xbarsim.experiments.repro.inference_physics.spec import METHODS
from xbarsim.experiments.sweeps.store import read_points

__all__ = ["read_results", "summarize"]


def read_results(path: str | os.PathLike) -> dict:
    """``drift[device][training][compensation]``, ``ir[size][method]``, ``solver[size]`` from the HDF5 file."""
    out: dict = {"drift": {}, "ir": {}, "solver": {}}
    for rec in read_points(path):
        if rec.status != "complete":
            continue
        p, m = rec.params, dict(rec.metrics, wall_s=rec.wall_s)
        if p["kind"] == "drift":
            n = int(m["n_chips"])
            times = np.asarray(m["times"])
            m["test_acc"] = np.asarray(m["test_acc"]).reshape(n, times.size)
            m["val_acc"] = np.asarray(m["val_acc"]).reshape(n, times.size)
            out["drift"].setdefault(p["device"], {}).setdefault(p["training"], {})[p["compensation"]] = m
        elif p["kind"] == "ir":
            out["ir"].setdefault(int(p["array_size"]), {})[p["method"]] = m
        else:
            out["solver"][int(p["array_size"])] = m
    return out


def _at(m: dict, t: float) -> np.ndarray | None:
    times = np.asarray(m["times"])
    k = np.flatnonzero(np.isclose(times, t))
    return None if k.size == 0 else m["test_acc"][:, k[0]]


def _claims(res: dict) -> list[dict]:
    claims = []
    dr = res["drift"]

    def get(dev, tr, comp):
        return dr.get(dev, {}).get(tr, {}).get(comp)

    def first_last(m):
        return _at(m, float(np.asarray(m["times"])[0])), _at(m, float(np.asarray(m["times"])[-1]))

    m = get("pcm", "hwa", "global")
    if m is not None:
        a0, a1 = first_last(m)
        claims.append({"claim": "PCM-like, HWA-trained LeNet-5, global drift compensation: test accuracy drop from "
                                "the first to the last read time (1 s -> 1 year), mean over chips, in points",
                       "value": round(100 * float(a0.mean() - a1.mean()), 2), "op": "<=", "target": 2.0})
    m_none, m_glob = get("pcm", "plain", "none"), get("pcm", "plain", "global")
    if m_none is not None and m_glob is not None:
        t_last = float(np.asarray(m_glob["times"])[-1])
        claims.append({"claim": "PCM-like, plain-trained: global drift compensation gains at the last read time "
                                "(1 year) over no compensation, mean over chips, in points",
                       "value": round(100 * float(_at(m_glob, t_last).mean() - _at(m_none, t_last).mean()), 2),
                       "op": ">=", "target": 0.0})
    m_p, m_h = get("pcm", "plain", "global"), get("pcm", "hwa", "global")
    if m_p is not None and m_h is not None:
        t_last = float(np.asarray(m_h["times"])[-1])
        claims.append({"claim": "PCM-like with global compensation at the last read time (1 year): HWA-trained minus "
                                "plain-trained accuracy, in points",
                       "value": round(100 * float(_at(m_h, t_last).mean() - _at(m_p, t_last).mean()), 2),
                       "op": ">=", "target": 0.0})
    m = get("rram", "hwa", "global")
    if m is not None:
        a0, a1 = first_last(m)
        claims.append({"claim": "CMO/HfOx RRAM, HWA-trained, global compensation: accuracy drop from 1 s to 1 year, "
                                "in points",
                       "value": round(100 * float(a0.mean() - a1.mean()), 2), "op": "<=", "target": 5.0})
    ir = res["ir"]
    sizes = sorted(ir)
    if sizes and "solve" in ir[sizes[-1]]:
        m = ir[sizes[-1]]["solve"]
        claims.append({"claim": f"network solve, {sizes[-1]}x{sizes[-1]} arrays, smallest wire resistance "
                                f"(r_wire/R_on = {float(m['r_wires'][0]):g}): accuracy within 1 point of the "
                                "wire-free read, in points below it",
                       "value": round(100 * float(m["ideal_test_acc"] - m["test_acc"][0]), 2), "op": "<=",
                       "target": 1.0})
    if len(sizes) > 1 and "solve" in ir[sizes[0]] and "solve" in ir[sizes[-1]]:
        claims.append({"claim": f"network solve at the largest wire resistance: {sizes[0]}x{sizes[0]} arrays minus "
                                f"{sizes[-1]}x{sizes[-1]} arrays, accuracy in points (longer wires drop more)",
                       "value": round(100 * float(ir[sizes[0]]["solve"]["test_acc"][-1]
                                                  - ir[sizes[-1]]["solve"]["test_acc"][-1]), 2),
                       "op": ">=", "target": 0.0})
    mid = 256 if 256 in ir else (sizes[-1] if sizes else None)
    if mid is not None and set(METHODS) <= set(ir[mid]):
        gap = np.abs(np.asarray(ir[mid]["solve"]["test_acc"]) - np.asarray(ir[mid]["approx"]["test_acc"]))
        claims.append({"claim": f"aihwkit's approximation against the network solve, {mid}x{mid} arrays: largest "
                                "accuracy gap over the wire resistances, in points",
                       "value": round(100 * float(gap.max()), 2), "op": "<=", "target": 5.0})
    sol = res["solver"]
    if sol:
        claims.append({"claim": "network solve against the direct sparse solve: largest relative deviation over "
                                "the solver sizes",
                       "value": float(max(m["rel_error"] for m in sol.values())), "op": "<=", "target": 1e-9})
        big = max(sol)
        claims.append({"claim": f"network solve of a {big}x{big} array for a batch of the preset's size: time "
                                "per batch over a plain read of the same batch (setup once per programming "
                                "excluded; see the solver table)",
                       "value": round(float(sol[big]["ratio"]), 3), "op": "<=", "target": 20.0})
    return claims


def summarize(h5_path: str | os.PathLike) -> dict:
    res = read_results(h5_path)
    drift = {}
    for dev, by_tr in res["drift"].items():
        for tr, by_comp in by_tr.items():
            for comp, m in by_comp.items():
                drift.setdefault(dev, {}).setdefault(tr, {})[comp] = {
                    f"{float(t):g}": {"mean": round(float(m["test_acc"][:, k].mean()), 4),
                                      "std": round(float(m["test_acc"][:, k].std(ddof=1)) if m["test_acc"].shape[0] > 1
                                                   else 0.0, 4),
                                      "val_mean": round(float(m["val_acc"][:, k].mean()), 4)}
                    for k, t in enumerate(np.asarray(m["times"]))}
                drift[dev][tr]["digital"] = round(float(m["digital_test_acc"]), 4)
    ir = {str(size): {method: {"r_wires": [float(r) for r in m["r_wires"]],
                               "test_acc": [round(float(a), 4) for a in m["test_acc"]],
                               "val_acc": [round(float(a), 4) for a in m["val_acc"]],
                               "ideal_test_acc": round(float(m["ideal_test_acc"]), 4),
                               "seconds": [round(float(s), 2) for s in m["seconds"]]}
                      for method, m in by_m.items()}
          for size, by_m in sorted(res["ir"].items())}
    solver = {str(n): {k: float(m[k]) for k in ("rel_error", "ir_drop_rel", "t_read", "t_solve", "t_setup",
                                                 "t_direct", "ratio")}
              for n, m in sorted(res["solver"].items())}
    return {"tables": {"drift": drift, "ir_drop": ir, "solver": solver},
            "table_keys": {"drift": "drift[device][training][compensation][t in s] = test accuracy mean/std "
                                    "over chips (val_mean: validation split)",
                           "ir_drop": "ir_drop[array size][method] over r_wire / R_on",
                           "solver": "solver[n]: rel_error vs direct sparse solve; times in s"},
            "claims": _claims(res)}
