"""What all strategies share: the callback type, the Finding, and an Evaluator that caches runs per hybrid,
estimates the seed noise from replicates and answers noise-aware questions with as few seeds as it can."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy import stats

from attribution.scenario import CULPRIT_SHARE
from attribution.statistics import pooled_std, runs_to_decide

Hybrid = frozenset[str]  # the knobs that have start's value: frozenset() is orig, all knobs is start
STOP_Z = 2.0  # a sequential question stops once its estimate is this many standard errors from the boundary
BASELINE_SEEDS = 3  # orig and start each, for the gap and the noise floor ...
MAX_BASELINE_SEEDS = 8  # ... and up to this many while the gap is not yet clear
FUTILITY_Z = 0.5  # a gap within half a standard error of zero gets no more baseline seeds


class HasWer(Protocol):
    wer: float


Evaluate = Callable[[list[Hybrid], int], Sequence[Sequence[HasWer]]]


@dataclass
class Finding:
    """A strategy's answer: the culprit set (empty: the gap is noise), effects, trainings used."""

    strategy: str
    culprits: frozenset[str]
    runs: int
    effects: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "culprits": sorted(self.culprits), "runs": self.runs,
                "effects": self.effects, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict) -> Finding:
        return cls(data["strategy"], frozenset(data["culprits"]), data["runs"], data["effects"], data["notes"])

    def summary(self) -> list[str]:
        """Verdict lines: the culprits with their effects and trainings, then the notes."""
        culprits = ", ".join(sorted(self.culprits)) or "none: the gap is noise"
        effects = "; ".join(f"{k} {v:+.2f}" for k, v in sorted(self.effects.items()))
        return [f"strategy {self.strategy}: culprits {culprits} ({self.runs} trainings)"
                + (f"; effects {effects}" if effects else ""), *self.notes]


class SeedNumbers:
    """Seed numbers for an `evaluate` callback: each call asks for new seeds of a hybrid, numbered on from 1."""

    def __init__(self) -> None:
        self.used: dict[Hybrid, int] = {}

    def take(self, hybrid: Hybrid, count: int) -> range:
        first = self.used.get(hybrid, 0) + 1
        self.used[hybrid] = first + count - 1
        return range(first, first + count)


class Evaluator:
    """Caches the WERs per hybrid; trains more seeds (in one batch per call) only when asked for more.

    After `baselines`, `effect(a, b)` is sign * (WER(a) - WER(b)), sign making the gap positive, so the
    strategies reason about "how much of the gap" without caring which side is worse."""

    def __init__(self, knobs: Sequence[str], evaluate: Evaluate):
        self.knobs = tuple(knobs)
        self.evaluate = evaluate
        self.wers: dict[Hybrid, list[float]] = {}
        self.orig: Hybrid = frozenset()
        self.start: Hybrid = frozenset(knobs)
        self.sign = 1.0

    def ensure(self, hybrids: Sequence[Hybrid], seeds: int) -> None:
        """At least `seeds` runs of each hybrid; one callback call per number of missing seeds."""
        missing: dict[int, list[Hybrid]] = {}
        for hybrid in dict.fromkeys(hybrids):
            need = seeds - len(self.wers.setdefault(hybrid, []))
            if need > 0:
                missing.setdefault(need, []).append(hybrid)
        for need, batch in sorted(missing.items()):
            for hybrid, runs in zip(batch, self.evaluate(batch, need), strict=True):
                self.wers[hybrid].extend(float(run.wer) for run in runs)

    def n(self, hybrid: Hybrid) -> int:
        return len(self.wers.get(hybrid, ()))

    def mean(self, hybrid: Hybrid) -> float:
        return float(np.mean(self.wers[hybrid]))

    def effect(self, a: Hybrid, b: Hybrid) -> float:
        """sign * (WER(a) - WER(b)) from the runs so far."""
        return self.sign * (self.mean(a) - self.mean(b))

    def noise(self) -> tuple[float, int]:
        """Pooled seed standard deviation over every replicated hybrid, and its degrees of freedom."""
        return pooled_std(list(self.wers.values()))

    def se(self, a: Hybrid, b: Hybrid) -> float:
        sigma, df = self.noise()
        return sigma * math.sqrt(1 / self.n(a) + 1 / self.n(b)) if df else math.inf

    def critical(self, tests: int = 1) -> float:
        """Two-sided 95 % t quantile for the pooled seed noise, Bonferroni-corrected over `tests` decisions."""
        _, df = self.noise()
        return float(stats.t.ppf(1 - 0.025 / tests, df)) if df else math.inf

    @property
    def runs(self) -> int:
        return sum(len(v) for v in self.wers.values())

    def sample_until(self, a: Hybrid, b: Hybrid, settled: Callable[[float, float], bool], max_seeds: int) -> float:
        """effect(a, b), with seeds added one at a time (to the side with fewer runs, `b` on a tie) until
        `settled(estimate, standard_error)` or both sides have `max_seeds` runs."""
        self.ensure([a, b], 1)
        while not settled(self.effect(a, b), self.se(a, b)):
            side = a if self.n(a) < self.n(b) else b
            if self.n(side) >= max_seeds:
                side = b if side == a else a
                if self.n(side) >= max_seeds:
                    break
            self.ensure([side], self.n(side) + 1)
        return self.effect(a, b)

    def decide(self, a: Hybrid, b: Hybrid, boundary: float, max_seeds: int, z: float | None = None) -> float:
        """effect(a, b), sampled until it is more than `z` (default STOP_Z) standard errors from `boundary`
        (or until `max_seeds`)."""
        z = STOP_Z if z is None else z
        return self.sample_until(a, b, lambda est, se: abs(est - boundary) > z * se, max_seeds)

    def baselines(self, seeds: int, max_seeds: int | None = None,
                  futility: float = FUTILITY_Z) -> tuple[float, float, bool]:
        """(gap, its standard error, significant): orig and start with `seeds` seeds each, and one more each
        (up to `max_seeds`) while the gap is neither significant nor futile (within `futility` standard
        errors of zero); Bonferroni over the looks keeps false alarms at 5 %."""
        looks, n = 0, seeds
        while True:
            self.ensure([self.orig, self.start], n)
            looks += 1
            gap = self.mean(self.start) - self.mean(self.orig)
            se = self.se(self.start, self.orig)
            significant = abs(gap) > self.critical(looks) * se
            if significant or abs(gap) <= futility * se or n >= (max_seeds or seeds):
                break
            n += 1
        self.sign = 1.0 if gap >= 0 else -1.0
        return gap, se, significant

    def threshold(self) -> float:
        """A culprit explains at least this much of the (sign-normalised) gap."""
        return CULPRIT_SHARE * self.effect(self.start, self.orig)

    def noise_finding(self, strategy: str, gap: float, se: float) -> Finding:
        sigma, _ = self.noise()
        more = runs_to_decide(gap, sigma)
        text = f"gap {gap:+.2f} (standard error {se:.2f}) is not distinguishable from noise"
        if more:
            text += f"; about {more} runs of orig and of start would decide a gap of this size"
        return Finding(strategy, frozenset(), self.runs, notes=[text])
