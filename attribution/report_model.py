"""The report's view model: everything the HTML and Markdown templates show, computed from plain data — the
content of results.json (`jobs`: one JobResult-like dict per training, `hybrids`: label, knobs, direction;
`strategy`, `environments`) and a `ReportContext` (the knob diff, cost inputs, whether the run is partial).

Effects and verdicts come from `attribution.effects` (the rule is theirs, as in results.json and on the console);
this module only arranges them for a reader: the verdict first, then per knob what it does and what it changes.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from scipy import stats

from artefacts.curves import Curve, parting_epochs, read_scores
from attribution.effects import Effects, KnobEffect, LabelRuns, knob_effects
from attribution.environment_section import environment_notes, environment_rows
from attribution.plan_table import PlanTable
from attribution.report_charts import CurveGroup, CurvePlot, ForestRow, colours_for, forest_png, training_curves_png
from attribution.report_plan import PlanView, plan_view
from attribution.report_text import (
    FactRow,
    WarningRow,
    fact_rows,
    interaction_sentences,
    warning_rows,
)
from attribution.statistics import pooled_std
from attribution.strategies import Finding
from common.errors import UserError
from knobs.diff import show
from runner.summary import label_runs

HOURS_PER_TRAINING = 80.0  # GPU-hours of one training unless `--hours-per-training` or the run's --plan says otherwise
CURVE_KEYS = ("dev_error", "dev_score")  # the dev curve shown: the first key a learning-rate file has
LR_FILE = "learning_rates"  # beside the training's log (runner.steps.LR_FILE)


@dataclass
class ReportContext:
    """What the report needs beyond results.json."""

    diff: dict | None = None  # the pair's knob diff (`PairDiff.to_json()`): knobs with changes, warnings
    partial: str | None = None  # why the run is not complete ("9 of 16 trainings finished, ..."); None: complete
    pending: list[str] = field(default_factory=list)  # what is still running or asked for next
    wall_seconds: float | None = None  # first training started to last one finished
    rounds: int | None = None  # batches that waited for the one before
    hours_per_training: float | None = None  # None: the plan's (results.json's `plan`), else HOURS_PER_TRAINING
    paths_base: str | None = None  # relative config paths in the jobs are relative to this folder


@dataclass
class ChangeRow:
    knob: str
    path: str
    orig: str
    start: str
    epochs: str  # "all" or RETURNN epoch ranges
    note: str = ""


@dataclass
class EffectCell:
    direction: str
    estimate: float
    low: float
    high: float
    share: float | None  # of the gap
    runs: int
    sentence: str
    kind: str  # "explains", "against", "noise"


@dataclass
class KnobRow:
    name: str  # the knob, or knobs switched together ("lr+pretrain")
    category: str
    kind: str
    colour: str
    effects: list[EffectCell]
    changes: list[ChangeRow]


@dataclass
class SeedCell:
    seed: int
    text: str  # WER or the state
    status: str
    log_href: str | None
    reason: str | None = None


@dataclass
class HybridRow:
    label: str
    knobs: str
    direction: str
    colour: str
    seeds: list[SeedCell]
    mean: str
    interval: str
    status: str
    config_href: str | None
    parted: str  # the epoch from which its dev curve stays apart from start's


@dataclass
class Cost:
    trainings: int
    reused: int
    failed: int
    cpu_hours: float
    gpu_hours: float
    hours_per_training: float
    rounds: int | None
    wall_seconds: float | None


@dataclass
class ReportModel:
    title: str
    generated: str
    partial: str | None
    pending: list[str]
    verdict: str  # one sentence: the finding, the gap with its interval, the noise floor
    explained: bool  # whether a knob explains (part of) the gap
    to_change: list[ChangeRow]  # the config lines of the knobs that explain the gap
    strategy: list[str]
    knobs: list[KnobRow]
    untested: list[KnobRow]  # differences no hybrid switched on its own
    interactions: list[str]
    hybrids: list[HybridRow]
    facts: list[FactRow]
    environment_rows: list[tuple[str, ...]]
    environment_notes: list[str]
    warnings: list[WarningRow]
    diff_known: bool  # False: the folder kept no knob diff (a run of an older version)
    cost: Cost
    plan: PlanView | None  # the plan's row against the run (with --plan)
    forest: bytes | None
    curves: bytes | None
    curve_key: str | None


def _href(path: str | None, out_dir: Path, base: str | None) -> str | None:
    if not path:
        return None
    target = Path(path) if Path(path).is_absolute() else Path(base or os.getcwd()) / path
    return quote(Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix())


def _changes(diff: dict | None) -> dict[str, list[ChangeRow]]:
    rows: dict[str, list[ChangeRow]] = {}
    for knob in (diff or {}).get("knobs", []):
        rows[knob["name"]] = [ChangeRow(knob["name"], c["path"], show(c["orig"], 80), show(c["start"], 80),
                                        c.get("epochs") or "all", c.get("note") or "") for c in knob["changes"]]
    return rows


def _categories(diff: dict | None) -> dict[str, str]:
    return {k["name"]: k["category"] for k in (diff or {}).get("knobs", [])}


def _knob_rows(effects: list[KnobEffect], diff: dict | None,
               colours: dict[str, str]) -> list[KnobRow]:
    changes, categories = _changes(diff), _categories(diff)
    rows: dict[str, KnobRow] = {}
    for e in effects:
        name = "+".join(sorted(e.knobs))
        cell = EffectCell(e.direction, e.interval.estimate, e.interval.low, e.interval.high, e.share, e.runs,
                          e.sentence, e.verdict)
        if name not in rows:
            rows[name] = KnobRow(name, ", ".join(dict.fromkeys(categories.get(k, "?") for k in sorted(e.knobs))),
                                 "noise", colours[name], [], [c for k in sorted(e.knobs) for c in changes.get(k, [])])
        rows[name].effects.append(cell)
    order = {"explains": 0, "against": 1, "noise": 2}
    for row in rows.values():
        row.kind = min((c.kind for c in row.effects), key=order.__getitem__)
    return sorted(rows.values(), key=lambda r: (order[r.kind], -max(abs(c.estimate) for c in r.effects)))


def _untested(diff: dict | None, tested: list[KnobRow]) -> list[KnobRow]:
    """The diff's knobs that no hybrid switched, alone or in a group."""
    switched = {knob for row in tested for knob in row.name.split("+")}
    rows = []
    for knob in (diff or {}).get("knobs", []):
        if knob["name"] not in switched:
            rows.append(KnobRow(knob["name"], knob["category"], "untested", "#7f7f7f", [],
                                _changes({"knobs": [knob]})[knob["name"]]))
    return rows


