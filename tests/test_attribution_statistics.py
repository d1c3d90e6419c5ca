"""Statistics: bootstrap over segments (Bisani & Ney) widened by seed variance, t intervals, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from attribution.effects import LabelRuns, knob_effects
from attribution.scenario import parse_scenario
from attribution.simulator import SEGMENT_WORDS, Simulator
from attribution.statistics import (
    bootstrap_wer_difference,
    difference_interval,
    pooled_std,
    runs_to_decide,
    verdict,
)


def test_pooled_std_over_replicate_groups():
    sigma, df = pooled_std([[1.0, 3.0], [5.0], [2.0, 2.0, 2.0]])
    assert df == 3 and sigma == pytest.approx(np.sqrt(2 / 3))
    assert pooled_std([[1.0], [2.0]])[1] == 0


def test_bootstrap_interval_covers_the_true_difference_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    words = np.full(300, SEGMENT_WORDS)
    covered = 0
    for _ in range(100):
        a = rng.binomial(SEGMENT_WORDS, 0.18, size=300)
        b = rng.binomial(SEGMENT_WORDS, 0.20, size=300)
        interval = bootstrap_wer_difference(a, b, words, n_boot=400, rng=rng)
        covered += interval.low <= 2.0 <= interval.high
    assert 88 <= covered <= 100  # nominal 95


def test_seed_variance_widens_the_bootstrap_interval():
    rng = np.random.default_rng(1)
    a, b = rng.binomial(SEGMENT_WORDS, 0.2, size=(2, 200))
    words = np.full(200, SEGMENT_WORDS)
    narrow = bootstrap_wer_difference(a, b, words, seed_var=0.0)
    wide = bootstrap_wer_difference(a, b, words, seed_var=1.0)
    assert wide.estimate == narrow.estimate and wide.half_width ** 2 == pytest.approx(
        narrow.half_width ** 2 + 1.96 ** 2, rel=0.01)


def test_knob_effect_intervals_cover_the_simulated_truth():
    """Seeded simulations of orig, start (3 seeds) and a knock-in of the culprit (2 seeds): the effect interval
    (bootstrap over segments combined with the seed variance) covers the planted effect about 95 % of the time."""
    knobs = ["pretrain", "lr", "l2"]
    scenario = parse_scenario({"knobs": knobs, "orig_wer": 17.5, "effects": {"pretrain": 2.0, "lr": 0.1},
                               "seed_std": 0.3, "segment_count": 200})
    start = frozenset(knobs)
    covered, trials = 0, 100
    for trial in range(trials):
        sim = Simulator(scenario, np.random.default_rng([7, trial]))
        orig_runs, start_runs = sim([(frozenset(), 3), (start, 3)])
        (knock_in,) = sim([(start - {"pretrain"}, 2)])

        def label(name, runs, direction, chosen=(), words=sim.words):
            return LabelRuns(name, list(chosen), direction, [r.wer for r in runs],
                             [r.segment_errors for r in runs], words)

        effects = knob_effects([label("orig", orig_runs, None), label("start", start_runs, None),
                                label("knock-in:pretrain", knock_in, "knock-in", ["pretrain"])]).effects
        covered += effects[0].interval.low <= 2.0 <= effects[0].interval.high
    assert covered >= 0.92 * trials  # nominal 95 %; the bootstrap alone (no seed variance) covers about 90 %


def test_t_interval_and_runs_to_decide():
    interval = difference_interval([17.4, 17.6, 17.5], [17.5, 17.7, 17.4])
    assert interval.low < 0 < interval.high and not interval.excludes_zero()
    assert runs_to_decide(0.1, 0.1) == 16 and runs_to_decide(1.0, 0.1) == 2 and runs_to_decide(0.0, 0.1) == 0


def test_verdict_sentences():
    noise = difference_interval([17.4, 17.6, 17.5], [17.5, 17.7, 17.4])
    text = verdict("pretrain", noise, noise, sigma=0.1)
    assert "not distinguishable from noise" in text and "runs per side would decide" in text
    strong = difference_interval([17.5, 17.4, 17.6], [21.5, 21.6, 21.4])
    assert verdict("pretrain", strong, strong, 0.1).startswith("pretrain explains 4.00 ± ")
    assert verdict("pretrain", strong, strong, 0.1).endswith("of the 4.00 gap (100 %)")
    against = difference_interval([21.5, 21.6, 21.4], [17.5, 17.4, 17.6])
    assert verdict("optimizer", against, strong, 0.1).startswith("optimizer works against the gap: -4.00 ± ")
