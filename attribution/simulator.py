"""A simulated "train and score these hybrids" callback: scenario WER plus seed noise, runs counted."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attribution.scenario import Scenario

SEGMENT_WORDS = 12  # reference words per simulated test segment


@dataclass
class Run:
    wer: float
    segment_errors: np.ndarray | None = None  # errors per segment (reference words: SEGMENT_WORDS each)


@dataclass
class Simulator:
    scenario: Scenario
    rng: np.random.Generator
    runs: int = 0
    log: list[tuple[frozenset[str], float]] = field(default_factory=list)

    def __call__(self, start_knobs: frozenset[str], seeds: int) -> list[Run]:
        """Train and score the hybrid `seeds` times (each one training)."""
        results = []
        for _ in range(seeds):
            wer = self.scenario.wer(start_knobs) + self.rng.normal(0.0, self.scenario.seed_std)
            segments = None
            if self.scenario.segment_count:
                p = float(np.clip(wer / 100.0, 0.0, 1.0))
                segments = self.rng.binomial(SEGMENT_WORDS, p, size=self.scenario.segment_count)
            results.append(Run(wer, segments))
            self.log.append((start_knobs, wer))
        self.runs += seeds
        return results
