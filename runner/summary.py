"""Aggregate job results per hybrid: score mean and spread over seeds, change against start and orig, and the
effect with its interval and verdict (the one rule of `attribution.effects`)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from attribution.effects import Effects, LabelRuns, knob_effects
from runner.local import JobResult

Labels = dict[str, tuple[list[str], str | None]]  # label -> (knobs, direction), in the order to report


def run_score(result: JobResult) -> float | None:
    """What a finished run is judged by: its test WER, or without references its best dev error in %."""
    if result.status != "ok":
        return None
    if result.wer is not None:
        return result.wer
    return 100 * result.best_dev["value"] if result.best_dev else None


@dataclass
class HybridSummary:
    label: str
    knobs: list[str]
    direction: str | None  # None for the orig/start baselines
    runs: int
    failed: int
    wer_mean: float | None  # the scorer's mean over the finished seeds (see results.json's `scorer`)
    wer_std: float | None
    vs_start: float | None = None
    vs_orig: float | None = None
    effect: float | None = None  # knock-in: WER(start) - WER(hybrid); knock-out: WER(hybrid) - WER(orig)
    effect_low: float | None = None  # its 95 % interval
    effect_high: float | None = None
    gap_share: float | None = None  # effect / gap: knock-in: share of the gap closed; knock-out: re-opened
    verdict: str | None = None  # "explains" | "against" | "noise"
    sentence: str | None = None


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def label_runs(results: list[JobResult], labels: Labels) -> list[LabelRuns]:
    """Per label its scores and per-segment errors (finished runs only): the input of the effects and the report."""
    runs = []
    for label, (knobs, direction) in labels.items():
        ok = [r for r in results if r.label == label and run_score(r) is not None]
        errors = [np.array([s["substitutions"] + s["deletions"] + s["insertions"] for s in r.segments]) for r in ok
                  if r.segments]
        words = np.array([s["ref_words"] for s in ok[0].segments]) if ok and ok[0].segments else None
        runs.append(LabelRuns(label, knobs, direction, [run_score(r) for r in ok], errors, words))
    return runs


def hybrid_summaries(results: list[JobResult], labels: Labels, effects: Effects | None) -> list[HybridSummary]:
    """One row per label: runs, score mean ± std, change against start and orig, and its effect and verdict."""
    by_label = {e.label: e for e in effects.effects} if effects else {}
    summaries = []
    for label, (knobs, direction) in labels.items():
        runs = [r for r in results if r.label == label]
        mean, std = _stats([s for s in map(run_score, runs) if s is not None])
        summary = HybridSummary(label, knobs, direction, len(runs), sum(r.status != "ok" for r in runs), mean, std)
        effect = by_label.get(label)
        if effect is not None:
            summary.effect, summary.effect_low, summary.effect_high = (effect.interval.estimate, effect.interval.low,
                                                                       effect.interval.high)
            summary.gap_share, summary.verdict, summary.sentence = effect.share, effect.verdict, effect.sentence
        summaries.append(summary)
    base = {s.label: s.wer_mean for s in summaries if s.direction is None}
    for s in summaries:
        if s.wer_mean is not None:
            s.vs_start = None if base.get("start") is None else s.wer_mean - base["start"]
            s.vs_orig = None if base.get("orig") is None else s.wer_mean - base["orig"]
    return summaries


def effects_of(results: list[JobResult], labels: Labels) -> Effects | None:
    return knob_effects(label_runs(results, labels))
