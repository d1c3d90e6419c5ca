"""Run strategies on a scenario many times: success rate, trainings (mean, 95th percentile), GPU-hours."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from attribution.scenario import Scenario
from attribution.simulator import Simulator
from attribution.strategies import STRATEGIES


@dataclass
class StrategyScore:
    """One strategy on one scenario over `trials` simulated bisections."""

    strategy: str
    trials: int
    success_rate: float
    mean_runs: float
    p95_runs: float
    mean_cost: float
    mean_rounds: float  # batches of trainings that wait for the one before: wall time in units of one training

    def to_json(self) -> dict:
        """The issue's schema: strategy, trials, success_rate, mean_runs, p95_runs, mean_cost."""
        data = asdict(self)
        del data["mean_rounds"]
        return data


def score_strategy(scenario: Scenario, name: str, trials: int, seed: int) -> StrategyScore:
    """Success: the found set equals the culprit set (the empty set when the gap is noise). Trial `t` uses
    the noise stream (seed, t), so every strategy meets the same sequence of random numbers per trial."""
    truth = scenario.culprits()
    successes, runs, rounds = 0, [], []
    for trial in range(trials):
        simulator = Simulator(scenario, np.random.default_rng([seed, trial]))
        finding = STRATEGIES[name](list(scenario.knobs), simulator)
        successes += finding.culprits == truth
        runs.append(simulator.runs)
        rounds.append(simulator.batches)
    return StrategyScore(name, trials, successes / trials, float(np.mean(runs)), float(np.percentile(runs, 95)),
                         float(np.mean(runs)) * scenario.cost_per_run, float(np.mean(rounds)))


def score_table(scores: list[StrategyScore]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) for printing scores."""
    headers = ["strategy", "success", "mean trainings", "p95 trainings", "mean GPU-hours", "mean rounds"]
    rows = [[s.strategy, f"{100 * s.success_rate:.0f}%", f"{s.mean_runs:.1f}", f"{s.p95_runs:.0f}",
             f"{s.mean_cost:.0f}", f"{s.mean_rounds:.1f}"] for s in scores]
    return headers, rows
