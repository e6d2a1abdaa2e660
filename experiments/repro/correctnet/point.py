"""One CorrectNet-style point: the networks under variation, the base, the placement search, the placements.

:func:`run_point` reads as the method of the package docstring, one step per
function: :func:`_scored_networks` (clean and under variation), :func:`_choose_base`,
:func:`_layer_profile` (sensitivity and unit costs), :func:`_search` (the RL
placement, with :class:`CompensationUnits` training and scoring each candidate's
units), :func:`_deploy` (RL, greedy and all-layer units on the test chips) and
:func:`_heldout`.  Every random draw is seeded from the point's seed (chips
``seed``, validation chips ``seed + 23``, sensitivity ``seed + 11``, search units
``seed + 5``, final units ``seed + 7``), so the steps' order does not change a number.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any

import numpy as np

from xbarsim.experiments.repro.correctnet.networks import device_nonideality, network, splits
from xbarsim.experiments.repro.correctnet.spec import NETWORK_OPTIONS, PARAMS, network_param
from xbarsim.experiments.sweeps.tasks import Task

__all__ = ["TASK", "run_point", "NetworkRecipe", "CompensationUnits"]


@dataclasses.dataclass(frozen=True)
class NetworkRecipe:
    """The point's network's own options (``networks[model]`` of the preset; :data:`NETWORK_OPTIONS`)."""

    epochs: int
    vat_epochs: int
    train_subset: int
    test_subset: int
    train_sigma: float

    @classmethod
    def of(cls, params: dict) -> "NetworkRecipe":
        return cls(**{name: params[network_param(params["model"], name)] for name in NETWORK_OPTIONS})

    def applied(self, params: dict) -> dict:
        """``params`` with this recipe under the plain names, which :func:`network` reads."""
        return dict(params, epochs=self.epochs, vat_epochs=self.vat_epochs, train_subset=self.train_subset,
                    train_sigma=self.train_sigma)


def _mc(out: dict, prefix: str, r) -> None:
    out[f"{prefix}_mean"], out[f"{prefix}_std"], out[f"{prefix}_accs"] = r.mean, r.std, r.accuracies


def _not_scored(out: dict, prefix: str) -> None:
    out[f"{prefix}_mean"] = out[f"{prefix}_std"] = float("nan")
    out[f"{prefix}_accs"] = np.zeros(0)


def _scored_networks(nets: dict, test: tuple, nid, n_mc: int, seed: int, out: dict) -> None:
    """Clean test accuracy of each network, then its accuracy over ``n_mc`` chips (common seeds)."""
    from xbarsim.mapping.nonideal import accuracy, evaluate_mc
    for name in ("plain", "reg", "vat"):
        out[f"clean_{name}"] = accuracy(nets[name], *test) if nets[name] is not None else float("nan")
    for name in ("plain", "reg", "vat"):
        if nets[name] is None:
            _not_scored(out, name)
        else:
            _mc(out, name, evaluate_mc(nets[name], test, nid, n_mc, seed))


def _choose_base(nets: dict, val: tuple, nid, n_search: int, seed: int, out: dict) -> tuple:
    """The network that gets compensated: the variation-aware one where it scores higher on the validation
    split at this σ (``n_search`` chips), else the Lipschitz-only one (a design-time choice; no test data)."""
    from xbarsim.mapping.nonideal import evaluate_mc
    reg, base = nets["reg"], "reg"
    out["val_reg"] = evaluate_mc(nets["reg"], val, nid, n_search, seed + 23, through_crossbar=False).mean
    out["val_vat"] = float("nan")
    if nets["vat"] is not None:
        out["val_vat"] = evaluate_mc(nets["vat"], val, nid, n_search, seed + 23, through_crossbar=False).mean
        if out["val_vat"] > out["val_reg"]:
            reg, base = nets["vat"], "vat"
    out["base"] = base
    out["clean_base"] = out[f"clean_{base}"]
    return reg, base


@dataclasses.dataclass
class _Profile:
    names: list
    profiles: list
    sensitivity: list       # per layer, in ``names`` order
    unit_costs: list        # parameters of one unit per layer
    model_params: int
    config: Any             # CompensationConfig of the search and greedy placements


def _layer_profile(reg, val: tuple, nid, params: dict, seed: int, out: dict) -> _Profile:
    """Per-layer sensitivity of the base network, its layers' sizes and the cost of a unit on each."""
    from xbarsim.mapping.compensation import CompensationConfig, profile_layers, unit_cost
    from xbarsim.mapping.nonideal import layer_sensitivity
    sens = layer_sensitivity(reg, val, nid, params["n_mc_search"], seed + 11, mode=params["sensitivity"])
    profiles = profile_layers(reg, (1, 28, 28))
    names = [p.name for p in profiles]
    cfg = CompensationConfig(rank=params["rank"], source=params["source"])
    costs = [unit_cost(p, cfg)[0] for p in profiles]
    out["sensitivity"] = np.array([sens[n] for n in names])
    out["layer_params"] = np.array([p.params for p in profiles])
    out["layer_macs"] = np.array([p.macs for p in profiles])
    out["unit_params"] = np.array(costs)
    return _Profile(names, profiles, [sens[n] for n in names], costs, sum(p.numel() for p in reg.parameters()), cfg)


