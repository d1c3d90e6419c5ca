"""A simulated "train and score these hybrids" callback: scenario WER plus seed noise, runs counted.

A hybrid is the set of knobs that have start's value. Each seed of a hybrid is one training: its WER is the
scenario's WER of the hybrid plus N(0, seed_std). With `segment_count`, the run's errors lie on a fixed test
set (segments of SEGMENT_WORDS words with a per-segment difficulty): every system shares orig's errors
(drawn once), and a run with a higher WER adds errors (more likely on hard segments), a lower one removes
some of them; so systems differ on a few segments, as real ones do, the run's WER is exactly
100 * errors / words and the paired bootstrap over segments has something to resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attribution.scenario import Scenario

SEGMENT_WORDS = 12  # reference words per simulated test segment
DIFFICULTY_SHAPE = 0.7  # gamma shape of the per-segment difficulty: few hard segments, many easy ones


@dataclass
class Run:
    """One training and scoring of a hybrid."""

    wer: float
    segment_errors: np.ndarray | None = None  # errors per segment (SEGMENT_WORDS reference words each)


@dataclass
class Simulator:
    """Callable `evaluate(hybrids, seeds)`: per hybrid, `seeds` fresh runs; counts trainings in `runs`."""

    scenario: Scenario
    rng: np.random.Generator
    runs: int = 0
    log: list[tuple[frozenset[str], float]] = field(default_factory=list)
    batches: int = 0  # calls: rounds of trainings that could run in parallel
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
        if self._difficulty is None or self._shared is None:
            return Run(wer)
        total_words = SEGMENT_WORDS * len(self._difficulty)
        change = max(0, round(wer / 100.0 * total_words)) - int(self._shared.sum())
        if change >= 0:
            errors = self._shared + self.rng.multinomial(change, self._difficulty)
        else:
            errors = self._shared - self.rng.multivariate_hypergeometric(self._shared, -change)
        return Run(100.0 * errors.sum() / total_words, errors)

    def __call__(self, hybrids: list[frozenset[str]], seeds: int) -> list[list[Run]]:
        """Train and score every hybrid `seeds` times (each one training); results in the order given."""
        self.batches += 1
        results = []
        for hybrid in hybrids:
            runs = [self._run(hybrid) for _ in range(seeds)]
            self.log.extend((hybrid, run.wer) for run in runs)
            results.append(runs)
        self.runs += seeds * len(hybrids)
        return results
