"""One BNN input-split point at (network, A): baseline, split with and without retraining, devices, cost.

The unsplit baseline is trained once per network and schedule
(:func:`~xbarsim.experiments.repro.base.cached_artifact`); a point splits it for
``A``-row arrays, scores it without retraining, fine-tunes it with the split in place,
deploys it on binary-cell crossbars (ideal check, then the device Monte Carlo) and costs
the conventional and split mappings (:mod:`xbarsim.mapping.bnn_cost`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from xbarsim.experiments.repro.bnn_split.spec import PARAMS
from xbarsim.experiments.sweeps.tasks import Task

__all__ = ["TASK", "run_point"]


def _data(params: dict, seed: int) -> dict:
    import torch

    from xbarsim.experiments.data.datasets import load_dataset
    b = load_dataset(params["dataset"], data_dir=params["data_dir"] or None, flatten=params["network"] == "mlp")
    perm = torch.randperm(len(b.train_labels), generator=torch.Generator().manual_seed(seed))
    n = params["train_subset"] or len(perm)
    idx = perm[:n]
    m = params["test_subset"] or len(b.test_labels)
    return {"x": b.train_images[idx], "y": b.train_labels[idx], "xt": b.test_images[:m], "yt": b.test_labels[:m],
            "source": b.source}


def _network(params: dict):
    from xbarsim.mapping.bnn_networks import bnn_cnn, bnn_mlp
    if params["network"] == "mlp":
        return bnn_mlp([int(w) for w in params["mlp_widths"].split(",")])
    ch = tuple(int(c) for c in params["cnn_channels"].split(","))
    return bnn_cnn(ch, int(params["cnn_fc"]))  # type: ignore[arg-type]


def _train_cfg(params: dict, epochs: int, lr: float):
    from xbarsim.training.bnn import BNNTrainConfig
    return BNNTrainConfig(epochs=epochs, batch_size=params["batch_size"], lr=lr,
                          glorot_lr_scale=params["glorot_lr_scale"])


def _baseline(params: dict, seed: int, data: dict) -> dict:
    """The trained unsplit network's state dict, built once per network and schedule."""
    import torch

    from xbarsim.experiments.repro.base import cached_artifact
    from xbarsim.training.bnn import evaluate_bnn, train_bnn

    key = {k: params[k] for k in ("network", "mlp_widths", "cnn_channels", "cnn_fc", "train_subset", "test_subset",
                                  "epochs",
                                  "batch_size", "lr", "glorot_lr_scale", "dataset", "data_dir")}
    key["seed"] = seed

    def build() -> dict:
        torch.manual_seed(seed)
        net = _network(params)
        hist = train_bnn(net, data["x"], data["y"], _train_cfg(params, params["epochs"], params["lr"]), seed)
        return {"state": net.state_dict(), "loss": hist["loss"], "epoch_time_s": hist["epoch_time_s"],
                "test_acc": evaluate_bnn(net, data["xt"], data["yt"])}

    return cached_artifact(f"bnn-baseline-{params['network']}", key, build)


def _split_and_retrain(base, params: dict, seed: int, data: dict, A: int | None, out: dict):
    """Split the baseline for ``A``-row arrays; its accuracy without and with retraining (split in place)."""
    import torch

    from xbarsim.mapping.bnn_layers import BinaryBlock
    from xbarsim.mapping.bnn_split import split_network
    from xbarsim.training.bnn import evaluate_bnn, train_bnn
    split = split_network(base, A, equal_groups=params["network"] == "cnn", inherit_bn=True)
    out["groups"] = np.asarray([m.n_groups for m in split.modules() if isinstance(m, BinaryBlock)])
    out["acc_no_retrain"] = out["acc_baseline"] if A is None else evaluate_bnn(split, data["xt"], data["yt"])
    if A is None:
        out["acc_retrained"] = out["acc_baseline"]
    else:
        torch.manual_seed(seed)
        cfg = _train_cfg(params, params["retrain_epochs"], params["retrain_lr"])
        hist = train_bnn(split, data["x"], data["y"], cfg, seed + 1)
        out["retrain_loss"] = np.asarray(hist["loss"])
        out["retrain_s"] = float(sum(hist["epoch_time_s"]))
        out["acc_retrained"] = evaluate_bnn(split, data["xt"], data["yt"])
    return split


