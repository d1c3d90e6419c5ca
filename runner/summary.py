"""Aggregate job results: WER per hybrid over seeds, change against start and orig, which knobs matter."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import numpy as np

from attribution.report import LabelRuns
from runner.local import JobResult


@dataclass
class HybridSummary:
    label: str
    knobs: list[str]
    direction: str | None  # None for the orig/start baselines
    runs: int
    failed: int
    wer_mean: float | None
    wer_std: float | None
    vs_start: float | None = None
    vs_orig: float | None = None
    gap_share: float | None = None  # knock-in: share of the gap closed; knock-out: share re-opened


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(results: list[JobResult], labels: dict[str, tuple[list[str], str | None]]) -> list[HybridSummary]:
    """`labels`: label -> (knobs, direction), in the order to report."""
    summaries = []
    for label, (knobs, direction) in labels.items():
        runs = [r for r in results if r.label == label]
        wers = [r.wer for r in runs if r.status == "ok" and r.wer is not None]
        mean, std = _stats(wers)
        summaries.append(HybridSummary(label, knobs, direction, len(runs), sum(r.status != "ok" for r in runs),
                                       mean, std))
    base = {s.label: s.wer_mean for s in summaries if s.direction is None}
    orig, start = base.get("orig"), base.get("start")
    for s in summaries:
        if s.wer_mean is None:
            continue
        s.vs_start = None if start is None else s.wer_mean - start
        s.vs_orig = None if orig is None else s.wer_mean - orig
        if orig is not None and start is not None and start != orig and s.direction is not None:
            gap = start - orig
            s.gap_share = (start - s.wer_mean) / gap if s.direction == "knock-in" else (s.wer_mean - orig) / gap
    return summaries


def noise(summaries: list[HybridSummary]) -> float:
    """Seed noise: the larger seed standard deviation of the orig and start baselines."""
    stds = [s.wer_std for s in summaries if s.direction is None and s.wer_std is not None]
    return max(stds) if stds else 0.0


def verdict(summaries: list[HybridSummary]) -> list[str]:
    """Sentences naming the knobs whose switch moves at least half of the gap, beyond 2x seed noise."""
    base = {s.label: s for s in summaries if s.direction is None}
    if "orig" not in base or "start" not in base or base["orig"].wer_mean is None or base["start"].wer_mean is None:
        return ["no verdict: the orig or start baseline did not finish"]
    gap = base["start"].wer_mean - base["orig"].wer_mean
    floor = noise(summaries)
    lines = [f"gap: start {base['start'].wer_mean:.2f}% vs orig {base['orig'].wer_mean:.2f}% WER "
             f"= {gap:+.2f} (seed std up to {floor:.2f})"]
    if abs(gap) <= 2 * floor:
        lines.append("the gap is not distinguishable from seed noise")
        return lines
    for s in summaries:
        if s.gap_share is None or s.direction is None:
            continue
        moved = abs(s.gap_share * gap)
        if s.gap_share >= 0.5 and moved > 2 * floor:
            action = "closes" if s.direction == "knock-in" else "re-opens"
            lines.append(f"{'+'.join(s.knobs)} ({s.direction}) {action} {100 * s.gap_share:.0f}% of the gap")
    if len(lines) == 1:
        lines.append("no single knob switch moves at least half of the gap beyond the seed noise")
    return lines


def to_json(summaries: list[HybridSummary]) -> list[dict]:
    return [asdict(s) for s in summaries]


def label_runs(results: list[JobResult], labels: dict[str, tuple[list[str], str | None]]) -> list[LabelRuns]:
    """The report's input: per label its WERs and per-segment errors (ok runs only)."""
    runs = []
    for label, (knobs, direction) in labels.items():
        ok = [r for r in results if r.label == label and r.status == "ok" and r.wer is not None]
        errors = [np.array([s["substitutions"] + s["deletions"] + s["insertions"] for s in r.segments]) for r in ok
                  if r.segments]
        words = np.array([s["ref_words"] for s in ok[0].segments]) if ok and ok[0].segments else None
        runs.append(LabelRuns(label, knobs, direction, [r.wer for r in ok], errors, words))
    return runs
