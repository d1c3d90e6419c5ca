"""All strategies on the scenario suite in benchmarks/scenarios/: success rate, trainings, GPU-hours.

Run: .venv/bin/python benchmarks/strategies.py [TRIALS]. Goals (issue 6): a single culprit among 16 knobs with
seed_std = 0.25 x its effect found with >= 95 % success in <= 16 trainings on average; three culprits plus one
interaction among 16 with >= 90 % success.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from attribution.benchmark import score_strategy
from attribution.scenario import load_scenario
from attribution.strategies import STRATEGIES

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def main(trials: int) -> None:
    started = time.perf_counter()
    print(f"{'scenario':34s} {'strategy':14s} {'success':>8s} {'mean runs':>10s} {'p95 runs':>9s} {'GPU-h':>8s}")
    for path in sorted(SCENARIOS.glob("*.json")):
        scenario = load_scenario(path)
        for name in STRATEGIES:
            s = score_strategy(scenario, name, trials, seed=0)
            print(f"{path.stem:34s} {name:14s} {100 * s.success_rate:7.0f}% {s.mean_runs:10.1f} {s.p95_runs:9.0f} "
                  f"{s.mean_cost:8.0f}")
    print(f"{trials} trials per cell, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
