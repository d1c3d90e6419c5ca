"""The bisection report: a verdict per knob with intervals, a bar chart of effects, the dev-score curves.

Input is plain data (what `config-bisect run` writes to results.json and its job folders): per label the
knobs, the direction and the runs (WER, per-segment errors). Effects: knock-in = WER(start) - WER(hybrid),
knock-out = WER(hybrid) - WER(orig); intervals from the bootstrap over test segments (Bisani & Ney) widened
by the seed variance (pooled over the orig and start replicates).
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artefacts.curves import Curve, curves_png
from attribution.environment_section import environment_markdown, environment_notes, environment_rows
from attribution.statistics import Interval, bootstrap_wer_difference, difference_interval, pooled_std, verdict
from attribution.strategies import Finding
from common.atomic import write_atomic


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


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def effects_chart(effects: list[KnobEffect], gap: Interval) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(effects) + 1.5))
    y = np.arange(len(effects))
    values = [e.interval.estimate for e in effects]
    errors = [e.interval.half_width if math.isfinite(e.interval.half_width) else 0 for e in effects]
    ax.barh(y, values, xerr=errors, color=["tab:blue" if e.direction == "knock-in" else "tab:orange" for e in effects])
    ax.axvline(gap.estimate, color="black", linestyle="--", label=f"gap {gap.estimate:.2f}")
    ax.set_yticks(y, [e.label for e in effects])
    ax.set_xlabel("WER effect (absolute %)")
    ax.legend()
    fig.tight_layout()
    data = _png(fig)
    plt.close(fig)
    return data


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


def _environment_html(section: dict | None) -> str:
    if not section:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("side", "environment", "probed", "trained (log)", "original training"))
    cells = ("".join(f"<td>{html.escape(c)}</td>" for c in row) for row in environment_rows(section))
    rows = "".join(f"<tr>{c}</tr>" for c in cells)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in environment_notes(section))
    return f"<h2>Environments</h2><table border=1><tr>{head}</tr>{rows}</table><ul>{notes}</ul>"


def write_report(out_dir: Path, labels: list[LabelRuns], curves: list[Curve], title: str,
                 finding: Finding | None = None, environments: dict | None = None) -> tuple[Path, Path]:
    """report.md (with PNG files beside it) and a self-contained report.html (PNGs inlined). With a strategy's
    `finding`, the headline is its culprits, and its trainings and notes follow; `environments` (results.json's
    section) adds the environments per side and their warnings."""
    gap, effects, sigma = knob_effects(labels)
    chart = effects_chart(effects, gap)
    curve_png = curves_png(curves, "dev_error") if curves else None
    write_atomic(out_dir / "report_effects.png", chart)
    if curve_png:
        write_atomic(out_dir / "report_curves.png", curve_png)
    significant = sorted((e for e in effects if e.interval.excludes_zero()), key=lambda e: -abs(e.interval.estimate))
    headline = significant[0].sentence if significant else "no switch moves the WER beyond the noise"
    strategy: list[str] = []
    if finding is not None:
        headline = finding_headline(finding, effects)
        strategy = [f"Strategy {finding.strategy}: culprits {', '.join(sorted(finding.culprits)) or 'none'} "
                    f"after {finding.runs} trainings.", *finding.notes]
    rows = [(e.label, f"{e.interval.estimate:+.2f}", f"[{e.interval.low:+.2f}, {e.interval.high:+.2f}]", str(e.runs))
            for e in effects]
    md = [f"# {title}", "", f"**{headline}**", "",
          f"Gap start − orig: {gap.estimate:.2f} (95 % interval [{gap.low:.2f}, {gap.high:.2f}]); seed noise "
          f"(pooled std of the orig and start replicates): {sigma:.2f}.", "",
          *(f"- {line}" for line in strategy), *([""] if strategy else []),
          "| hybrid | effect | 95 % interval | runs |", "|---|---|---|---|",
          *(f"| {' | '.join(r)} |" for r in rows), "", *(f"- {e.sentence}" for e in effects), "",
          "![effects](report_effects.png)", ""]
    if curve_png:
        md += ["![dev curves](report_curves.png)", ""]
    md += environment_markdown(environments)
    write_atomic(out_dir / "report.md", "\n".join(md))

    def img(data: bytes) -> str:
        return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    table = "".join(f"<tr>{''.join(f'<td>{html.escape(c)}</td>' for c in r)}</tr>" for r in rows)
    body = (f"<h1>{html.escape(title)}</h1><p><b>{html.escape(headline)}</b></p>"
            f"<p>Gap start − orig: {gap.estimate:.2f} (95 % interval [{gap.low:.2f}, {gap.high:.2f}]); "
            f"seed noise {sigma:.2f}.</p>"
            + (f"<ul>{''.join(f'<li>{html.escape(line)}</li>' for line in strategy)}</ul>" if strategy else "")
            + f"<table border=1><tr><th>hybrid</th><th>effect</th><th>95 % interval</th>"
            f"<th>runs</th></tr>{table}</table><ul>{''.join(f'<li>{html.escape(e.sentence)}</li>' for e in effects)}"
            f"</ul>{img(chart)}{img(curve_png) if curve_png else ''}{_environment_html(environments)}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>" \
           f"<body>{body}</body></html>\n"
    write_atomic(out_dir / "report.html", page)
    return out_dir / "report.md", out_dir / "report.html"
