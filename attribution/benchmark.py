"""Run strategies on scenarios many times: success rate, trainings and rounds (mean, 95th percentile),
GPU-hours, and for scenarios with interactions how often the pairs were named as pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attribution.scenario import Scenario
from attribution.simulator import Simulator
from attribution.strategies import STRATEGIES, strategy_options

JSON_KEYS = ("strategy", "trials", "success_rate", "mean_runs", "p95_runs", "mean_cost", "mean_rounds", "p95_rounds")


@dataclass(frozen=True)
class Trial:
    """One simulated bisection."""

    success: bool  # the culprit set and the culprit pairs as the scenario has them
    paired: bool  # every culprit pair of the scenario named as a pair
    runs: int  # trainings, failed ones included
    rounds: int  # calls of the callback
    cost: float  # GPU-hours


@dataclass
class StrategyScore:
    """One strategy over `trials` simulated bisections with `jobs` trainings at once."""

    strategy: str
    trials: int
    success_rate: float
    mean_runs: float
    p95_runs: float
    mean_cost: float
    mean_rounds: float  # calls of the callback: rounds that wait for the one before (wall time in trainings)
    p95_rounds: float
    jobs: int = 1
    pairs_rate: float | None = None  # trials whose finding names every culprit pair as a pair (None: no pair)

    def to_json(self) -> dict:
        """The issue's six keys plus mean_rounds and p95_rounds."""
        return {key: getattr(self, key) for key in JSON_KEYS}


def trial_setup(scenario: Scenario, seed: int, trial: int) -> tuple[Simulator, list[str]]:
    """Trial `trial`'s simulator, on the noise stream (seed, trial), so every strategy meets the same random
    numbers per trial, and the knobs in an order shuffled by (seed, trial, 1), so that no position is special."""
    knobs = [str(k) for k in np.random.default_rng([seed, trial, 1]).permutation(scenario.knobs)]
    return Simulator(scenario, np.random.default_rng([seed, trial])), knobs


def run_trials(scenario: Scenario, name: str, trials: int, seed: int, jobs: int = 1) -> list[Trial]:
    """`trials` bisections by strategy `name`, each set up by trial_setup."""
    truth = scenario.culprits()
    pairs = {frozenset(p) for p in scenario.culprit_interactions()}
    out = []
    for trial in range(trials):
        simulator, knobs = trial_setup(scenario, seed, trial)
        finding = STRATEGIES[name](knobs, simulator, **strategy_options(name, jobs=jobs))
        if simulator.largest_batch > jobs:
            raise AssertionError(f"{name} asked for {simulator.largest_batch} trainings in a round of {jobs}")
        named = {frozenset(i["knobs"]) for i in finding.interactions}
        out.append(Trial(finding.culprits == truth and named == pairs, pairs <= named, simulator.runs,
                         simulator.batches, simulator.runs * scenario.cost_per_run))
    return out


def summarize(name: str, trials: list[Trial], jobs: int = 1, with_pairs: bool = False) -> StrategyScore:
    runs = [t.runs for t in trials]
    rounds = [t.rounds for t in trials]
    return StrategyScore(name, len(trials), float(np.mean([t.success for t in trials])), float(np.mean(runs)),
                         float(np.percentile(runs, 95)), float(np.mean([t.cost for t in trials])),
                         float(np.mean(rounds)), float(np.percentile(rounds, 95)), jobs,
                         float(np.mean([t.paired for t in trials])) if with_pairs else None)


def score_strategy(scenario: Scenario, name: str, trials: int, seed: int, jobs: int = 1) -> StrategyScore:
    """Success: the found set equals the culprit set (the empty set when no knob holds a culprit's share) and
    the pairs named as acting together are the scenario's culprit pairs."""
    return summarize(name, run_trials(scenario, name, trials, seed, jobs), jobs,
                     with_pairs=bool(scenario.culprit_interactions()))


def score_table(scores: list[StrategyScore]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) for printing scores."""
    headers = ["strategy", "jobs", "success", "mean trainings", "p95 trainings", "mean GPU-hours", "mean rounds",
               "p95 rounds"]
    rows = [[s.strategy, str(s.jobs), f"{100 * s.success_rate:.0f}%", f"{s.mean_runs:.1f}", f"{s.p95_runs:.0f}",
             f"{s.mean_cost:.0f}", f"{s.mean_rounds:.1f}", f"{s.p95_rounds:.0f}"] for s in scores]
    return headers, rows
