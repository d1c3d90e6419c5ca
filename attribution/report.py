"""The bisection report: `write_report`, the entry point `run`, `report` and the Sisyphus gather job call. The view
model is `attribution.report_model`, the templates `attribution/templates/`; effects and verdicts come from
`attribution.effects` (the rule results.json and the console use too).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from common.atomic import write_atomic

if TYPE_CHECKING:
    from attribution.report_model import ReportContext


def write_report(out_dir: Path, results: dict, title: str, context: ReportContext | None = None
                 ) -> tuple[Path, Path]:
    """report.md (with its PNGs beside it) and a self-contained report.html in `out_dir`, from the content of
    results.json (`jobs`, `hybrids`, optionally `strategy`, `environments`, `dev_curves_part_from_start`) and
    what results.json does not hold (`context`: the knob diff, cost inputs, whether the run is partial)."""
    from attribution.report_model import build_model  # matplotlib and Jinja2: only when a report is written
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
