"""What all strategies share: the callback type, the Finding, and an Evaluator that caches runs per hybrid,
asks for trainings in rounds of at most `jobs`, estimates the seed noise from replicates and answers
noise-aware questions with as few seeds as it can.

A round is one call of the callback: `evaluate([(hybrid, count), ...])` trains every hybrid `count` more
times (new seeds) and returns, per item, that many runs whose `.wer` is the score, or None when the training
failed. The trainings of one call may run at once; a call waits for the one before.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
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
SEED_BLOCK = 100  # seeds per hybrid before its block runs into another's
SEED_BLOCKS = 21_000_000  # blocks: seeds stay below 2^31 (RETURNN and numpy take 32-bit seeds)


class HasWer(Protocol):
    wer: float | None  # None: the training failed


Evaluate = Callable[[list[tuple[Hybrid, int]]], Sequence[Sequence[HasWer]]]


@dataclass
class Finding:
    """A strategy's answer: the culprit set (empty: no knob holds a culprit's share of the gap, or the gap is
    noise), effects (WER added by the knob's start value) with 95 % intervals, the pairs that act together,
    what the runs could not decide or tell apart, and what it cost."""

    strategy: str
    culprits: frozenset[str]
    runs: int
    effects: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    interactions: list[dict] = field(default_factory=list)  # {"knobs": [a, b], "effect", "low", "high"}
    undecided: list[str] = field(default_factory=list)  # knobs whose verdict the runs could not settle
    aliased: list[list[str]] = field(default_factory=list)  # pairs ("a*b") the runs cannot tell apart
    rounds: int = 0
    failed: int = 0  # trainings that returned no WER
    gap: tuple[float, float, float] | None = None  # (estimate, low, high)

    def to_json(self) -> dict:
        return {"strategy": self.strategy, "culprits": sorted(self.culprits), "runs": self.runs,
                "effects": self.effects, "notes": self.notes,
                "intervals": {k: list(v) for k, v in self.intervals.items()}, "interactions": self.interactions,
                "undecided": self.undecided, "aliased": self.aliased, "rounds": self.rounds,
                "failed": self.failed, "gap": None if self.gap is None else list(self.gap)}

    @classmethod
    def from_json(cls, data: dict) -> Finding:
        """Also reads the older schema (strategy, culprits, runs, effects, notes)."""
        gap = data.get("gap")
        return cls(data["strategy"], frozenset(data["culprits"]), data["runs"], data["effects"], data["notes"],
                   {k: tuple(v) for k, v in data.get("intervals", {}).items()}, list(data.get("interactions", [])),
                   list(data.get("undecided", [])), [list(a) for a in data.get("aliased", [])],
                   data.get("rounds", 0), data.get("failed", 0), None if gap is None else tuple(gap))

    def summary(self) -> list[str]:
        """Verdict lines: the culprits with their effects and trainings, the pairs, what is undecided, notes."""
        culprits = ", ".join(sorted(self.culprits)) or "none: no knob holds a culprit's share of the gap"
        effects = "; ".join(f"{k} {v:+.2f}" + (f" [{self.intervals[k][0]:+.2f}, {self.intervals[k][1]:+.2f}]"
                                               if k in self.intervals else "")
                            for k, v in sorted(self.effects.items()))
        rounds = f", {self.rounds} rounds" if self.rounds else ""
        lines = [f"strategy {self.strategy}: culprits {culprits} ({self.runs} trainings{rounds})"
                 + (f"; effects {effects}" if effects else "")]
        lines += [f"{' x '.join(i['knobs'])}: {i['effect']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}] only when "
                  f"both have start's value" for i in self.interactions]
        if self.undecided:
            lines.append(f"undecided (the runs made cannot settle them): {', '.join(self.undecided)}")
        lines += [f"not identifiable with the runs made: {' or '.join(group)} (aliased)" for group in self.aliased]
        if self.failed:
            lines.append(f"{self.failed} training(s) failed and were left out")
        return [*lines, *self.notes]


class SeedNumbers:
    """Seed numbers for an `evaluate` callback: each call asks for new seeds of a hybrid, numbered on from the
    hybrid's own first seed.

    Every hybrid has its own seeds (a block of SEED_BLOCK numbers from a stable hash of its knobs and of
    `stream`; orig, the empty hybrid of the default stream, has 1, 2, 3, ...). With deterministic trainings
    (`behavior_version >= 15`, one seed gives one initialisation and one data order) two hybrids that differ
    only in knobs without effect would otherwise be the same training twice, and hybrids that share a seed
    share its luck: the strategies' least squares pools the runs of many hybrids as independent replicates (the
    hidden replication of a factorial design), which copies of one training are not. Stable, so a rerun or a
    replay asks for the same trainings; `stream` gives an independent set of seeds (the factorial ground truth
    must not reuse the runs it checks)."""

    def __init__(self, stream: str = "") -> None:
        self.stream = stream
        self.used: dict[Hybrid, int] = {}

    def first(self, hybrid: Hybrid) -> int:
        key = "\n".join([self.stream, *sorted(hybrid)])  # "" for orig of the default stream: crc32 0, seed 1
        return SEED_BLOCK * (zlib.crc32(key.encode()) % SEED_BLOCKS) + 1

    def take(self, hybrid: Hybrid, count: int) -> range:
        first = self.first(hybrid) + self.used.get(hybrid, 0)
        self.used[hybrid] = self.used.get(hybrid, 0) + count
        return range(first, first + count)


class Evaluator:
    """Caches the WERs per hybrid; trains more seeds, in rounds of at most `jobs` trainings, only when asked.

    A failed training counts as an attempt: it is not asked for again, the strategy goes on without it.
    After `baselines`, `effect(a, b)` is sign * (WER(a) - WER(b)), sign making the gap positive, so the
    strategies reason about "how much of the gap" without caring which side is worse."""

    def __init__(self, knobs: Sequence[str], evaluate: Evaluate, jobs: int = 1):
        if jobs < 1:
            raise ValueError("jobs must be >= 1")
        self.knobs = tuple(knobs)
        self.evaluate, self.jobs = evaluate, jobs
        self.wers: dict[Hybrid, list[float]] = {}
        self.failures: dict[Hybrid, int] = {}
        self.rounds = 0
        self.orig: Hybrid = frozenset()
        self.start: Hybrid = frozenset(knobs)
        self.sign = 1.0

    def attempts(self, hybrid: Hybrid) -> int:
        return len(self.wers.get(hybrid, ())) + self.failures.get(hybrid, 0)

    def request(self, wanted: Iterable[tuple[Hybrid, int]]) -> None:
        """Bring each hybrid to at least `count` attempts: the missing trainings in rounds of `jobs`."""
        todo: dict[Hybrid, int] = {}
        for hybrid, count in wanted:
            todo[hybrid] = max(todo.get(hybrid, 0), count - self.attempts(hybrid))
        queue = [(h, k) for h, k in todo.items() if k > 0]
        while queue:
            batch, room = [], self.jobs
            while queue and room:
                hybrid, count = queue[0]
                take = min(count, room)
                batch.append((hybrid, take))
                room -= take
                queue = queue[1:] if take == count else [(hybrid, count - take), *queue[1:]]
            self.rounds += 1
            for (hybrid, count), runs in zip(batch, self.evaluate(batch), strict=True):
                wers = [float(r.wer) for r in runs if r.wer is not None and math.isfinite(r.wer)]
                self.wers.setdefault(hybrid, []).extend(wers)
                if count - len(wers):
                    self.failures[hybrid] = self.failures.get(hybrid, 0) + count - len(wers)

    def ensure(self, hybrids: Iterable[Hybrid], seeds: int) -> None:
        """At least `seeds` attempts of each hybrid (in rounds of `jobs`)."""
        self.request((h, seeds) for h in hybrids)

    def more(self, hybrids: Iterable[Hybrid]) -> None:
        """One more attempt of each hybrid per time it is named (in rounds of `jobs`)."""
        self.request((h, self.attempts(h) + times) for h, times in Counter(hybrids).items())

    def n(self, hybrid: Hybrid) -> int:
        return len(self.wers.get(hybrid, ()))

    def mean(self, hybrid: Hybrid) -> float:
        wers = self.wers.get(hybrid)
        return float(np.mean(wers)) if wers else math.nan

    def effect(self, a: Hybrid, b: Hybrid) -> float:
        """sign * (WER(a) - WER(b)) from the runs so far (nan when a side has no run)."""
        return self.sign * (self.mean(a) - self.mean(b))

    def noise(self) -> tuple[float, int]:
        """Pooled seed standard deviation over every replicated hybrid, and its degrees of freedom."""
        return pooled_std(list(self.wers.values()))

    def se(self, a: Hybrid, b: Hybrid) -> float:
        sigma, df = self.noise()
        if not df or not self.n(a) or not self.n(b):
            return math.inf
        return sigma * math.sqrt(1 / self.n(a) + 1 / self.n(b))

    def z(self, a: Hybrid, b: Hybrid) -> float:
        """|effect(a, b)| as the normal z with the two-sided p value of its t statistic (few degrees of freedom
        make a t of 2 weak evidence); 0 when a side has no run or there is no noise estimate yet."""
        est, se = self.effect(a, b), self.se(a, b)
        if not math.isfinite(est) or not math.isfinite(se):
            return 0.0
        if se == 0:
            return math.inf if est else 0.0
        return float(stats.norm.isf(stats.t.sf(abs(est) / se, self.noise()[1])))

    def critical(self, tests: int = 1, level: float = 0.05) -> float:
        """Two-sided t quantile at `level` for the pooled seed noise, Bonferroni-corrected over `tests`."""
        _, df = self.noise()
        return float(stats.t.ppf(1 - level / 2 / tests, df)) if df else math.inf

    @property
    def runs(self) -> int:
        """Trainings made, failed ones included (they cost GPU-hours too)."""
        return sum(len(v) for v in self.wers.values()) + sum(self.failures.values())

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def sample_until(self, a: Hybrid, b: Hybrid, settled: Callable[[float, float], bool], max_seeds: int) -> float:
        """effect(a, b), with seeds added one at a time (to the side with fewer runs, `b` on a tie) until
        `settled(estimate, standard_error)` or both sides have `max_seeds` attempts."""
        self.ensure([a, b], 1)
        while not settled(self.effect(a, b), self.se(a, b)):
            side = a if self.n(a) < self.n(b) else b
            if self.attempts(side) >= max_seeds:
                side = b if side == a else a
                if self.attempts(side) >= max_seeds:
                    break
            self.more([side])
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
            significant = bool(abs(gap) > self.critical(looks) * se)
            if significant or abs(gap) <= futility * se or n >= (max_seeds or seeds):
                break
            n += 1
        self.sign = 1.0 if not gap < 0 else -1.0
        return gap, se, significant

    def threshold(self) -> float:
        """A culprit explains at least this much of the (sign-normalised) gap."""
        return CULPRIT_SHARE * self.effect(self.start, self.orig)

    def finding(self, strategy: str, culprits: Iterable[str], effects: dict[str, float] | None = None,
                notes: list[str] | None = None, **fields: object) -> Finding:
        """A Finding with the trainings, rounds and failures counted so far; knobs whose own hybrids all failed
        are undecided."""
        undecided = set(fields.pop("undecided", ()))  # type: ignore[arg-type]
        undecided |= {k for k in self.knobs for h in (self.start - {k}, frozenset({k}))
                      if self.failures.get(h) and not self.n(h)}
        notes = list(notes or [])
        if self.failed:
            notes.append(f"{self.failed} training(s) failed; the strategy went on without them")
        return Finding(strategy, frozenset(culprits), self.runs, dict(effects or {}), notes,
                       undecided=sorted(undecided), rounds=self.rounds, failed=self.failed, **fields)  # type: ignore

    def noise_finding(self, strategy: str, gap: float, se: float) -> Finding:
        if not math.isfinite(gap):
            return self.finding(strategy, (), notes=["orig or start has no successful training: the gap is unknown"],
                                undecided=self.knobs)
        sigma, _ = self.noise()
        more = runs_to_decide(gap, sigma)
        text = f"gap {gap:+.2f} (standard error {se:.2f}) is not distinguishable from noise"
        if more:
            text += f"; about {more} runs of orig and of start would decide a gap of this size"
        return self.finding(strategy, (), notes=[text])
