"""A simulated "train and score" callback: scenario WER plus seed noise, trainings and rounds counted.

A hybrid is the set of knobs that have start's value. Each seed of a hybrid is one training: its WER is the
scenario's WER of the hybrid plus N(0, seed_std); with the scenario's `failure_rate` a training fails (no
WER). With `segment_count`, the run's errors lie on a fixed test set (segments of SEGMENT_WORDS words with a
per-segment difficulty): every system shares orig's errors (drawn once), and a run with a higher WER adds
errors (more likely on hard segments), a lower one removes some of them; so systems differ on a few
segments, as real ones do, the run's WER is exactly 100 * errors / words and the paired bootstrap over
segments has something to resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attribution.scenario import Scenario

SEGMENT_WORDS = 12  # reference words per simulated test segment
DIFFICULTY_SHAPE = 0.7  # gamma shape of the per-segment difficulty: few hard segments, many easy ones


@dataclass
class Run:
    """One training and scoring of a hybrid (wer None: the training failed)."""

    wer: float | None
    segment_errors: np.ndarray | None = None  # errors per segment (SEGMENT_WORDS reference words each)


@dataclass
class Simulator:
    """Callable `evaluate([(hybrid, count), ...])`: per item, `count` fresh runs. One call is one round."""

    scenario: Scenario
    rng: np.random.Generator
    runs: int = 0  # trainings, failed ones included
    log: list[tuple[frozenset[str], float | None]] = field(default_factory=list)
    batches: int = 0  # calls: rounds of trainings that run at once and wait for the round before
    largest_batch: int = 0  # trainings in the largest round
    _difficulty: np.ndarray | None = field(default=None, repr=False)
    _shared: np.ndarray | None = field(default=None, repr=False)  # orig's errors per segment

    def __post_init__(self) -> None:
        if self.scenario.segment_count:
            weights = self.rng.gamma(DIFFICULTY_SHAPE, size=self.scenario.segment_count)
            self._difficulty = weights / weights.sum()
            total_words = SEGMENT_WORDS * self.scenario.segment_count
            self._shared = self.rng.multinomial(round(self.scenario.orig_wer / 100 * total_words), self._difficulty)

    @property
    def words(self) -> np.ndarray | None:
        """Reference words per segment (None without segments)."""
        count = self.scenario.segment_count
        return np.full(count, SEGMENT_WORDS) if count else None

    def _run(self, hybrid: frozenset[str]) -> Run:
        wer = self.scenario.wer(hybrid) + self.rng.normal(0.0, self.scenario.seed_std)
        if self.scenario.failure_rate and self.rng.random() < self.scenario.failure_rate:
            return Run(None)
        if self._difficulty is None or self._shared is None:
            return Run(wer)
        total_words = SEGMENT_WORDS * len(self._difficulty)
        change = max(0, round(wer / 100.0 * total_words)) - int(self._shared.sum())
        if change >= 0:
            errors = self._shared + self.rng.multinomial(change, self._difficulty)
        else:
            errors = self._shared - self.rng.multivariate_hypergeometric(self._shared, -change)
        return Run(100.0 * errors.sum() / total_words, errors)

    def __call__(self, batch: list[tuple[frozenset[str], int]]) -> list[list[Run]]:
        """Train and score every hybrid `count` times (each one training); results in the order given."""
        self.batches += 1
        size = sum(count for _, count in batch)
        self.largest_batch = max(self.largest_batch, size)
        results = []
        for hybrid, count in batch:
            runs = [self._run(hybrid) for _ in range(count)]
            self.log.extend((hybrid, run.wer) for run in runs)
            results.append(runs)
        self.runs += size
        return results
