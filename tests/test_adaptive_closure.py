"""Adaptive checks that a design's culprits explain the gap both ways, and locates a masking partner that the
design's average effects hide (the shape of the subtle real pair's first version, configs/README.md)."""

from __future__ import annotations

import numpy as np
import pytest

from attribution.scenario import parse_scenario
from attribution.simulator import Simulator
from attribution.strategies import adaptive

# The subtle pair's first factorial: batching +1.55, lr alone -0.21, lr x batching +1.19, seed std 0.54. The
# design's average effect of lr is -0.21 + 1.19 / 2 = 0.39 (0.7 seed std): without the check its pair with
# batching is never a candidate.
SUBTLE = parse_scenario({"name": "subtle", "knobs": ["optimizer", "lr", "batching", "pretrain"], "orig_wer": 3.86,
                         "effects": {"batching": 1.55, "lr": -0.21},
                         "interactions": [{"knobs": ["lr", "batching"], "effect": 1.19}], "seed_std": 0.54})


def test_a_masking_partner_hidden_from_the_design_is_located_by_the_check_of_the_culprits():
    """Measured on 100 trials: 3 % named both culprits before the check, 48 % with it (36 trainings); the
    information bound (the pair's 2.2 seed std needs about 38 trainings even in a balanced full factorial)
    keeps it from more. Fails when the check is removed (about 3 %)."""
    trials = 30
    found = 0
    for seed in range(trials):
        finding = adaptive(list(SUBTLE.knobs), Simulator(SUBTLE, np.random.default_rng(seed)), jobs=4)
        found += finding.culprits == {"batching", "lr"}
    assert found >= 0.3 * trials


def test_culprits_that_explain_the_gap_are_not_checked_beyond_two_seeds_of_each_side():
    scenario = parse_scenario({"knobs": ["a", "b", "c", "d", "e"], "orig_wer": 10.0, "effects": {"b": 3.0},
                               "seed_std": 0.1})
    finding = adaptive(list(scenario.knobs), Simulator(scenario, np.random.default_rng(0)), jobs=4)
    assert finding.culprits == {"b"} and not any("explain" in note for note in finding.notes)
    assert finding.runs <= 20


@pytest.mark.parametrize("jobs", [4, 16])
def test_with_little_noise_the_masked_knob_and_its_pair_are_named(jobs):
    """k4's average effect over a design is -0.75 + 1.5 / 2 = 0: only the check of k1 finds it."""
    scenario = parse_scenario({"name": "masked", "knobs": [f"k{i}" for i in range(6)], "orig_wer": 10.0,
                               "effects": {"k1": 2.0, "k4": -0.75},
                               "interactions": [{"knobs": ["k1", "k4"], "effect": 1.5}], "seed_std": 0.02})
    finding = adaptive(list(scenario.knobs), Simulator(scenario, np.random.default_rng(0)), jobs=jobs)
    assert finding.culprits == {"k1", "k4"}
    assert [i["knobs"] for i in finding.interactions] == [["k1", "k4"]]
