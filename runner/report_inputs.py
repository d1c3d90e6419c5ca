"""The report's inputs from where a bisection stands (a `Progress`, local or Sisyphus): results.json-like content
built from the training records (so a report can be written while trainings still run, marked partial) and the
`ReportContext` (the knob diff, cost inputs, what is still pending)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attribution.report_model import ReportContext
from runner.progress import DONE, FAILED, RUNNING, WAITING, Progress


def partial_text(progress: Progress) -> str | None:
    """Why the run is not complete, or None when it is."""
    if progress.complete:
        return None
    count = {s: sum(r.status == s for r in progress.records) for s in (DONE, RUNNING, WAITING, FAILED)}
    text = (f"{count[DONE]} of {len(progress.records)} trainings finished, {count[RUNNING]} running, "
            f"{count[WAITING]} waiting, {count[FAILED]} failed")
    if progress.replay is not None and progress.replay.finding is None:
        text += f"; the {progress.replay.strategy} strategy has not reached its verdict"
    return text


def pending_lines(progress: Progress) -> list[str]:
    """What the run still waits for: the strategy's current question."""
    replay = progress.replay
    if replay is None or replay.finding is not None:
        return []
    asked = ", ".join(f"{label} seed {seed}" for label, seed in replay.asked)
    return [f"The strategy waits for {asked} (round {replay.rounds + 1})."] if asked else []


def title_of(progress: Progress, finished: dict | None) -> str:
    orig = progress.plan.orig if progress.plan else (finished or {}).get("orig") or next(
        (r.config for r in progress.records if r.label == "orig" and r.config), None)
    strategy = progress.plan.strategy if progress.plan else None
    return f"config-bisect{f' ({strategy})' if strategy else ''}: {Path(orig).name if orig else progress.folder}"


def progress_results(progress: Progress, finished: dict | None) -> dict[str, Any]:
    """results.json-like content from the records; the sections only a finished run has (the strategy's finding,
    the environments, the parting epochs, the plan) come from `finished` (its results.json) when the run is complete."""
    order = dict.fromkeys(("orig", "start", *(r.label for r in progress.records)))
    hybrids = [{"label": label, "knobs": progress.labels.get(label, ([], None))[0],
                "direction": progress.labels.get(label, ([], None))[1]} for label in order]
    results: dict[str, Any] = {"jobs": [r.to_json() for r in progress.records], "hybrids": hybrids}
    if finished and progress.complete:
        results.update({k: finished[k] for k in ("strategy", "environments", "dev_curves_part_from_start", "plan")
                        if finished.get(k)})
    return results


def report_context(progress: Progress, hours_per_training: float | None = None) -> ReportContext:
    """`hours_per_training`: None for the plan's (with --plan), else the report's default."""
    replay = progress.replay
    rounds = replay.rounds if replay is not None else (1 if progress.records else None)
    return ReportContext(progress.diff, partial_text(progress), pending_lines(progress), progress.wall_seconds,
                         rounds, hours_per_training, progress.plan.cwd if progress.plan else None)
