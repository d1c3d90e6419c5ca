"""What a Sisyphus bisection trains, as plain data (no Sisyphus import: `jobs.graph` turns it into jobs).

The plan of a fixed bisection (baselines, then each requested hybrid with its seeds and environment), the
hybrids a confirmation stage trains again, and which job arguments enter a job's hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from knobs.environment import switched_sides
from runner.environment import FIELDS

NOT_HASHED = ("data_env", "rqmt")  # data locations and requirements do not change results
CONFIRM_SHARE = 0.5  # a confirmation stage trains more seeds of hybrids that moved at least this share of the gap


@dataclass
class Plan:
    """What to train: knob groups per direction, seeds, epochs, and how to score."""

    requests: list[tuple[tuple[str, ...], str]]  # (knobs, direction)
    seeds: int | None = 1  # per hybrid; with a strategy, None: the strategy's own default
    baseline_seeds: int = 3
    jobs: int = 1  # with a strategy: trainings per round (GPUs at once)
    epochs: int | None = None
    vocab: tuple[str, ...] = ()
    refs: str | None = None
    recognition_args: tuple[str, ...] = ()
    data_env: dict[str, str] = field(default_factory=dict)
    rqmt: dict[str, Any] = field(default_factory=dict)  # of a training
    score_rqmt: dict[str, Any] | None = None  # of a scoring; None: the training's
    context_files: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> spec; {}: the tool's Python
    environment_fields: dict[str, list[str]] = field(default_factory=dict)  # environment knob -> spec fields
    environment_report: dict[str, Any] = field(default_factory=dict)  # for the gathered results (PairEnvironments)
    plan_section: dict[str, Any] = field(default_factory=dict)  # results.json's `plan` (submit --plan); {}: none


def environment_spec(plan: Plan, sides: dict[str, str] | None, base_side: str) -> dict[str, Any] | None:
    """The environment (spec) whose fields come from `sides` (None: all from `base_side`); None without
    environment files."""
    if not plan.environments:
        return None
    sides = sides or dict.fromkeys(FIELDS, base_side)
    return {name: plan.environments[sides[name]][name] for name in FIELDS}


@dataclass(frozen=True)
class PlannedHybrid:
    """One hybrid of a plan: the config knobs its hybrid config switches (none: it trains the base config itself)
    and the environment it trains in (environment knobs take their fields from the donor side)."""

    knobs: tuple[str, ...]  # every switched knob, sorted
    direction: str
    config_knobs: tuple[str, ...]
    environment: dict[str, Any] | None

    @property
    def alias(self) -> str:
        """Its name in Sisyphus aliases: `knock-in.batching`."""
        return f"{self.direction}.{'+'.join(self.knobs)}"

    @property
    def base_side(self) -> str:
        return "start" if self.direction == "knock-in" else "orig"

    @property
    def switches_environment(self) -> bool:
        return self.config_knobs != self.knobs


def plan_hybrid(knobs: tuple[str, ...] | frozenset[str], direction: str, plan: Plan) -> PlannedHybrid:
    knobs = tuple(sorted(knobs))
    config_knobs = tuple(k for k in knobs if k not in plan.environment_fields)
    switched = frozenset(knobs) - set(config_knobs)
    base_side = "start" if direction == "knock-in" else "orig"
    sides = switched_sides(switched, direction, plan.environment_fields) if switched else None
    return PlannedHybrid(knobs, direction, config_knobs, environment_spec(plan, sides, base_side))


@dataclass(frozen=True)
class PlannedTrainings:
    """The seeds of one label: a baseline (`hybrid` None: the config of side `label`) or a hybrid."""

    label: str
    seeds: range
    environment: dict[str, Any] | None
    hybrid: PlannedHybrid | None = None


def fixed_plan(plan: Plan) -> list[PlannedTrainings]:
    """Everything a fixed bisection trains: orig and start with the baseline seeds, each request with `seeds`."""
    planned = [PlannedTrainings(side, range(1, plan.baseline_seeds + 1), environment_spec(plan, None, side))
               for side in ("orig", "start")]
    for knobs, direction in plan.requests:
        hybrid = plan_hybrid(knobs, direction, plan)
        planned.append(PlannedTrainings(hybrid.alias, range(1, (plan.seeds or 1) + 1), hybrid.environment, hybrid))
    return planned


def movers(results: dict[str, Any], min_share: float = CONFIRM_SHARE) -> list[tuple[tuple[str, ...], str]]:
    """The hybrids (knobs, direction) of a gathered results.json that moved at least `min_share` of the gap."""
    return [(tuple(h["knobs"]), h["direction"]) for h in results["hybrids"]
            if h["direction"] is not None and h["gap_share"] is not None and h["gap_share"] >= min_share]


def confirm_plan(plan: Plan, results: dict[str, Any], extra_seeds: int, min_share: float = CONFIRM_SHARE) -> Plan:
    """Stage 2: `extra_seeds` more seeds for the movers only (their first seeds are the same jobs as before)."""
    return replace(plan, requests=movers(results, min_share), seeds=(plan.seeds or 1) + extra_seeds)


def hashed_args(parsed_args: dict[str, Any]) -> dict[str, Any]:
    """The job arguments that enter a job's hash: all but data locations and requirements."""
    return {k: v for k, v in parsed_args.items() if k not in NOT_HASHED}


def content_digest(path: str | Path) -> str:
    """What a file input is hashed by: its content, not where it lies."""
    return f"sha256:{hashlib.sha256(Path(path).read_bytes()).hexdigest()}"
