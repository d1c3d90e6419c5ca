"""The report's two charts as PNG bytes (matplotlib's Agg canvas, no pyplot state): a forest plot of every
effect with its interval on one axis with the noise band shaded, and the dev-score curves, one colour per
hybrid (orig and start in fixed colours), seeds as thin lines, the mean over seeds thick, the epoch where a
hybrid's curve parts from start's marked."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np

ORIG_COLOUR, START_COLOUR = "#000000", "#d62728"  # black and red: never given to a hybrid
# tab10 and the dark tab20 shades without red, grey and colours too close to them
HYBRID_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
                  "#393b79", "#637939", "#8c6d31", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1")
VERDICT_COLOURS = {"gap": "#000000", "explains": "#1f77b4", "against": "#ff7f0e", "noise": "#7f7f7f"}


def colours_for(unit_names: list[str]) -> dict[str, str]:
    """unit (knob set) name -> colour; orig and start keep theirs. A knob set has one colour in both
    directions (the curves are drawn per direction, so within a panel every hybrid has its own colour)."""
    colours = {"orig": ORIG_COLOUR, "start": START_COLOUR}
    for i, name in enumerate(dict.fromkeys(unit_names)):
        colours[name] = HYBRID_COLOURS[i % len(HYBRID_COLOURS)]
    return colours


@dataclass
class ForestRow:
    label: str
    estimate: float
    low: float
    high: float
    kind: str  # "gap", "explains", "against" or "noise"


@dataclass
class CurveGroup:
    label: str  # legend text
    colour: str
    panel: str  # the panel title ("knock-in hybrids", ...); orig and start are drawn in every panel
    seeds: dict[int, dict[int, float]]  # seed -> epoch -> score
    parted: int | None = None
    baseline: bool = False

    def mean(self) -> dict[int, float]:
        """Per epoch the mean over the seeds that have a finite score there."""
        epochs = sorted({e for values in self.seeds.values() for e in values})
        means = {}
        for epoch in epochs:
            finite = [v[epoch] for v in self.seeds.values() if epoch in v and math.isfinite(v[epoch])]
            if finite:
                means[epoch] = float(np.mean(finite))
        return means


@dataclass
class CurvePlot:
    key: str
    groups: list[CurveGroup] = field(default_factory=list)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # "tight" keeps a legend below the axes
    return buffer.getvalue()


def forest_png(rows: list[ForestRow], noise_band: float | None) -> bytes:
    """Every effect (WER %, start's side positive) as a point with its 95 % interval, top to bottom."""
    fig = _figure(9.5, 0.36 * len(rows) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(rows))[::-1]
    finite = [v for r in rows for v in (r.estimate, r.low, r.high) if math.isfinite(v)]
    span = (max(finite) - min(finite)) if finite else 1.0
    left, right = (min(finite + [0.0]) - 0.08 * span, max(finite + [0.0]) + 0.08 * span) if finite else (-1, 1)
    if noise_band and math.isfinite(noise_band):
        ax.axvspan(-noise_band, noise_band, color="#d9d9d9", alpha=0.7, lw=0,
                   label=f"noise floor ±{noise_band:.2f}")
        left, right = min(left, -1.1 * noise_band), max(right, 1.1 * noise_band)
    ax.axvline(0, color="#555555", lw=0.8)
    for yi, row in zip(y, rows, strict=True):
        colour = VERDICT_COLOURS[row.kind]
        low = row.low if math.isfinite(row.low) else left
        high = row.high if math.isfinite(row.high) else right
        ax.plot([low, high], [yi, yi], color=colour, lw=2.2 if row.kind == "gap" else 1.6, solid_capstyle="butt")
        ax.plot([row.estimate], [yi], marker="D" if row.kind == "gap" else "o", color=colour, ms=6)
        if row.kind == "gap":
            ax.axvline(row.estimate, color=colour, lw=0.8, ls="--")
    if right - left < 1e-9:  # every value is 0 (e.g. 100 % WER everywhere)
        left, right = left - 1.0, right + 1.0
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_yticks(y, [r.label for r in rows])
    ax.set_xlabel("effect on WER (absolute %); positive: towards start's WER")
    ax.grid(axis="x", alpha=0.3)
    handles = [ax.plot([], [], marker="o", color=c, ls="-", label=k)[0] for k, c in VERDICT_COLOURS.items()
               if k != "gap" and any(r.kind == k for r in rows)]
    ax.legend(handles=[*ax.get_legend_handles_labels()[0][:1], *handles], fontsize="small", loc="lower right")
    fig.tight_layout()
    return _png(fig)


def training_curves_png(plot: CurvePlot) -> bytes:
    """One panel per direction (orig and start in each), log scale when the scores span more than 10x, one legend
    for the figure (a knob set has one colour in every panel)."""
    from matplotlib.lines import Line2D

    panels = list(dict.fromkeys(g.panel for g in plot.groups if not g.baseline)) or ["orig and start"]
    fig = _figure(max(8.0, 5.6 * len(panels) + 0.6), 3.9)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    finite = [v for g in plot.groups for s in g.seeds.values() for v in s.values() if math.isfinite(v)]
    log = bool(finite) and min(finite) > 0 and max(finite) > 10 * min(finite)
    legend: dict[str, Line2D] = {}
    for ax, panel in zip(axes, panels, strict=True):
        for group in plot.groups:
            if not group.baseline and group.panel != panel:
                continue
            style = "--" if group.colour == ORIG_COLOUR else "-"
            for values in group.seeds.values():
                epochs = sorted(values)
                ax.plot(epochs, [values[e] for e in epochs], color=group.colour, lw=0.8, alpha=0.55, ls=style)
            mean = group.mean()
            epochs = sorted(mean)
            ax.plot(epochs, [mean[e] for e in epochs], color=group.colour, lw=2.2, ls=style)
            if group.parted in mean:
                ax.plot([group.parted], [mean[group.parted]], marker="v", ms=10, color=group.colour,
                        markeredgecolor="white")
            legend.setdefault(group.label, Line2D([], [], color=group.colour, lw=2.2, ls=style))
        if log:
            ax.set_yscale("log")
        ax.set_title(panel, fontsize="medium")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(plot.key)
    legend["parts from start"] = Line2D([], [], color="#555555", marker="v", ls="", ms=9)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 8), frameon=False,
               fontsize="small")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return _png(fig)
