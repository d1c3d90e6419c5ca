"""The report: report.md with PNGs beside it, a self-contained report.html, verdict sentences."""

from __future__ import annotations

import re

import numpy as np

from artefacts.curves import Curve
from attribution.report import LabelRuns, write_report
from attribution.simulator import SEGMENT_WORDS


def test_report_files_are_written_and_the_html_is_self_contained(tmp_path):
    rng = np.random.default_rng(3)
    words = np.full(50, SEGMENT_WORDS)

    def runs(label, knobs, direction, p, n):
        errors = [rng.binomial(SEGMENT_WORDS, p, size=50) for _ in range(n)]
        return LabelRuns(label, knobs, direction, [100 * e.sum() / words.sum() for e in errors], errors, words)

    labels = [runs("orig", [], None, 0.10, 3), runs("start", [], None, 0.30, 3),
              runs("knock-in:batching", ["batching"], "knock-in", 0.10, 1),
              runs("knock-in:l2", ["l2"], "knock-in", 0.30, 1)]
    curves = [Curve("orig seed 1", {1: 1.0, 2: 0.5}), Curve("start seed 1", {1: 1.0, 2: 0.9})]
    md, page = write_report(tmp_path, labels, curves, "demo")
    text = md.read_text()
    assert text.startswith("# demo") and "**batching (knock-in) explains" in text
    assert "l2 (knock-in)" in text and "not distinguishable from noise" in text
    assert "| knock-in:batching |" in text and "![effects](report_effects.png)" in text
    assert (tmp_path / "report_effects.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report_curves.png").read_bytes()[:4] == b"\x89PNG"
    html_text = page.read_text()
    assert html_text.count("data:image/png;base64,") == 2
    sources = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html_text)
    assert sources and all(s.startswith("data:") for s in sources)  # nothing fetched from elsewhere
    assert "<link" not in html_text and "<script" not in html_text
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_report_without_curves_has_one_chart(tmp_path):
    words = np.full(20, SEGMENT_WORDS)
    labels = [LabelRuns("orig", [], None, [10.0, 10.2], [], None), LabelRuns("start", [], None, [12.0, 12.1], [], None),
              LabelRuns("knock-out:lr", ["lr"], "knock-out", [12.05], [], words)]
    md, page = write_report(tmp_path, labels, [], "no curves")
    assert "lr (knock-out) explains" in md.read_text()
    assert page.read_text().count("data:image/png;base64,") == 1 and not (tmp_path / "report_curves.png").exists()
