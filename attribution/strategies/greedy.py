"""Greedy ablation path from start to orig: at each step switch the knob whose switch helps most."""

from __future__ import annotations

import math
from collections.abc import Sequence

from attribution.strategies.common import BASELINE_SEEDS, MAX_BASELINE_SEEDS, Evaluate, Evaluator, Finding

NAME = "greedy"


def greedy(knobs: Sequence[str], evaluate: Evaluate, seeds: int = BASELINE_SEEDS, candidate_seeds: int = 2,
           max_seeds: int = 4, jobs: int = 1) -> Finding:
    """Switch knobs to orig one by one (best first; every candidate with `candidate_seeds` seeds) until what
    is left of the gap is below 20 % (a noise-aware test with up to `max_seeds` seeds); `seeds` for orig and
    start (more while the gap is unclear)."""
    ev = Evaluator(knobs, evaluate, jobs)
    gap, se, significant = ev.baselines(seeds, max(seeds, MAX_BASELINE_SEEDS))
    if not significant:
        return ev.noise_finding(NAME, gap, se)
    threshold = ev.threshold()
    path: list[str] = []
    effects: dict[str, float] = {}
    current = ev.start
    while current and ev.decide(current, ev.orig, threshold, max_seeds) >= threshold:
        candidates = [current - {k} for k in sorted(current)]
        ev.ensure(candidates, candidate_seeds)
        best = max(sorted(current), key=lambda k: nan_low(ev.effect(current, current - {k})))
        effects[best] = ev.sign * ev.effect(current, current - {best})
        path.append(best)
        current = current - {best}
    return ev.finding(NAME, path, effects, [f"path: {' -> '.join(path) or '(none)'}"])


def nan_low(value: float) -> float:
    """A candidate whose runs all failed ranks last."""
    return -math.inf if math.isnan(value) else value
