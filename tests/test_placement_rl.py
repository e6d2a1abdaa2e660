"""RL placement: reproducible with a seed, finds the best placement of a known reward, respects the budget."""
import itertools

import pytest

from xbarsim.mapping.compensation import LayerProfile
from xbarsim.training.placement_rl import PlacementSearch, greedy_placement, search_placement


def _profiles(n=5):
    return [LayerProfile(f"l{t}", "conv" if t < 2 else "linear", 25 * (t + 1), 10 + t, 1, 1, 1, 1000, 1000)
            for t in range(n)]


def _toy_accuracy(a):
    # layers 1 and 3 matter; the rest do not
    return 0.5 + 0.2 * a[1] + 0.15 * a[3] + 0.01 * a[0]


def test_placement_is_reproducible_with_a_seed_and_differs_in_its_search_with_another():
    prof, costs, sens = _profiles(), [40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0]
    cfg = PlacementSearch(episodes=25, budget_pct=5.0, seed=3)
    a = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg)
    b = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg)
    assert a.placement == b.placement and a.episode_rewards == b.episode_rewards
    c = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg.replace(seed=4))
    assert c.episode_rewards != a.episode_rewards


def test_search_finds_the_best_feasible_placement_of_a_known_reward():
    prof, costs, sens = _profiles(), [40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0]
    model_params, cfg = 5000, PlacementSearch(episodes=60, budget_pct=3.0, penalty=0.5, seed=0)
    res = search_placement(prof, costs, sens, model_params, _toy_accuracy, cfg)
    budget = 0.03 * model_params

    def reward(a):
        return _toy_accuracy(a) - 0.5 * sum(c for c, on in zip(costs, a) if on) / model_params

    feasible = [a for a in itertools.product([False, True], repeat=5)
                if sum(c for c, on in zip(costs, a) if on) <= budget]
    assert res.placement == max(feasible, key=reward)
    assert all(sum(c for c, on in zip(costs, a) if on) <= budget for a in res.evaluated)


def test_greedy_takes_the_most_sensitive_layers_within_the_budget():
    assert greedy_placement([40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0], 5000, 2.4) == \
        (False, True, False, True, False)
    assert greedy_placement([40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0], 5000, 1.0) == \
        (False, True, False, False, False)


def test_rescoring_picks_the_best_rescored_reward_among_the_searchs_top_placements():
    prof, costs, sens = _profiles(), [40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0]
    cfg = PlacementSearch(episodes=25, budget_pct=5.0, penalty=0.5, seed=3, rescore_top=3)

    def reward(acc, a):
        return acc - 0.5 * sum(c for c, on in zip(costs, a) if on) / 5000

    # the faithful score (say, longer-trained units) gives layer 0's unit nothing and weighs layer 3 more
    def faithful(a):
        return 0.5 + 0.1 * a[1] + 0.25 * a[3]

    calls = []
    res = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg,
                           rescore=lambda a: calls.append(a) or faithful(a))
    top = sorted(res.evaluated, key=lambda a: (-reward(res.evaluated[a], a), sum(a), a))[:3]
    none = (False,) * 5
    assert none not in top  # so the empty placement must be added: it needs no training to rescore
    assert calls == top + [none] and set(res.rescored) == set(top) | {none}
    assert res.placement == max(top, key=lambda a: reward(faithful(a), a))
    assert res.accuracy == faithful(res.placement)
    plain = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg.replace(rescore_top=0))
    assert plain.rescored == {} and plain.episode_rewards == res.episode_rewards
    assert plain.placement == max(res.evaluated, key=lambda a: (reward(res.evaluated[a], a), -sum(a)))
    assert plain.placement != res.placement  # layer 0's unit pays only under the cheap score


def test_rescoring_keeps_no_unit_when_every_rescored_placement_loses_to_the_base():
    prof, costs, sens = _profiles(), [40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0]
    cfg = PlacementSearch(episodes=25, budget_pct=5.0, penalty=0.5, seed=3, rescore_top=2)
    # long-trained units that hurt (as at small sigma): the empty placement must win
    res = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg, rescore=lambda a: 0.5 - 0.01 * sum(a))
    assert res.placement == (False,) * 5 and res.accuracy == 0.5


def test_two_rungs_rank_the_final_rung_by_the_middle_rungs_scores():
    prof, costs, sens = _profiles(), [40, 50, 60, 70, 80], [0.01, 0.3, 0.02, 0.2, 0.0]
    cfg = PlacementSearch(episodes=25, budget_pct=5.0, penalty=0.5, seed=3, rescore_top=2, halving_top=4)

    def reward(acc, a):
        return acc - 0.5 * sum(c for c, on in zip(costs, a) if on) / 5000

    def mid(a):  # a middle fidelity that already sees layer 3 matter more, layer 0 not at all
        return 0.5 + 0.1 * a[1] + 0.2 * a[3]

    def final(a):  # and the final one, where layer 1 alone wins
        return 0.5 + 0.3 * a[1] + 0.01 * a[3] - 0.05 * a[2]

    calls = []
    res = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg,
                           rescore=(lambda a: calls.append(("mid", a)) or mid(a),
                                    lambda a: calls.append(("final", a)) or final(a)))
    none = (False,) * 5
    top = sorted(res.evaluated, key=lambda a: (-reward(res.evaluated[a], a), sum(a), a))[:4]
    first = top + ([none] if none not in top else [])
    second = sorted(first, key=lambda a: (-reward(mid(a), a), sum(a), a))[:2]
    second += [none] if none not in second else []
    by_search = sorted(first, key=lambda a: (-reward(res.evaluated.get(a, 0.5), a), sum(a), a))[:2]
    assert set(by_search) != set(second)  # so the final rung's members tell which scores ranked them
    assert calls == [("mid", a) for a in first] + [("final", a) for a in second]
    assert res.halved == {a: mid(a) for a in first} and res.rescored == {a: final(a) for a in second}
    assert res.placement == max(second, key=lambda a: (reward(final(a), a), -sum(a)))
    assert res.accuracy == final(res.placement)
    # one rung, the same search: the final rung then ranks by the search's scores
    one = search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg.replace(halving_top=0), rescore=final)
    assert one.halved == {} and one.episode_rewards == res.episode_rewards
    with pytest.raises(ValueError, match="pair"):
        search_placement(prof, costs, sens, 5000, _toy_accuracy, cfg, rescore=final)
