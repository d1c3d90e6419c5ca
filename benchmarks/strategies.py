"""Every strategy on every benchmark family (attribution/families.py) at several knob counts and GPU counts:
success, trainings, GPU-hours and rounds; then the goals of issue 12 for adaptive.

Run: .venv/bin/python benchmarks/strategies.py [--trials N] [--seed S] [--jobs 1,8,16,32] [--workers W]
     [--families a,b] [--json OUT]
Defaults: 1000 trials, seed 2026 (the strategies were tuned on seed 1), jobs 1, 8, 16 and 32. Hours on 2 cores at
1000 trials: run it niced in the background.

Goals (adaptive at jobs 16 unless said; one setting for every family): success >= 90 % (>= 95 % where one knob
holds the gap: single_culprit, heavy_noise; "no culprit" in >= 95 % for noise_only and many_small; the culprit
pair named as a pair where there is one), mean rounds <= 4, GPU-hours <= 0.6 x one-at-a-time with 3 seeds on the
same scenario; and the old goal: single_culprit_16 at jobs 1 with >= 95 % in <= 16 trainings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artefacts.text_table import print_table  # noqa: E402
from attribution.benchmark import StrategyScore, score_strategy, score_table  # noqa: E402
from attribution.families import FAMILIES, NO_CULPRIT, SINGLE_CULPRIT, family  # noqa: E402
from attribution.strategies import DEFAULT_STRATEGY, STRATEGIES  # noqa: E402

GOAL_JOBS = 16
REFERENCE = "one-at-a-time"  # with its default 3 seeds


def cell(args: tuple[str, int, str, int, int, int]) -> tuple[str, int, StrategyScore]:
    name, count, strategy, jobs, trials, seed = args
    return name, count, score_strategy(family(name, count), strategy, trials, seed, jobs)


def goals(scores: dict[tuple[str, int, str, int], StrategyScore]) -> list[list[str]]:
    """One row per family scenario: adaptive at GOAL_JOBS against the goals (met / NOT met per column)."""
    rows = []
    for (name, count, strategy, jobs), score in sorted(scores.items()):
        if strategy != DEFAULT_STRATEGY or jobs != GOAL_JOBS:
            continue
        needed = 0.95 if name in SINGLE_CULPRIT | NO_CULPRIT else 0.90
        reference = scores.get((name, count, REFERENCE, jobs))
        ratio = score.mean_cost / reference.mean_cost if reference and reference.mean_cost else float("nan")
        checks = [score.success_rate >= needed, score.mean_rounds <= 4, ratio <= 0.6]
        rows.append([f"{name}_{count}", f"{score.success_rate:.1%} (>= {needed:.0%})",
                     "-" if score.pairs_rate is None else f"{score.pairs_rate:.1%}", f"{score.mean_rounds:.2f}",
                     f"{ratio:.2f}", " ".join("met" if c else "NOT" for c in checks)])
    old = scores.get(("single_culprit", 16, DEFAULT_STRATEGY, 1))
    if old:
        met = old.success_rate >= 0.95 and old.mean_runs <= 16
        rows.append(["single_culprit_16 at jobs 1", f"{old.success_rate:.1%} (>= 95%)", "-",
                     f"{old.mean_runs:.2f} trainings (<= 16)", "-", "met" if met else "NOT"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", default="1,8,16,32")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--json", dest="json_out", help="Also write every score to this JSON file.")
    args = parser.parse_args()
    started = time.perf_counter()
    jobs = [int(j) for j in args.jobs.split(",")]
    names = args.families.split(",")
    cells = [(name, count, strategy, j, args.trials, args.seed) for name in names for count in FAMILIES[name][1]
             for strategy in args.strategies.split(",") for j in jobs]
    scores: dict[tuple[str, int, str, int], StrategyScore] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for name, count, score in pool.map(cell, cells):
            scores[(name, count, score.strategy, score.jobs)] = score
    for name in names:
        for count in FAMILIES[name][1]:
            scenario = family(name, count)
            block = [s for (n, c, _, _), s in scores.items() if (n, c) == (name, count)]
            headers, rows = score_table(block)
            for row, s in zip(rows, block, strict=True):
                row.append("-" if s.pairs_rate is None else f"{s.pairs_rate:.0%}")
            culprits = ", ".join(sorted(scenario.culprits())) or "none"
            print_table([*headers, "pair named"], rows,
                        title=f"\n{scenario.name}: {count} knobs, culprits {culprits}, seed std {scenario.seed_std:g}")
    print_table(["scenario", "success", "pair named", "mean rounds", "GPU-hours / OAT3", "success rounds cost"],
                goals(scores), title=f"\ngoals: {DEFAULT_STRATEGY} at jobs {GOAL_JOBS}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            [{"family": n, "knobs": c, **asdict(s)} for (n, c, _, _), s in scores.items()], indent=1) + "\n")
    print(f"{args.trials} trials per cell, seed {args.seed}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