def _mean_interval(wers: list[float], sigma: float, df: int) -> tuple[str, str]:
    if not wers:
        return "-", "-"
    mean = sum(wers) / len(wers)
    if not df or not math.isfinite(sigma):
        return f"{mean:.2f}", "-"
    half = float(stats.t.ppf(0.975, df)) * sigma / math.sqrt(len(wers))
    return f"{mean:.2f}", f"[{mean - half:.2f}, {mean + half:.2f}]"


@dataclass
class _Table:
    """What the hybrid table needs besides the jobs."""

    colours: dict[str, str]
    noise: tuple[float, int]  # pooled seed std of orig and start, degrees of freedom
    parted: dict[str, int | None]
    out_dir: Path
    base: str | None  # relative config paths are relative to this

    def href(self, path: str | None) -> str | None:
        return _href(path, self.out_dir, self.base)


def _hybrid_rows(jobs: list[dict], labels: dict[str, tuple[list[str], str | None]], table: _Table) -> list[HybridRow]:
    rows = []
    for label, (knobs, direction) in labels.items():
        runs = sorted((j for j in jobs if j["label"] == label), key=lambda j: j["seed"])
        seeds = [SeedCell(j["seed"], f"{j['wer']:.2f}" if j.get("wer") is not None else j["status"], j["status"],
                          table.href(j.get("log")), j.get("reason")) for j in runs]
        ok = [j["wer"] for j in runs if j["status"] == "ok" and j.get("wer") is not None]
        mean, interval = _mean_interval(ok, *table.noise)
        counts = {s: sum(j["status"] == s for j in runs) for s in ("ok", "failed", "running", "waiting")}
        status = ", ".join(f"{n} {'done' if s == 'ok' else s}" for s, n in counts.items() if n) or "not started"
        config = next((j.get("config") for j in runs if j.get("config")), None)
        name = "+".join(sorted(knobs)) if knobs else label
        parted = table.parted.get(label)
        rows.append(HybridRow(label, "+".join(sorted(knobs)) or "-", direction or "baseline",
                              table.colours.get(name, "#7f7f7f"), seeds, mean, interval, status, table.href(config),
                              "-" if label == "start" else f"epoch {parted}" if parted else "stays with start"))
    return rows


