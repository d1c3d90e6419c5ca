"""Adaptive with many GPUs spends rounds only where they decide something: a located knob takes a parallel
search rather than a question per round, a clear verdict of a design over many knobs does not wait a round for
replicates (unless it calls the gap noise or a pair among its culprits may be acting), and a design that took
few rounds spends the rounds left before the target on verdicts still open."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from attribution.benchmark import run_trials, summarize, trial_setup
from attribution.families import family, knob_names
from attribution.scenario import parse_scenario
from attribution.simulator import Simulator
from attribution.strategies import adaptive
from attribution.strategies.adaptive import Search
from attribution.strategies.adaptive_verdicts import ROUND_TARGET, Verdict, candidate_pairs, judge, unreplicated_stands
from attribution.strategies.common import Evaluator


def one_knob(count: int, culprit: str) -> Simulator:
    scenario = parse_scenario({"knobs": knob_names(count), "orig_wer": 10.0, "effects": {culprit: 2.0},
                               "seed_std": 0.05})
    return Simulator(scenario, np.random.default_rng(0))


@pytest.mark.parametrize(("jobs", "rounds", "first_round"), [(1, (5, 12), [16]), (16, (1, 2), [
    2, 4, 5, 7, 9, 11, 13, 15, 16, 18, 20, 22, 24, 26, 27, 29])])
def test_locate_asks_as_many_nested_questions_a_round_as_there_are_gpus(jobs, rounds, first_round):
    """31 knobs, one holds the effect: one GPU bisects (the first question switches the half of them, 16; 5
    rounds or more); 16 GPUs ask 16 nested sets at once (sizes near 31 i / 17), which narrow them to about two
    knobs, and the next round decides. The old code asked one question a round on any number of GPUs (14 rounds
    of one training where a check's bracket was open by chance: single culprit of 32, benchmark)."""
    simulator = one_knob(32, "k17")
    ev = Evaluator(knob_names(32), simulator, jobs)
    search = Search(ev, knob_names(32))
    group = frozenset(knob_names(32)) - {"k00"}
    inside, outside = ev.start, ev.start - group
    ev.ensure([inside, outside], 5)  # replicates: the noise the posterior needs (8 degrees of freedom)
    before, asked = ev.rounds, len(simulator.log)
    assert search.locate(group, inside, outside) == "k17"
    assert rounds[0] <= ev.rounds - before <= rounds[1]
    switched = [len(inside - hybrid) for hybrid, _ in simulator.log[asked:asked + len(first_round)]]
    assert sorted(switched) == first_round


@pytest.mark.parametrize("name", ["single_culprit", "two_culprits", "many_small"])
def test_32_knobs_on_16_gpus_take_at_most_four_rounds_on_average(name):
    """The stages over 32 knobs take three rounds on 16 GPUs; a round of replicates after them made it four
    or five (1000 trials: 4.5, 4.4 and 5.0 rounds); now a clear verdict stands there without them."""
    score = summarize("adaptive", run_trials(family(name, 32), "adaptive", 40, 2026, jobs=16), jobs=16)
    assert score.mean_rounds <= 4.0 and score.success_rate >= 0.95, score


def designed(effects: dict[str, float], pairs: list[dict]) -> tuple[Search, Verdict]:
    """The verdict after one unreplicated design over 8 knobs on 16 GPUs (no follow-up yet)."""
    knobs = knob_names(8)
    scenario = parse_scenario({"knobs": knobs, "orig_wer": 10.0, "effects": effects, "interactions": pairs,
                               "seed_std": 0.05})
    search = Search(Evaluator(knobs, Simulator(scenario, np.random.default_rng(1)), 16), knobs)
    search.run(len(knobs))
    singles = [f for f in search.active if len(f) == 1]
    return search, judge(search, singles, candidate_pairs(search, singles))


def test_a_pure_pair_passing_for_two_main_effects_waits_for_replicates():
    """A verdict that names a pure pair's partners as two main effects (as noise may leave it, the pair not
    selected) needs replicates even in the last round; the same verdict with the pair stands."""
    search, verdict = designed({}, [{"knobs": ["k02", "k05"], "effect": 2.0}])
    assert not search.ev.noise()[1] and verdict.culprits == {"k02", "k05"} and verdict.pairs
    late = search.ev.rounds + 1
    assert unreplicated_stands(search, verdict, late)
    assert not unreplicated_stands(search, replace(verdict, pairs=[]), late)


def test_two_additive_culprits_stand_without_replicates_only_in_the_last_round():
    search, verdict = designed({"k02": 2.0, "k05": 1.0}, [])
    assert verdict.culprits == {"k02", "k05"} and not search.ev.noise()[1]
    assert unreplicated_stands(search, verdict, search.ev.rounds + 1)
    assert not unreplicated_stands(search, verdict, search.ev.rounds + 2)


def test_a_verdict_of_noise_never_stands_without_replicates():
    search, verdict = designed({}, [])
    assert not verdict.real and not search.ev.noise()[1]
    assert not unreplicated_stands(search, verdict, search.ev.rounds + 1)


@pytest.mark.parametrize("trial", [45, 74, 242])
def test_a_pure_pair_among_16_knobs_on_8_gpus_is_not_called_noise_from_unreplicated_runs(trial):
    """Regression: when a clear verdict of unreplicated runs could stand in the last round, these benchmark
    trials (seed 2026) ended after 3 rounds with "the gap is not distinguishable from noise" (gap standard error
    0.5-0.6 without a replicate); with replicates they name the pair."""
    scenario = family("pure_pair", 16)
    simulator, knobs = trial_setup(scenario, 2026, trial)
    finding = adaptive(knobs, simulator, jobs=8)
    assert finding.culprits == {"k00", "k01"}, finding.notes


def test_a_design_that_took_few_rounds_spends_the_rounds_left_on_open_verdicts():
    """8 knobs on 16 GPUs: the design takes one round; a culprit still unclear after two follow-up rounds got
    no more (in 21 of 40 trials at 3 rounds), although the round target allowed a fourth. Now a verdict is left
    undecided only when the target is used up (heavy noise at 8 knobs, 1000 trials: 76 % -> 85 %)."""
    scenario = family("heavy_noise", 8)
    for seed in range(20):
        finding = adaptive(list(scenario.knobs), Simulator(scenario, np.random.default_rng(seed)), jobs=16)
        assert not finding.undecided or finding.rounds >= ROUND_TARGET, (seed, finding.rounds, finding.undecided)