def _deploy(split, params: dict, seed: int, data: dict, out: dict) -> None:
    """Program the split network onto binary-cell arrays: the ideal deployment must equal the torch
    network bit for bit; then ``n_mc`` device samples per (on/off ratio, variation)."""
    import torch

    from xbarsim.devices import BinaryCellConfig
    from xbarsim.mapping.bnn_deploy import deploy_bnn
    k = params["mc_test_subset"] or len(data["yt"])
    xm, ym = data["xt"][:k], data["yt"][:k]
    with torch.no_grad():
        ref = split.eval()(xm)
    ideal = deploy_bnn(split, BinaryCellConfig(), seed=seed)
    out["ideal_deploy_bit_exact"] = bool(torch.equal(ideal(xm), ref))
    out["acc_retrained_mc_subset"] = float((ref.argmax(1) == ym).float().mean())
    counters = ideal.counters()
    out["deployed_adc_conversions"] = counters["adc"]
    out["deployed_sense_amp_decisions"] = counters["sense_amp"]
    ratios = [float(r) for r in params["on_off_ratios"].split(",")]
    variations = [float(v) for v in params["variations"].split(",")]
    acc = np.zeros((len(ratios), len(variations), params["n_mc"]))
    for i, r in enumerate(ratios):
        for j, v in enumerate(variations):
            cells = BinaryCellConfig(on_off_ratio=r, variation=v)
            # the arrays are reused, re-programmed with a new device sample; without variation the
            # cells are deterministic, so one evaluation stands for every sample
            for s in range(params["n_mc"] if v > 0 else 1):
                ideal.program(cells, seed=seed * 1_000_003 + 7919 * (i * len(variations) + j) + s)
                acc[i, j, s] = float((ideal(xm).argmax(1) == ym).float().mean())
            if v == 0:
                acc[i, j, 1:] = acc[i, j, 0]
    out["device_acc"] = acc
    out["on_off_ratios"] = np.asarray(ratios)
    out["variations"] = np.asarray(variations)


def _mapping_costs(base, split, data: dict, A: int, out: dict) -> None:
    """Counts, energy, area and latency of the conventional and the split mapping at ``A``."""
    from xbarsim.mapping.bnn_cost import bnn_geometry, mapping_cost
    shape = tuple(data["xt"].shape[1:])
    for mapping, net in (("conventional", base), ("split", split)):
        c = mapping_cost(bnn_geometry(net, shape), A, mapping)
        rep = c["report"].to_dict()
        out[f"{mapping}_adc_count"] = int(c["adc_count"])
        out[f"{mapping}_hidden_adc_count"] = int(c["hidden_adc_count"])
        out[f"{mapping}_sense_amps"] = int(c["inventory"].n_sense_amps)
        out[f"{mapping}_arrays"] = int(c["inventory"].n_arrays)
        out[f"{mapping}_energy_j"] = float(rep["total_energy_j"])
        out[f"{mapping}_area_mm2"] = float(rep["total_area_mm2"])
        out[f"{mapping}_latency_s"] = float(rep["latency_s"])
        out[f"{mapping}_adc_energy_j"] = float(rep["energy_j"]["adc"])
        out[f"{mapping}_adc_area_mm2"] = float(rep["area_mm2"]["adc"])
        hid = c["hidden_report"].to_dict()
        out[f"{mapping}_hidden_energy_j"] = float(hid["total_energy_j"])
        out[f"{mapping}_hidden_area_mm2"] = float(hid["total_area_mm2"])


def run_point(params: dict, seed: int) -> dict:
    """Baseline, split without and with retraining, device Monte Carlo and cost at one (network, A)."""
    import time

    t0 = time.perf_counter()
    data = _data(params, seed)
    base_art = _baseline(params, seed, data)
    base = _network(params)
    base.load_state_dict(base_art["state"])
    A = int(params["array_rows"]) or None
    out: dict[str, Any] = {"data_source": str(data["source"]), "baseline_loss": np.asarray(base_art["loss"]),
                           "baseline_train_s": float(sum(base_art["epoch_time_s"]))}
    out["acc_baseline"] = float(base_art["test_acc"])
    split = _split_and_retrain(base, params, seed, data, A, out)
    _deploy(split, params, seed, data, out)
    if A is not None:
        _mapping_costs(base, split, data, A, out)
    out["point_s"] = time.perf_counter() - t0
    return out


TASK = Task("bnn-split", run_point, PARAMS)
