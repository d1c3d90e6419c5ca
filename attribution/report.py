"""The bisection report: the verdict rule (effects per hybrid with intervals, the headline) and `write_report`,
the entry point `run` and the Sisyphus gather job call (the view model is `attribution.report_model`, the
templates `attribution/templates/`).

Effects: knock-in = WER(start) - WER(hybrid), knock-out = WER(hybrid) - WER(orig); intervals from the bootstrap
over test segments (Bisani & Ney) widened by the seed variance (pooled over the orig and start replicates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attribution.statistics import Interval, bootstrap_wer_difference, difference_interval, pooled_std, verdict
from attribution.strategies import Finding
from common.atomic import write_atomic

if TYPE_CHECKING:
    from attribution.report_model import ReportContext


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
    sentence: str


def _segment_means(runs: LabelRuns) -> np.ndarray | None:
    return np.mean(runs.segment_errors, axis=0) if runs.segment_errors else None


def knob_effects(labels: list[LabelRuns]) -> tuple[Interval, list[KnobEffect], float]:
    """(the gap, one effect per hybrid, the seed noise)."""
    by = {r.label: r for r in labels}
    orig, start = by["orig"], by["start"]
    sigma, df = pooled_std([orig.wers, start.wers])
    gap = difference_interval(orig.wers, start.wers, sigma if df else None, df or None)
    effects = []
    for runs in labels:
        if runs.direction is None or not runs.wers:
            continue
        reference = start if runs.direction == "knock-in" else orig
        a, b = (runs, reference) if runs.direction == "knock-in" else (reference, runs)  # effect = b - a
        seg_a, seg_b = _segment_means(a), _segment_means(b)
        seed_var = (sigma ** 2) * (1 / len(a.wers) + 1 / len(b.wers)) if df else 0.0
        if seg_a is not None and seg_b is not None and runs.segment_words is not None:
            boot = bootstrap_wer_difference(seg_a, seg_b, runs.segment_words, seed_var)
            # the bootstrap centres on the segment counts; report the mean over seeds as the estimate
            shift = float(np.mean(b.wers) - np.mean(a.wers)) - boot.estimate
            interval = Interval(boot.estimate + shift, boot.low + shift, boot.high + shift)
        else:
            interval = difference_interval(a.wers, b.wers, sigma if df else None, df or None)
        name = f"{'+'.join(runs.knobs)} ({runs.direction})"
        effects.append(KnobEffect(runs.label, runs.knobs, runs.direction, interval, len(runs.wers),
                                  verdict(name, interval, gap, sigma if df else math.inf)))
    return gap, effects, sigma if df else math.nan


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


def write_report(out_dir: Path, results: dict, title: str, context: ReportContext | None = None
                 ) -> tuple[Path, Path]:
    """report.md (with its PNGs beside it) and a self-contained report.html in `out_dir`, from the content of
    results.json (`jobs`, `hybrids`, optionally `strategy`, `environments`, `dev_curves_part_from_start`) and
    what results.json does not hold (`context`: the knob diff, cost inputs, whether the run is partial)."""
    from attribution.report_model import build_model
    from attribution.report_render import render_html, render_markdown

    model = build_model(results, title, out_dir, context)
    images = {}
    for name, data in (("forest", model.forest), ("curves", model.curves)):
        if data:
            images[name] = f"report_{name}.png"
            write_atomic(out_dir / images[name], data)
    write_atomic(out_dir / "report.md", render_markdown(model, images))
    write_atomic(out_dir / "report.html", render_html(model))
    return out_dir / "report.md", out_dir / "report.html"
