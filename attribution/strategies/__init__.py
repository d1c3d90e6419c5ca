"""Strategies that choose which hybrids to train, as pure functions over a "train and score" callback.

Every strategy is `strategy(knobs, evaluate, jobs=1, **options) -> Finding`. `evaluate([(hybrid, count),
...])` trains every hybrid (the set of knobs that have start's value) `count` more times and returns, per
item, runs whose `.wer` is the score (None: the training failed); one call is one round, with at most
`jobs` trainings. The Finding names the culprit set (empty: no culprit, or the gap is noise), the pairs that
act together, effects with intervals, what could not be decided, trainings and rounds.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from attribution.strategies.adaptive import adaptive
from attribution.strategies.common import Evaluate, Evaluator, Finding, SeedNumbers
from attribution.strategies.ddmin import ddmin
from attribution.strategies.greedy import greedy
from attribution.strategies.one_at_a_time import one_at_a_time
from attribution.strategies.screening import screening

STRATEGIES: dict[str, Callable[..., Finding]] = {
    "one-at-a-time": one_at_a_time, "ddmin": ddmin, "greedy": greedy, "screening": screening,
    "adaptive": adaptive,
}
DEFAULT_STRATEGY = "adaptive"


def strategy_options(name: str, seeds: int | None = None, jobs: int = 1) -> dict[str, int]:
    """The keyword arguments strategy `name` takes of `seeds` (None: its default) and `jobs`: what `run`,
    `submit` and `plan` pass, so that `plan` predicts what `run` does."""
    parameters = inspect.signature(STRATEGIES[name]).parameters
    options = {"jobs": jobs} if "jobs" in parameters else {}
    if seeds is not None and "seeds" in parameters:
        options["seeds"] = seeds
    return options


__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "Evaluate", "Evaluator", "Finding", "SeedNumbers", "adaptive", "ddmin",
           "greedy", "one_at_a_time", "screening", "strategy_options"]
