"""What each switch does to the WER, and the one rule that turns effects into verdicts.

results.json, the console and the report all take their verdicts from here. Input is plain data: per label
the knobs, the direction and the runs (score, per-segment errors). Effects: knock-in = WER(start) - WER(hybrid),
knock-out = WER(hybrid) - WER(orig), the gap = WER(start) - WER(orig); each with a 95 % interval from the
bootstrap over test segments (Bisani & Ney) widened by the seed variance (pooled over the orig and start
replicates), or a t interval over the seed runs where there are no per-segment errors. The rule
(`statistics.classify`): an interval that contains zero is noise; otherwise the switch explains part of the
gap, or works against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attribution.statistics import (
    Interval,
    bootstrap_wer_difference,
    classify,
    difference_interval,
    pooled_std,
    verdict,
)
from attribution.strategies import Finding

NO_BASELINE = "no verdict: the orig or start baseline did not finish"
NO_SWITCH = "no switch moves the WER beyond the noise"


@dataclass
class LabelRuns:
    label: str
    knobs: list[str]
    direction: str | None  # None: the orig/start baselines
    wers: list[float]
    segment_errors: list[np.ndarray]  # per run: errors per segment
    segment_words: np.ndarray | None


@dataclass
class KnobEffect:
    label: str
    knobs: list[str]
    direction: str
    interval: Interval
    runs: int
    verdict: str  # "explains" | "against" | "noise" (statistics.classify)
    sentence: str
    share: float | None  # effect / gap (None for a zero gap)


@dataclass
class Effects:
    gap: Interval
    sigma: float  # pooled seed std of the orig and start replicates (nan without replicates)
    effects: list[KnobEffect]

    def significant(self) -> list[KnobEffect]:
        """The effects that are not noise, largest first."""
        return sorted((e for e in self.effects if e.verdict != "noise"), key=lambda e: -abs(e.interval.estimate))

    def gap_sentence(self) -> str:
        text = (f"gap start - orig: {self.gap.estimate:+.2f} (95 % interval [{self.gap.low:+.2f}, "
                f"{self.gap.high:+.2f}]); seed noise (pooled std of orig and start) {self.sigma:.2f}")
        return text if self.gap.excludes_zero() else text + "; the gap is not distinguishable from noise"

    def lines(self) -> list[str]:
        """The verdict: the gap, then every switch that is not noise (largest first)."""
        return [self.gap_sentence(), *([e.sentence for e in self.significant()] or [NO_SWITCH])]

    def headline(self, finding: Finding | None = None) -> str:
        """One sentence: the strategy's culprits (when a strategy ran), else the largest switch that is not noise."""
        if finding is not None:
            return finding_headline(finding, self.effects)
        significant = self.significant()
        if significant:
            return significant[0].sentence
        return NO_SWITCH if self.gap.excludes_zero() else "the gap is not distinguishable from noise"


def _segment_means(runs: LabelRuns) -> np.ndarray | None:
    return np.mean(runs.segment_errors, axis=0) if runs.segment_errors else None


def _difference(a: LabelRuns, b: LabelRuns, sigma: float, df: int) -> Interval:
    """mean(b) - mean(a) over the seeds, with the bootstrap interval where both have per-segment errors."""
    seg_a, seg_b = _segment_means(a), _segment_means(b)
    words = b.segment_words if b.segment_words is not None else a.segment_words
    if seg_a is None or seg_b is None or words is None:
        return difference_interval(a.wers, b.wers, sigma if df else None, df or None)
    seed_var = (sigma ** 2) * (1 / len(a.wers) + 1 / len(b.wers)) if df else 0.0
    boot = bootstrap_wer_difference(seg_a, seg_b, words, seed_var)
    # the bootstrap centres on the segment counts; report the mean over seeds as the estimate
    shift = float(np.mean(b.wers) - np.mean(a.wers)) - boot.estimate
    return Interval(boot.estimate + shift, boot.low + shift, boot.high + shift)


def knob_effects(labels: list[LabelRuns]) -> Effects | None:
    """The gap and one effect per hybrid with runs; None while orig or start has no finished run."""
    by = {r.label: r for r in labels}
    if not by.get("orig") or not by.get("start") or not by["orig"].wers or not by["start"].wers:
        return None
    orig, start = by["orig"], by["start"]
    sigma, df = pooled_std([orig.wers, start.wers])
    gap = _difference(orig, start, sigma, df)
    effects = []
    for runs in labels:
        if runs.direction is None or not runs.wers:
            continue
        a, b = (runs, start) if runs.direction == "knock-in" else (orig, runs)  # effect = b - a
        interval = _difference(a, b, sigma, df)
        name = f"{'+'.join(runs.knobs)} ({runs.direction})"
        effects.append(KnobEffect(runs.label, runs.knobs, runs.direction, interval, len(runs.wers),
                                  classify(interval, gap), verdict(name, interval, gap, sigma if df else math.inf),
                                  interval.estimate / gap.estimate if gap.estimate else None))
    return Effects(gap, sigma if df else math.nan, effects)


def finding_headline(finding: Finding, effects: list[KnobEffect]) -> str:
    """The strategy's verdict: per culprit its knock-in sentence (effect with interval), else its estimate."""
    if not finding.culprits:
        return finding.notes[0] if finding.notes else "the gap is not distinguishable from noise"
    sentences = []
    for culprit in sorted(finding.culprits):
        single = [e for e in effects if "+".join(sorted(e.knobs)) == culprit]
        single.sort(key=lambda e: (e.direction != "knock-in", -e.runs))
        sentences.append(single[0].sentence if single else
                         f"{culprit} explains about {finding.effects.get(culprit, math.nan):+.2f} (no hybrid of its "
                         f"own: estimated from the strategy's hybrids)")
    return "; ".join(sentences)