class CompensationUnits:
    """Compensation units on the base network ``reg`` for a placement: trained, cached, scored.

    ``train`` trains fresh units for ``steps`` steps; ``final`` trains a placement's
    final units once (``final_steps``, seed ``seed + 7``) and keeps them, so the last
    search rung and the test share them; ``validation_score(units)`` is the search's
    score of a placement whose units ``units(placement)`` returns (the empty placement:
    the base network's validation score).
    """

    def __init__(self, reg, names: list, nid, train: tuple, val: tuple, params: dict, seed: int, device: bool,
                 base_score: float):
        self.reg, self.names, self.nid, self.data, self.val = reg, names, nid, train, val
        self.params, self.seed, self.device, self.base_score = params, seed, device, base_score
        self._final: dict = {}  # (placement, rank) -> final units

    def train(self, placement, config, steps: int, train_seed: int):
        from xbarsim.mapping.compensation import add_compensation
        from xbarsim.training.compensate import CompensationTraining, train_compensation
        p = self.params
        model = add_compensation(copy.deepcopy(self.reg), [n for n, on in zip(self.names, placement) if on],
                                 config, self.seed)
        train_compensation(model, self.nid, self.data, CompensationTraining(
            steps=steps, batch_size=128, lr=0.01, chip_pool=p["chip_pool"] if self.device else 0,
            schedule=p["unit_schedule"]), train_seed)
        return model

    def final(self, placement, config):
        key = (tuple(placement), config.rank)
        if key not in self._final:
            self._final[key] = self.train(placement, config, self.params["final_steps"], self.seed + 7)
        return self._final[key]

    def validation_score(self, units):
        from xbarsim.mapping.nonideal import evaluate_mc

        def score(placement):
            if not any(placement):
                return self.base_score  # the base network on the same validation chips, scored before
            return evaluate_mc(units(placement), self.val, self.nid, self.params["n_mc_search"], self.seed + 23,
                               through_crossbar=False).mean
        return score


def _search(units: CompensationUnits, prof: _Profile, params: dict, seed: int, out: dict) -> tuple:
    """The RL placement: REINFORCE over placements scored with short-trained units, then successive
    halving (``halving_steps`` units, then the final units).  Stores the search's record in ``out``."""
    from xbarsim.training.placement_rl import PlacementSearch, search_placement
    cfg = prof.config
    search = PlacementSearch(episodes=params["episodes"], penalty=params["penalty"],
                             budget_pct=params["budget_pct"], seed=seed, lr=0.03, entropy=0.02,
                             rescore_top=params["rescore_top"], halving_top=params["halving_top"])
    search_score = units.validation_score(lambda a: units.train(a, cfg, params["search_steps"], seed + 5))
    halving_score = units.validation_score(lambda a: units.train(a, cfg, params["halving_steps"], seed + 5))
    rescore_score = units.validation_score(lambda a: units.final(a, cfg))
    res = search_placement(prof.profiles, prof.unit_costs, prof.sensitivity, prof.model_params, search_score,
                           search, rescore=(halving_score, rescore_score) if params["halving_top"] else
                           rescore_score)
    n = len(prof.names)
    out["rl_search_reward"] = res.reward
    out["rl_search_accuracy"] = res.accuracy
    out["rl_distinct_placements"] = len(res.evaluated)
    out["rl_episode_rewards"] = np.array(res.episode_rewards)
    out["rl_evaluated_placements"] = np.array(list(res.evaluated), dtype=np.int64)
    out["rl_evaluated_accuracies"] = np.array(list(res.evaluated.values()))
    out["rl_rescored_placements"] = np.array(list(res.rescored), dtype=np.int64).reshape(-1, n)
    out["rl_rescored_accuracies"] = np.array(list(res.rescored.values()))
    out["rl_halved_placements"] = np.array(list(res.halved), dtype=np.int64).reshape(-1, n)
    out["rl_halved_accuracies"] = np.array(list(res.halved.values()))
    return res.placement