def _curve_of(job: dict) -> tuple[str, Curve] | None:
    if not job.get("log") or job["status"] not in ("ok", "running"):
        return None
    try:
        scores = read_scores(Path(job["log"]).with_name(LR_FILE))
    except UserError:
        return None
    present = {k for s in scores.values() for k in s}
    key = next((k for k in CURVE_KEYS if k in present), None)
    if key is None:
        return None
    return key, Curve(f"{job['label']} seed {job['seed']}", {e: s[key] for e, s in scores.items() if key in s})


def _curve_plot(jobs: list[dict], labels: dict[str, tuple[list[str], str | None]], colours: dict[str, str],
                parted: dict[str, int | None] | None) -> tuple[CurvePlot | None, dict[str, int | None]]:
    """The dev curves of the trainings (finished or running) and per label its parting epoch from start's."""
    found = {(j["label"], j["seed"]): c for j in jobs if (c := _curve_of(j)) is not None}
    if not found:
        return None, parted or {}
    key = next(k for k in CURVE_KEYS if any(k == c[0] for c in found.values()))
    curves = {run: c for run, (k, c) in found.items() if k == key}
    if parted is None:
        parted = parting_epochs(curves)
    plot = CurvePlot(key)
    for label, (knobs, direction) in labels.items():
        seeds = {seed: c.values for (lab, seed), c in sorted(curves.items()) if lab == label}
        if not seeds:
            continue
        name = "+".join(sorted(knobs)) if knobs else label
        epoch = parted.get(label)
        plot.groups.append(CurveGroup(name, colours.get(name, "#7f7f7f"), f"{direction} hybrids" if direction
                                      else "", seeds, epoch, direction is None))
    return plot, parted


def _cost(jobs: list[dict], context: ReportContext, strategy: dict | None, plan: dict | None) -> Cost:
    hours = context.hours_per_training
    if hours is None:
        hours = PlanTable.from_json(plan["table"]).hours_per_training if plan else HOURS_PER_TRAINING
    trained = {j.get("key") or (j["label"], j["seed"]): j for j in jobs if j["status"] in ("ok", "failed")}
    seconds = sum(j.get("seconds") or 0.0 for j in trained.values())
    rounds = context.rounds if context.rounds is not None else (strategy or {}).get("rounds") or (
        None if strategy else 1)
    return Cost(len(trained), sum(bool(j.get("reused")) for j in trained.values()),
                sum(j["status"] == "failed" for j in trained.values()), seconds / 3600,
                len(trained) * hours, hours, rounds, context.wall_seconds)


