"""Strategies that choose which hybrids to train, as pure functions over a "train and score" callback.

`evaluate(hybrids, seeds)` trains and scores every hybrid (the set of knobs that have start's value)
`seeds` times and returns, per hybrid, runs with a `.wer`; every seed is one training. Each strategy returns
a `Finding`: the culprit set (empty: the gap is noise), effect estimates, trainings used, notes.
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



def strategy_options(name: str, seeds: int | None) -> dict[str, int]:
    """The keyword arguments that run strategy `name` with a user's `--seeds` (None: the strategy's own default;
    a strategy without a `seeds` parameter chooses its seeds itself). `run`, `submit` and `plan` share it."""
    return {"seeds": seeds} if seeds and "seeds" in inspect.signature(STRATEGIES[name]).parameters else {}


__all__ = ["STRATEGIES", "Evaluate", "Evaluator", "Finding", "SeedNumbers", "adaptive", "ddmin", "greedy",
           "one_at_a_time", "screening", "strategy_options"]
