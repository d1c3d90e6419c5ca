"""The report's "plan's row": the row of the decision table (`config-bisect plan`, given to `run`/`submit` with
--plan) for the strategy and GPUs the run used, next to what the run measured, in the plan's units (a round lasts
one training, a training costs `hours_per_training` GPU-hours)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attribution.plan_table import PlanRow, PlanTable


@dataclass
class PlanFigures:
    """One line of the comparison: the plan's row (mean and 95th percentile) or the run's measured figures."""

    label: str
    success: str
    trainings: str
    gpu_hours: str
    rounds: str
    days: str


@dataclass
class PlanView:
    file: str
    computed_for: str  # units, hours per training, noise, trials, seed
    chosen: bool  # the table has the row of the strategy and GPUs the run used
    recommended: bool  # the run used the recommended row
    figures: list[PlanFigures]  # the plan's row, then the run's
    lines: list[str]  # which row is shown and why, whether the run followed the recommendation


def _settings(strategy: str | None, gpus: int | None) -> str:
    if strategy:
        return f"{strategy} on {gpus} GPUs"
    return f"a fixed list of hybrids{f', {gpus} trainings at once' if gpus else ''}"


def _row_figures(row: PlanRow) -> PlanFigures:
    return PlanFigures(f"plan: {row.strategy} on {row.gpus} GPUs (mean, 95th percentile)", *row.figures())


def _run_figures(trainings: int, rounds: int | None, hours: float, partial: bool) -> PlanFigures:
    return PlanFigures("this run (so far)" if partial else "this run", "-", str(trainings),
                       f"{trainings * hours:.0f}", "-" if rounds is None else str(rounds),
                       "-" if rounds is None else f"{rounds * hours / 24:.1f}")


def plan_view(section: dict[str, Any] | None, trainings: int, rounds: int | None, partial: bool = False
              ) -> PlanView | None:
    """The plan's row of results.json's `plan` section (None: the run had no --plan) against the run's `trainings`
    and `rounds`: the row of the strategy and --jobs the run used, else the recommended row with a line saying that
    the run used other settings."""
    if not section:
        return None
    table = PlanTable.from_json(section["table"])
    used = _settings(section["strategy"], section["jobs"])
    pick = table.recommended_row
    row = table.row(section["strategy"], section["jobs"])
    recommended = row is pick
    if row is None:
        lines = [f"The run used other settings ({used}) than any row of the table: shown is the recommended row, "
                 f"{pick.strategy} on {pick.gpus} GPUs."]
    elif recommended:
        lines = [f"The run used the plan's recommended row: {used}."]
    else:
        lines = [f"The run used {used}, not the recommended row ({pick.strategy} on {pick.gpus} GPUs)."]
    lines.append(f"Why the plan recommends {pick.strategy} on {pick.gpus} GPUs: {table.why}.")
    computed_for = (f"{len(table.units)} units ({', '.join(table.units)}); {table.hours_per_training:g} h per "
                    f"training; seed noise {table.noise:g} x the gap; {table.trials_per_case} trials per case "
                    f"({', '.join(table.cases)}), seed {table.seed}")
    return PlanView(section["file"], computed_for, row is not None, recommended,
                    [_row_figures(row or pick), _run_figures(trainings, rounds, table.hours_per_training, partial)],
                    lines)
