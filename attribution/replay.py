"""Replay a strategy over the runs that have finished: strategies are deterministic given the WERs, so asking
them again with the finished WERs retraces their questions up to the first round without all its answers, which
is what the strategy waits for now (or, when every answer is there, gives its finding). A failed training is an
answer without a WER: the strategy goes on without it, as in `run`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from attribution.strategies import STRATEGIES, Finding, SeedNumbers
from interpolate.plan import HybridRequest
from interpolate.units import request_for

Run = tuple[str, int]  # (hybrid label, seed)


@dataclass
class Answer:
    status: str  # "ok", "failed", or anything else for a run without an answer yet
    wer: float | None = None


@dataclass
class Replay:
    strategy: str
    rounds: int = 0  # rounds with every answer
    asked: list[Run] = field(default_factory=list)  # the runs of the round the strategy waits for
    finding: Finding | None = None  # once every question has its answer
    labels: dict[str, tuple[list[str], str | None]] = field(default_factory=dict)  # every hybrid asked for
    runs: list[Run] = field(default_factory=list)  # every run asked for, in order


class _Waiting(Exception):
    """The round has a run without an answer."""


@dataclass
class _Wer:
    wer: float | None  # None: the training failed


class _ReplayEvaluate:
    """`evaluate(requests)` that answers from finished runs and stops at the first incomplete round."""

    def __init__(self, replay: Replay, units: Mapping[str, frozenset[str]], answer: Callable[[str, int], Answer],
                 label_of: Callable[[HybridRequest], str]):
        self.replay, self.units, self.answer, self.label_of = replay, units, answer, label_of
        self.seeds = SeedNumbers()

    def _label(self, hybrid: frozenset[str]) -> str:
        request = request_for(hybrid, self.units)
        if request is None:
            label = "start" if hybrid else "orig"
            self.replay.labels.setdefault(label, ([], None))
        else:
            label = self.label_of(request)
            self.replay.labels.setdefault(label, (sorted(request.knobs), request.direction))
        return label

    def __call__(self, requests: list[tuple[frozenset[str], int]]) -> list[list[_Wer]]:
        batch = [[(self._label(hybrid), seed) for seed in self.seeds.take(hybrid, count)] for hybrid, count in requests]
        runs = [run for group in batch for run in group]
        self.replay.runs += runs
        answers = {run: self.answer(*run) for run in runs}
        missing = [run for run in runs if answers[run].status != "failed"
                   and (answers[run].status != "ok" or answers[run].wer is None)]
        if missing:
            self.replay.asked = missing
            raise _Waiting()
        self.replay.rounds += 1
        return [[_Wer(None if answers[run].status == "failed" else float(answers[run].wer)) for run in group]
                for group in batch]


def replay_strategy(strategy: str, units: Mapping[str, frozenset[str]], answer: Callable[[str, int], Answer],
                    label_of: Callable[[HybridRequest], str], kwargs: Mapping[str, object] | None = None) -> Replay:
    """Ask `strategy` over `units` with the answers `answer(label, seed)` gives; `label_of` names a hybrid as
    the runner that trains it does."""
    function = STRATEGIES[strategy]
    accepted = inspect.signature(function).parameters
    replay = Replay(strategy)
    try:
        replay.finding = function(list(units), _ReplayEvaluate(replay, units, answer, label_of),
                                  **{k: v for k, v in (kwargs or {}).items() if k in accepted})
    except _Waiting:
        pass
    return replay
