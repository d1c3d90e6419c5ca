"""The simulated "train and score" callback: deterministic per seed, counts trainings, consistent segments."""

from __future__ import annotations

import numpy as np
import pytest

from attribution.scenario import parse_scenario
from attribution.simulator import SEGMENT_WORDS, Simulator

KNOBS = [f"k{i}" for i in range(8)]
SCENARIO = parse_scenario({"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0}, "seed_std": 0.5,
                           "segment_count": 300})


def test_same_seed_same_runs_other_seed_other_runs():
    def wers(seed):
        simulator = Simulator(SCENARIO, np.random.default_rng(seed))
        return [r.wer for runs in simulator([(frozenset(KNOBS), 3)]) for r in runs]

    assert wers(5) == wers(5)
    assert wers(5) != wers(6)


def test_runs_and_rounds_are_counted_and_results_keep_the_order():
    sim = Simulator(SCENARIO, np.random.default_rng(1))
    results = sim([(frozenset(), 2), (frozenset({"k3"}), 2), (frozenset(KNOBS), 2)])
    sim([(frozenset({"k1"}), 1)])
    assert sim.runs == 7 and sim.batches == 2 and sim.largest_batch == 6 and [len(r) for r in results] == [2, 2, 2]
    assert [h for h, _ in sim.log[:2]] == [frozenset(), frozenset()]
    means = [np.mean([r.wer for r in runs]) for runs in results]
    assert means[1] - means[0] == pytest.approx(2.0, abs=1.5) and means[2] - means[0] == pytest.approx(2.0, abs=1.5)


def test_seed_noise_has_the_scenario_std_and_segments_add_up_to_the_wer():
    sim = Simulator(SCENARIO, np.random.default_rng(2))
    runs = sim([(frozenset(), 400)])[0]
    wers = np.array([r.wer for r in runs])
    assert wers.mean() == pytest.approx(17.5, abs=0.1) and wers.std() == pytest.approx(0.5, rel=0.15)
    words = SEGMENT_WORDS * SCENARIO.segment_count
    for run in runs[:20]:
        assert run.segment_errors.shape == (300,)
        assert run.wer == pytest.approx(100 * run.segment_errors.sum() / words)
    # the same segments are hard for every hybrid: per-segment error counts correlate across runs
    a, b = (np.mean([r.segment_errors for r in runs[i::2]], axis=0) for i in (0, 1))
    assert np.corrcoef(a, b)[0, 1] > 0.5


def test_without_segments_runs_carry_none():
    plain = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "seed_std": 0.0})
    run = Simulator(plain, np.random.default_rng(0))([(frozenset(KNOBS), 1)])[0][0]
    assert run.wer == 10.0 and run.segment_errors is None


def test_a_failure_rate_makes_runs_without_a_wer_that_still_count_as_trainings():
    failing = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "seed_std": 0.1, "failure_rate": 0.3})
    sim = Simulator(failing, np.random.default_rng(0))
    runs = sim([(frozenset(), 300)])[0]
    failed = sum(r.wer is None for r in runs)
    assert sim.runs == 300 and 60 < failed < 120 and all(r.wer is None or r.wer > 9 for r in runs)
