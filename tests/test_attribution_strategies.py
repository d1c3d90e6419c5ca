"""Strategies over the simulator: planted culprits, noise, ddmin minimality, screening aliasing, batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attribution.scenario import CULPRIT_SHARE, parse_scenario
from attribution.simulator import Run, Simulator
from attribution.strategies import STRATEGIES, Finding, SeedNumbers, adaptive, ddmin, one_at_a_time, screening
from attribution.strategies.screening import aliases, design

KNOBS = [f"k{i}" for i in range(8)]
EASY = parse_scenario({"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0, "k6": 0.05}, "seed_std": 0.1})
NOISE = parse_scenario({"knobs": KNOBS, "orig_wer": 17.5, "effects": {}, "seed_std": 0.3})


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("seed", [1, 2])
def test_every_strategy_finds_a_planted_culprit_in_an_easy_scenario(name, seed):
    finding = STRATEGIES[name](KNOBS, Simulator(EASY, np.random.default_rng(seed)))
    assert finding.culprits == {"k3"}, finding
    assert finding.strategy == name and finding.runs > 0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_zero_effect_scenario_is_noise(name):
    hits = [STRATEGIES[name](KNOBS, Simulator(NOISE, np.random.default_rng(s))).culprits for s in range(5)]
    assert sum(bool(h) for h in hits) <= 1  # a 5 % false alarm rate allows one in five at most


def test_the_noise_finding_says_so_and_how_many_runs_would_decide():
    finding = adaptive(KNOBS, Simulator(NOISE, np.random.default_rng(0)))
    assert finding.culprits == frozenset()
    assert "not distinguishable from noise" in finding.notes[0] and "runs of orig and of start" in finding.notes[0]


def test_strategies_count_every_training():
    sim = Simulator(EASY, np.random.default_rng(3))
    finding = one_at_a_time(KNOBS, sim, seeds=2)
    assert finding.runs == sim.runs == 2 * (2 + 2 * len(KNOBS))  # baselines + both directions, 2 seeds each
    assert sim.batches == 2  # the baselines, then every one-knob hybrid at once


def test_one_at_a_time_flags_an_interaction_by_disagreeing_directions():
    s = parse_scenario({"knobs": KNOBS, "orig_wer": 17.5, "interactions": [{"knobs": ["k1", "k5"], "effect": 2.0}],
                        "seed_std": 0.05})
    finding = one_at_a_time(KNOBS, Simulator(s, np.random.default_rng(4)))
    assert finding.culprits == {"k1", "k5"}
    assert {n.split(":")[0] for n in finding.notes} == {"k1", "k5"}


def test_adaptive_finds_both_partners_of_an_interaction_and_several_culprits():
    s = parse_scenario({"knobs": [f"k{i:02d}" for i in range(16)], "orig_wer": 17.5,
                        "effects": {"k02": 1.5, "k09": 1.2}, "interactions": [{"knobs": ["k05", "k14"], "effect": 1.3}],
                        "seed_std": 0.05})
    finding = adaptive(list(s.knobs), Simulator(s, np.random.default_rng(5)))
    assert finding.culprits == s.culprits() == {"k02", "k09", "k05", "k14"}
    assert any("acts together with another knob" in n for n in finding.notes)


def test_screening_aliases_match_the_design_and_are_stated():
    matrix, size = design(KNOBS)
    assert size == 16 and (matrix == scipy.linalg.hadamard(16)).all()
    table = aliases(KNOBS)
    for knob, pairs in table.items():
        column = matrix[:, KNOBS.index(knob) + 1]
        for a, b in pairs:  # the product of the two knobs' columns is this knob's column
            assert (matrix[:, KNOBS.index(a) + 1] * matrix[:, KNOBS.index(b) + 1] == column).all()
    assert ("k0", "k1") in table["k2"]  # columns 1 xor 2 = 3
    finding = screening(KNOBS, Simulator(EASY, np.random.default_rng(2)))
    assert finding.runs == 17  # 16 design rows (the first is start) + orig
    assert any(n.startswith("k3's main effect is aliased with the interactions") for n in finding.notes)
    assert finding.notes[0].startswith("resolution III: 16 runs")


@settings(max_examples=40, deadline=None)
@given(effects=st.dictionaries(st.sampled_from(KNOBS), st.floats(-0.5, 3.0), min_size=1, max_size=5),
       pair=st.lists(st.sampled_from(KNOBS), min_size=2, max_size=2, unique=True), pair_effect=st.floats(0, 2.0),
       seed=st.integers(0, 10**6))
def test_ddmin_result_closes_the_gap_and_is_one_minimal_without_noise(effects, pair, pair_effect, seed):
    scenario = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": effects, "seed_std": 0.0,
                               "interactions": [{"knobs": pair, "effect": pair_effect}]})
    assume(scenario.gap > 0.01)  # else there is nothing to close
    finding = ddmin(KNOBS, Simulator(scenario, np.random.default_rng(seed)))
    start = frozenset(KNOBS)

    def left(to_orig: frozenset[str]) -> float:
        return scenario.wer(start - to_orig) - scenario.orig_wer

    assert left(finding.culprits) < CULPRIT_SHARE * scenario.gap
    for knob in finding.culprits:  # 1-minimal: without any one of its knobs the set no longer closes the gap
        assert left(finding.culprits - {knob}) >= CULPRIT_SHARE * scenario.gap


@settings(max_examples=25, deadline=None)
@given(culprits=st.dictionaries(st.sampled_from(KNOBS), st.floats(1.0, 3.0), min_size=1, max_size=3),
       seed=st.integers(0, 10**6))
def test_adaptive_finds_exactly_the_additive_culprits_without_noise(culprits, seed):
    scenario = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": culprits, "seed_std": 0.0})
    expected = scenario.culprits()
    assert adaptive(KNOBS, Simulator(scenario, np.random.default_rng(seed))).culprits == expected


def test_adaptive_screens_when_the_seed_noise_is_large_against_the_gap():
    s = parse_scenario({"knobs": [f"k{i:02d}" for i in range(16)], "orig_wer": 17.5, "effects": {"k09": 1.0},
                        "seed_std": 0.6})
    findings = [adaptive(list(s.knobs), Simulator(s, np.random.default_rng(seed))) for seed in range(10)]
    screened = [f for f in findings if any("fractional factorial" in n for n in f.notes)]
    assert len(screened) >= 5  # the measured noise, not the scenario, sends it there
    assert all("small against the seed noise" in f.notes[0] for f in screened)
    assert sum(f.culprits == {"k09"} for f in screened) >= len(screened) - 1
    assert all(f.runs >= 32 for f in screened)  # every row of the 32-run design


def test_adaptive_main_effects_recover_an_additive_model_by_least_squares():
    from attribution.strategies.adaptive import main_effects
    from attribution.strategies.common import Evaluator

    s = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": {"k1": 1.5, "k4": -0.5}, "seed_std": 0.0})
    ev = Evaluator(KNOBS, Simulator(s, np.random.default_rng(0)))
    ev.ensure([frozenset(), frozenset(KNOBS), *(frozenset(KNOBS) - {k} for k in KNOBS)], 1)
    effects, _, _ = main_effects(ev)
    assert effects == pytest.approx([1.5 if k == "k1" else -0.5 if k == "k4" else 0.0 for k in KNOBS], abs=1e-9)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_strategy_replayed_over_the_same_wers_asks_the_same_questions(name, seed):
    """`run --strategy` resumes and the Sisyphus workflow advances by replaying the strategy over finished
    runs: given the same WERs for the same (hybrid, seed), it must ask the same questions in the same order."""
    scenario = parse_scenario({"knobs": [f"k{i}" for i in range(6)], "orig_wer": 15.0,
                               "effects": {"k1": 1.0, "k4": 0.6}, "seed_std": 0.3})
    simulator = Simulator(scenario, np.random.default_rng(seed))
    first = STRATEGIES[name](list(scenario.knobs), simulator)
    recorded: dict[frozenset[str], list] = {}
    for hybrid, wer in simulator.log:
        recorded.setdefault(hybrid, []).append(wer)
    asked: list[tuple[frozenset[str], int]] = []
    used: dict[frozenset[str], int] = {}

    def replay(hybrids, seeds):
        runs = []
        for hybrid in hybrids:
            start = used.get(hybrid, 0)
            used[hybrid] = start + seeds
            asked.append((hybrid, seeds))
            runs.append([Run(w) for w in recorded[hybrid][start:start + seeds]])
        return runs

    second = STRATEGIES[name](list(scenario.knobs), replay)
    assert (second.culprits, second.runs, second.effects, second.notes) == (first.culprits, first.runs,
                                                                            first.effects, first.notes)
    assert sum(seeds for _, seeds in asked) == simulator.runs


def test_a_finding_survives_json_and_seed_numbers_continue_per_hybrid():
    finding = Finding("adaptive", frozenset({"lr", "l2"}), 14, {"lr": 0.4}, ["lr: the partner of l2"])
    assert Finding.from_json(json.loads(json.dumps(finding.to_json()))) == finding
    assert finding.summary()[0] == "strategy adaptive: culprits l2, lr (14 trainings); effects lr +0.40"
    seeds = SeedNumbers()
    assert list(seeds.take(frozenset({"lr"}), 2)) == [1, 2] and list(seeds.take(frozenset(), 1)) == [1]
    assert list(seeds.take(frozenset({"lr"}), 1)) == [3]