def _deploy(placements: dict, units: CompensationUnits, prof: _Profile, test: tuple, params: dict, seed: int,
            out: dict) -> dict:
    """Each placement's overhead, and its final units' accuracy over the test chips; returns the deployed
    networks (device points test only RL: the crossbar path is slow)."""
    from xbarsim.mapping.compensation import compensation_overhead
    from xbarsim.mapping.nonideal import evaluate_mc
    deployed: dict = {}
    for variant, (placement, config) in placements.items():
        chosen = [n for n, on in zip(prof.names, placement) if on]
        over = compensation_overhead(prof.profiles, chosen, config, prof.model_params)
        out[f"{variant}_placement"] = np.array(placement, dtype=np.int64)
        out[f"{variant}_rank"] = config.rank
        out[f"{variant}_params_pct"] = over["params_pct"]
        out[f"{variant}_macs_pct"] = over["macs_pct"]
        if units.device and variant != "rl":
            _not_scored(out, variant)
            continue
        deployed[variant] = units.final(placement, config) if chosen else units.reg
        _mc(out, variant, evaluate_mc(deployed[variant], test, units.nid, params["n_mc"], seed))
    return deployed


def _heldout(models: dict, held: tuple, nid, n_mc: int, seed: int, out: dict) -> None:
    """The claim's variants once more, on test images that no choice of the recipe has seen."""
    from xbarsim.mapping.nonideal import accuracy, evaluate_mc
    out["n_heldout"] = len(held[1])
    if out["n_heldout"]:
        out["heldout_clean_plain"] = accuracy(models["plain"], *held)
        for variant, model in models.items():
            r = evaluate_mc(model, held, nid, n_mc, seed)
            out[f"heldout_{variant}_mean"], out[f"heldout_{variant}_std"] = r.mean, r.std
            out[f"heldout_{variant}_accs"] = r.accuracies


def run_point(params: dict, seed: int) -> dict:
    """One (network, σ) or (network, device setting) point: the five variants and the three placements."""
    import torch
    from xbarsim.mapping.compensation import fit_rank_to_budget
    from xbarsim.mapping.nonideal import LognormalVariation, Nonideality, accuracy
    from xbarsim.training.placement_rl import greedy_placement

    torch.set_num_threads(max(1, int(os.environ.get("XBARSIM_CORRECTNET_THREADS", "1"))))
    device = params["kind"] == "device"
    recipe = NetworkRecipe.of(params)
    n_test = params["device_test_subset"] if device else recipe.test_subset
    params = recipe.applied(params)
    d = splits(params["dataset"], params["data_dir"], params["train_subset"], params["val_subset"],
               params["seed_train"])
    test = d["test"] if not n_test else (d["test"][0][:n_test], d["test"][1][:n_test])
    val = d["val"]
    nets = {"plain": network(params, 0.0, d["train"]), "reg": network(params, params["beta"], d["train"])}
    nets["vat"] = None if device or params["train_sigma"] <= 0 else network(
        params, params["beta"], d["train"], params["train_sigma"], params["vat_epochs"])
    nid = device_nonideality(params["device"], params["weight_fraction"]) if device else Nonideality(
        lognormal=LognormalVariation(params["sigma"]))
    out: dict[str, Any] = {"data_source": d["source"], "n_test": len(test[1])}
    _scored_networks(nets, test, nid, params["n_mc"], seed, out)
    reg, base = _choose_base(nets, val, nid, params["n_mc_search"], seed, out)
    prof = _layer_profile(reg, val, nid, params, seed, out)
    units = CompensationUnits(reg, prof.names, nid, d["train"], val, params, seed, device, out[f"val_{base}"])

    none = (False,) * len(prof.names)
    # no search where the regularized network already keeps its accuracy (the units could only cost)
    skip = out[f"val_{base}"] >= accuracy(reg, *val) - params["skip_below_drop"]  # on the validation split
    out["search_skipped"] = bool(skip)
    if skip:
        rl_placement, out["rl_search_reward"], out["rl_search_accuracy"] = none, float("nan"), float("nan")
        out["rl_distinct_placements"] = 0
        out["rl_episode_rewards"] = np.zeros(0)
    else:
        rl_placement = _search(units, prof, params, seed, out)
    placements = {
        "rl": (rl_placement, prof.config),
        "greedy": (none if skip else greedy_placement(prof.unit_costs, prof.sensitivity, prof.model_params,
                                                      params["budget_pct"]), prof.config),
        "all": (none if skip else (True,) * len(prof.names),
                fit_rank_to_budget(prof.profiles, prof.names, prof.config, params["budget_pct"], prof.model_params)),
    }
    deployed = _deploy(placements, units, prof, test, params, seed, out)

    n_held = 0 if device or not n_test else params["heldout_subset"]
    held = (d["test"][0][n_test:n_test + n_held], d["test"][1][n_test:n_test + n_held])
    heldout_models = {"plain": nets["plain"], "rl": deployed.get("rl"), "greedy": deployed.get("greedy")}
    _heldout(heldout_models, held, nid, params["n_mc"], seed, out)
    return out


TASK = Task("correctnet", run_point, PARAMS)
