r"""CorrectNet-style RL placement of compensation units (REINFORCE, plain torch).

The agent walks the analog layers in order and decides at each whether to attach a
compensation unit.  At layer :math:`t` its state is

.. math::
    s_t = \big[\tfrac{t}{L-1},\ \log_{10}\text{fan\_in}/4,\ \log_{10}\text{fan\_out}/4,\ [\text{conv}],\
           \text{params share},\ \text{MACs share},\ \text{unit cost}/B,\ \text{sensitivity}/\max\text{sensitivity},\
           \text{budget used}/B,\ a_{t-1}\big]

(``B`` the parameter budget, the sensitivity measured beforehand:
:func:`xbarsim.mapping.nonideal.layer_sensitivity`).  A two-layer policy network
outputs :math:`p_t = P(a_t = 1 \mid s_t)`; an action that would exceed the budget is
masked to 0.  At the end of an episode the placement :math:`a` is scored by the
caller's ``evaluate(a)`` (accuracy under variations with the units trained),
memoised, and the reward is

.. math:: r(a) = \mathrm{acc}(a) - \lambda\,\text{overhead}(a) \quad(\text{overhead as a fraction of parameters}).

REINFORCE with a moving-average baseline :math:`b` and an entropy bonus (weight
``entropy``, keeps the policy exploring: rewards of nearby placements differ by
little, and without it the policy settles after a few episodes):
:math:`\theta \leftarrow \theta + \eta\,\nabla_\theta\big[(r - b)\sum_t \log \pi(a_t\mid s_t) + \epsilon \sum_t H(\pi(\cdot\mid s_t))\big]` (Adam).
Without rescoring the result is the best placement seen.

**Rescoring** (``rescore_top = k > 0`` and a ``rescore`` callable): the search's
scores come from cheap, short-trained units, and nearby placements then lie within
their noise.  The ``k`` placements of highest search reward, and the empty one (no
units, so nothing to train), are scored again by ``rescore(a)`` (the caller's
higher-fidelity accuracy: units trained as long as the final ones), and the best
*rescored* reward wins -- successive halving (Jamieson & Talwalkar, AISTATS 2016;
Li et al., "Hyperband", JMLR 2018), with the policy as the proposal distribution.
With ``halving_top = h > 0`` and ``rescore`` a pair ``(mid, final)`` there are two
rungs: the ``h`` best search placements (and the empty one) are scored by
``mid(a)`` (say, units trained a third as long as the final ones), and the ``k``
best of those by ``final(a)``; each rung ranks by the previous rung's reward.
All randomness comes from ``seed``, so a search is reproducible.  The paper's
agent (state, reward, algorithm) is not published in detail: this one is
reconstructed.

Baselines for the same budget: :func:`greedy_placement` (the most sensitive layers
first while within the budget) and compensating every layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from xbarsim.devices.validation import Serialisable, require_number
from xbarsim.mapping.compensation import LayerProfile

__all__ = ["PlacementSearch", "PlacementResult", "layer_states", "search_placement", "greedy_placement"]

Placement = Tuple[bool, ...]
N_FEATURES = 10


@dataclass(frozen=True)
class PlacementSearch(Serialisable):
    """``episodes`` REINFORCE episodes; ``lr`` (Adam); ``hidden`` units of the policy; ``penalty`` ``lambda``
    (reward per unit of parameter-overhead fraction); ``budget_pct`` the parameter budget in %;
    ``baseline_decay`` of the moving-average baseline; ``entropy`` bonus weight; ``seed``; ``rescore_top``
    the number of best placements scored again by the caller's final ``rescore`` (0: none);
    ``halving_top`` the size of a middle rung before it (0: none; see the module docstring)."""

    episodes: int = 30
    lr: float = 0.05
    hidden: int = 16
    penalty: float = 0.5
    budget_pct: float = 5.0
    baseline_decay: float = 0.8
    entropy: float = 0.01
    seed: int = 0
    rescore_top: int = 0
    halving_top: int = 0

    def __post_init__(self) -> None:
        n = "PlacementSearch"
        require_number(n, "episodes", self.episodes, 1, None, integer=True)
        require_number(n, "lr", self.lr, 0.0, None, lo_open=True)
        require_number(n, "hidden", self.hidden, 1, 1024, integer=True)
        require_number(n, "penalty", self.penalty, 0.0, None)
        require_number(n, "budget_pct", self.budget_pct, 0.0, 100.0, lo_open=True)
        require_number(n, "baseline_decay", self.baseline_decay, 0.0, 1.0, hi_open=True)
        require_number(n, "entropy", self.entropy, 0.0, None)
        require_number(n, "seed", self.seed, 0, 2**62, integer=True)
        require_number(n, "rescore_top", self.rescore_top, 0, None, integer=True)
        require_number(n, "halving_top", self.halving_top, 0, None, integer=True)


@dataclass
class PlacementResult:
    """Best placement, its accuracy and reward, every distinct placement evaluated, per-episode rewards,
    the final rung's rescored accuracies (empty without rescoring; then ``accuracy`` is the search's score)
    and the middle rung's (``halved``; empty without one)."""

    placement: Placement
    accuracy: float
    reward: float
    evaluated: Dict[Placement, float] = field(default_factory=dict)
    episode_rewards: List[float] = field(default_factory=list)
    final_probabilities: List[float] = field(default_factory=list)
    rescored: Dict[Placement, float] = field(default_factory=dict)
    halved: Dict[Placement, float] = field(default_factory=dict)


