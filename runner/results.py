"""results.json and the report of a bisection: one schema, written by `run` and by the Sisyphus gather job.

Schema (every key always present; README "results.json" documents it for users):
    orig, start        the config pair (paths)
    scorer             "test WER" (recognized and scored) or "dev error" (best dev error in %, without references)
    headline           the verdict in one sentence (the strategy's culprits when a strategy ran)
    verdict            verdict lines: the gap, every switch that is not noise, the strategy's summary and notes,
                       environment warnings
    gap                {"estimate", "low", "high", "seed_std"}: start - orig with its 95 % interval; null until
                       both baselines finished
    hybrids            per label (orig, start, then each hybrid): runs, failed, wer_mean, wer_std, vs_start, vs_orig,
                       effect, effect_low, effect_high, gap_share, verdict ("explains"|"against"|"noise"), sentence
    jobs               every training: label, config, seed, key, status, reason, log, wer, segments, best_dev,
                       train_seconds, seconds, reused, environment (facts from its log), environment_spec, train_dir,
                       final_epoch, score_key
    trainings          {"total", "run", "reused"}: trainings in `jobs`, of which trained now / finished before
    dev_curves_part_from_start   label -> the epoch from which its seed-1 dev curve stays apart from start's
    strategy           the strategy's finding {strategy, culprits, runs, effects, notes}, or null
    environments       the environments section (runner.environment_facts), or null without environment files
                       and original logs
    plan               the decision table given with --plan and the settings the run used
                       (`attribution.plan_table.plan_section`: file, strategy, jobs, table), or null
Non-finite numbers (an interval without seed replicates) are written as null.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artefacts.curves import parting_epochs
from attribution.effects import NO_BASELINE, Effects
from attribution.strategies import Finding
from common.atomic import write_atomic
from runner.dev_curves import dev_curves
from runner.local import JobResult
from runner.summary import Labels, effects_of, hybrid_summaries

if TYPE_CHECKING:
    from attribution.report_model import ReportContext


@dataclass
class Bisection:
    """Everything a bisection's results are made of."""

    orig: str
    start: str
    scorer: str
    runs: list[JobResult]
    labels: Labels
    finding: Finding | None = None
    environments: dict[str, Any] | None = None  # results.json's environments section
    plan: dict[str, Any] | None = None  # results.json's plan section (`attribution.plan_table.plan_section`)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def verdict_lines(effects: Effects | None, finding: Finding | None, environments: dict | None) -> list[str]:
    lines = effects.lines() if effects else [NO_BASELINE]
    if finding is not None:
        lines += finding.summary()
    if environments:
        lines += environments["warnings"] + environments["original"]
    return lines


def results_payload(bisection: Bisection) -> dict[str, Any]:
    effects = effects_of(bisection.runs, bisection.labels)
    reused = sum(r.reused for r in bisection.runs)
    gap = None if effects is None else {"estimate": effects.gap.estimate, "low": effects.gap.low,
                                        "high": effects.gap.high, "seed_std": effects.sigma}
    payload = {
        "orig": bisection.orig, "start": bisection.start, "scorer": bisection.scorer,
        "headline": effects.headline(bisection.finding) if effects else NO_BASELINE,
        "verdict": verdict_lines(effects, bisection.finding, bisection.environments),
        "gap": gap,
        "hybrids": [asdict(s) for s in hybrid_summaries(bisection.runs, bisection.labels, effects)],
        "jobs": [asdict(r) for r in bisection.runs],
        "trainings": {"total": len(bisection.runs), "run": len(bisection.runs) - reused, "reused": reused},
        "dev_curves_part_from_start": parting_epochs(dev_curves(bisection.runs)),
        "strategy": bisection.finding.to_json() if bisection.finding else None,
        "environments": bisection.environments,
        "plan": bisection.plan,
    }
    return _finite(payload)


def write_results(path: Path, bisection: Bisection) -> dict[str, Any]:
    """Write results.json (atomically); returns what was written."""
    payload = results_payload(bisection)
    write_atomic(path, json.dumps(payload, indent=1) + "\n")
    return payload


def write_bisection_report(out_dir: Path, payload: dict[str, Any], title: str,
                           context: ReportContext | None = None) -> tuple[Path, Path] | None:
    """report.md and report.html (see `attribution.report`) from results.json's content and what it does not hold
    (`context`: the knob diff, cost inputs, whether the run is partial); None while orig or start has no
    finished run."""
    if payload["gap"] is None:
        return None
    from attribution.report import write_report  # matplotlib and Jinja2: only when a report is written

    return write_report(out_dir, payload, title, context)
