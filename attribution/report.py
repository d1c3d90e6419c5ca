"""The bisection report: a verdict per knob with intervals, a bar chart of effects, the dev-score curves.

Input is plain data (what `config-bisect run` writes to results.json and its job folders): per label the
knobs, the direction and the runs (WER, per-segment errors). The effects, their intervals and the verdicts
come from `attribution.effects` (the rule results.json and the console use too).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from artefacts.curves import Curve, curves_png
from attribution.effects import KnobEffect, LabelRuns, knob_effects
from attribution.environment_section import environment_markdown, environment_notes, environment_rows
from attribution.statistics import Interval
from attribution.strategies import Finding
from common.atomic import write_atomic


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
    found = knob_effects(labels)
    if found is None:
        raise ValueError("a report needs finished orig and start runs")
    gap, effects, sigma = found.gap, found.effects, found.sigma
    chart = effects_chart(effects, gap)
    curve_png = curves_png(curves, "dev_error") if curves else None
    write_atomic(out_dir / "report_effects.png", chart)
    if curve_png:
        write_atomic(out_dir / "report_curves.png", curve_png)
    headline = found.headline(finding)
    strategy: list[str] = []
    if finding is not None:
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