def layer_states(profiles: Sequence[LayerProfile], unit_params: Sequence[int], sensitivity: Sequence[float],
                 budget_params: float) -> np.ndarray:
    """The static part of the state (all but ``budget used`` and ``a_{t-1}``), ``(L, N_FEATURES)`` float32."""
    n = len(profiles)
    total_p = sum(p.params for p in profiles) or 1
    total_m = sum(p.macs for p in profiles) or 1
    smax = max(max(sensitivity), 1e-9)
    s = np.zeros((n, N_FEATURES), dtype=np.float32)
    for t, p in enumerate(profiles):
        s[t, :8] = [t / max(n - 1, 1), math.log10(p.fan_in) / 4, math.log10(p.fan_out) / 4,
                    1.0 if p.kind == "conv" else 0.0, p.params / total_p, p.macs / total_m,
                    unit_params[t] / max(budget_params, 1e-9), sensitivity[t] / smax]
    return s


class _Policy(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(s)).squeeze(-1)


def search_placement(profiles: Sequence[LayerProfile], unit_params: Sequence[int], sensitivity: Sequence[float],
                     model_params: int, evaluate: Callable[[Placement], float],
                     config: PlacementSearch = PlacementSearch(),
                     rescore: Callable[[Placement], float] | Tuple[Callable[[Placement], float], Callable[
                         [Placement], float]] | None = None) -> PlacementResult:
    """REINFORCE search of the module docstring; ``evaluate(placement) -> accuracy`` is called once per
    distinct placement (memoised here), ``rescore(placement) -> accuracy`` once for each of the
    ``config.rescore_top`` best (ties: fewer units first) and then the empty placement if not among them.
    With ``config.halving_top > 0``, ``rescore`` is ``(mid, final)`` and ``mid`` first scores the
    ``halving_top`` best search placements (and the empty one) the same way."""
    n = len(profiles)
    if not (len(unit_params) == len(sensitivity) == n):
        raise ValueError("search_placement: profiles, unit_params and sensitivity must have one entry per layer")
    budget = config.budget_pct / 100.0 * model_params
    static = torch.from_numpy(layer_states(profiles, unit_params, sensitivity, budget))
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    policy = _Policy(config.hidden)
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(config.seed + 1)
    memo: Dict[Placement, float] = {}
    baseline = None
    rewards: List[float] = []

    def overhead(a: Placement) -> float:
        return sum(c for c, on in zip(unit_params, a) if on) / max(model_params, 1)

    def reward(acc: float, a: Placement) -> float:
        return acc - config.penalty * overhead(a)

    def score(a: Placement) -> Tuple[float, float]:
        if a not in memo:
            memo[a] = float(evaluate(a))
        return memo[a], reward(memo[a], a)

    for _ in range(config.episodes):
        used, prev = 0.0, 0.0
        logp = torch.zeros(())
        ent = torch.zeros(())
        actions = []
        for t in range(n):
            s = static[t].clone()
            s[8], s[9] = used / max(budget, 1e-9), prev
            p = policy(s)
            feasible = used + unit_params[t] <= budget
            if feasible:
                a = bool(torch.rand((), generator=gen) < p.detach())
                logp = logp + torch.log(p if a else 1 - p)
                q = p.clamp(1e-6, 1 - 1e-6)
                ent = ent - (q * torch.log(q) + (1 - q) * torch.log(1 - q))
            else:
                a = False
            actions.append(a)
            used += unit_params[t] if a else 0.0
            prev = 1.0 if a else 0.0
        placement = tuple(actions)
        _, r = score(placement)
        rewards.append(r)
        baseline = r if baseline is None else config.baseline_decay * baseline + (1 - config.baseline_decay) * r
        advantage = r - baseline
        if logp.requires_grad:
            opt.zero_grad()
            (-advantage * logp - config.entropy * ent).backward()
            opt.step()
    best = max(memo, key=lambda a: (score(a)[1], -sum(a)))
    rescored: Dict[Placement, float] = {}
    halved: Dict[Placement, float] = {}
    if rescore is not None and config.rescore_top > 0:
        if config.halving_top > 0:
            if not (isinstance(rescore, tuple) and len(rescore) == 2):
                raise ValueError("search_placement: with halving_top > 0, rescore must be a pair (mid, final)")
            mid, last = rescore
        elif callable(rescore):
            mid, last = None, rescore
        else:
            raise ValueError("search_placement: rescore must be callable (or a pair (mid, final) with halving_top)")
        empty = (False,) * n

        def rung(scores: Dict[Placement, float], k: int, fn: Callable[[Placement], float]) -> Dict[Placement, float]:
            ranked = sorted(scores, key=lambda a: (-reward(scores[a], a), sum(a), a))[:k]
            if empty not in ranked:  # the base network, always feasible, needs no units to score
                ranked.append(empty)
            return {a: float(fn(a)) for a in ranked}

        scores = memo
        if mid is not None:
            halved = scores = rung(scores, config.halving_top, mid)
        rescored = rung(scores, config.rescore_top, last)
        best = max(rescored, key=lambda a: (reward(rescored[a], a), -sum(a)))
    with torch.no_grad():
        probs, used, prev = [], 0.0, 0.0
        for t in range(n):
            s = static[t].clone()
            s[8], s[9] = used / max(budget, 1e-9), prev
            probs.append(float(policy(s)))
            used += unit_params[t] if best[t] else 0.0
            prev = 1.0 if best[t] else 0.0
    acc = rescored[best] if best in rescored else memo[best]
    return PlacementResult(best, acc, reward(acc, best), dict(memo), rewards, probs, rescored, halved)


def greedy_placement(unit_params: Sequence[int], sensitivity: Sequence[float], model_params: int,
                     budget_pct: float) -> Placement:
    """The most sensitive layers first, each added if the total stays within ``budget_pct`` % of parameters."""
    budget = budget_pct / 100.0 * model_params
    chosen = [False] * len(unit_params)
    used = 0.0
    for t in sorted(range(len(unit_params)), key=lambda t: -sensitivity[t]):
        if sensitivity[t] > 0 and used + unit_params[t] <= budget:
            chosen[t] = True
            used += unit_params[t]
    return tuple(chosen)
