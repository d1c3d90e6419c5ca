"""Render the report's view model with Jinja2: a self-contained HTML page (styles inline, images as data URIs)
and Markdown with the images as PNG files beside it — two templates over one model."""

from __future__ import annotations

import base64
import math

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from attribution.report_model import ReportModel
from common.timefmt import duration


def _signed(value: float) -> str:
    return f"{value:+.2f}" if math.isfinite(value) else ("−∞" if value < 0 else "+∞")


def _percent(share: float | None) -> str:
    return "-" if share is None or not math.isfinite(share) else f"{100 * share:.0f} %"


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _environment(autoescape: bool) -> Environment:
    env = Environment(loader=PackageLoader("attribution", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html.j2"]) if autoescape else False, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(signed=_signed, percent=_percent, duration=duration, cell=_cell,
                       b64=lambda data: base64.b64encode(data).decode())
    return env


def render_html(model: ReportModel) -> str:
    return _environment(True).get_template("report.html.j2").render(m=model)


def render_markdown(model: ReportModel, images: dict[str, str]) -> str:
    """`images`: "forest" and "curves" -> the PNG file names beside the Markdown file."""
    return _environment(False).get_template("report.md.j2").render(m=model, images=images)