@dataclass
class RunEffects:
    """The verdict rule (`attribution.effects`) applied to results.json's content."""

    labels: dict[str, tuple[list[str], str | None]]
    runs: dict[str, LabelRuns]
    finding: Finding | None
    effects: Effects | None  # None until orig and start have a finished training each

    @classmethod
    def of(cls, results: dict[str, Any]) -> RunEffects:
        labels = {h["label"]: (h["knobs"], h["direction"]) for h in results.get("hybrids", [])}
        runs = label_runs([SimpleNamespace(**{"segments": [], **j}) for j in results.get("jobs", [])], labels)
        strategy = results.get("strategy")
        return cls(labels, {r.label: r for r in runs}, Finding.from_json(strategy) if strategy else None,
                   knob_effects(runs))

    def verdict(self, partial: bool = False) -> str:
        """One sentence: the finding (the strategy's, else the largest effect beyond the noise), the gap with its
        interval and the noise floor; "So far: ..." while the run is `partial`."""
        if self.effects is None:
            return "No verdict yet: orig and start need a finished training each."
        gap, sigma = self.effects.gap, self.effects.sigma
        headline = self.effects.headline(self.finding)
        interval = (f"95 % interval [{gap.low:+.2f}, {gap.high:+.2f}]" if math.isfinite(gap.half_width)
                    else "no interval: one seed per side")
        floor = f"noise floor ±{2 * sigma:.2f}" if math.isfinite(sigma) else "noise floor unknown: one seed per side"
        sentence = f"{headline} (gap start − orig {gap.estimate:+.2f} % WER, {interval}; {floor})."
        return f"So far: {sentence}" if partial else sentence  # it may start with a knob's name: kept as it is


def build_model(results: dict[str, Any], title: str, out_dir: Path,
                context: ReportContext | None = None) -> ReportModel:
    """The view model of results.json's content; links are relative to `out_dir`."""
    context = context or ReportContext()
    jobs = results.get("jobs", [])
    found = RunEffects.of(results)
    labels, finding, by = found.labels, found.finding, found.runs
    colours = colours_for(["+".join(sorted(k)) for k, d in labels.values() if d is not None])
    knob_rows: list[KnobRow] = []
    forest, gap_half, explaining = None, None, []
    if found.effects is not None:
        gap, sigma = found.effects.gap, found.effects.sigma
        knob_rows = _knob_rows(found.effects.effects, context.diff, colours)
        rows = [ForestRow(f"gap start − orig ({len(by['orig'].wers)}+{len(by['start'].wers)} runs)",
                          gap.estimate, gap.low, gap.high, "gap")]
        rows += [ForestRow(f"{k.name} ({c.direction}, {c.runs} run{'s' if c.runs > 1 else ''})", c.estimate,
                           c.low, c.high, c.kind) for k in knob_rows for c in k.effects]
        forest = forest_png(rows, 2 * sigma if math.isfinite(sigma) else None)
        gap_half = (gap.estimate, gap.half_width)
        explaining = sorted(finding.culprits) if finding else [k.name for k in knob_rows if k.kind == "explains"]
    pooled, df = pooled_std([by[s].wers for s in ("orig", "start") if s in by])
    changes = _changes(context.diff)
    to_change = [c for name in explaining for knob in name.split("+") for c in changes.get(knob, [])]
    plot, parted = _curve_plot(jobs, labels, colours, results.get("dev_curves_part_from_start"))
    strategy_lines = []
    if finding is not None:
        strategy_lines = [f"Strategy {finding.strategy}: culprits {', '.join(sorted(finding.culprits)) or 'none'} "
                          f"after {finding.runs} trainings.", *finding.notes]
    environments = results.get("environments")
    cost = _cost(jobs, context, results.get("strategy"), results.get("plan"))
    return ReportModel(
        title=title, generated=time.strftime("%Y-%m-%d %H:%M %Z"), partial=context.partial, pending=context.pending,
        verdict=found.verdict(bool(context.partial)), explained=bool(explaining), to_change=to_change,
        strategy=strategy_lines, knobs=knob_rows,
        untested=_untested(context.diff, knob_rows),
        interactions=interaction_sentences(knob_rows, context.diff, results.get("strategy"), gap_half,
                                           complete=not context.partial), diff_known=context.diff is not None,
        hybrids=_hybrid_rows(jobs, labels, _Table(colours, (pooled, df), parted, out_dir, context.paths_base)),
        facts=fact_rows(jobs), environment_rows=environment_rows(environments) if environments else [],
        environment_notes=environment_notes(environments) if environments else [],
        warnings=warning_rows(context.diff), cost=cost,
        plan=plan_view(results.get("plan"), cost.trainings, cost.rounds, bool(context.partial)), forest=forest,
        curves=training_curves_png(plot) if plot else None, curve_key=plot.key if plot else None)
