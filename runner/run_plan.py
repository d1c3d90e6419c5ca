"""What a bisection is going to train, written when it starts (`run_plan.json` in the work folder of `run`, in
the setup folder of `submit`), so that `status` and a partial `report` know the trainings that have not started
yet and can replay a strategy's questions (plain data; nothing here trains)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.atomic import write_atomic
from common.errors import UserError

PLAN_FILE = "run_plan.json"
ENGINES = ("local", "sisyphus")


@dataclass
class RunPlan:
    engine: str  # "local" (`run`) or "sisyphus" (`submit`)
    orig: str  # absolute paths of the pair's configs
    start: str
    started: float = field(default_factory=time.time)  # when this invocation started (unix time)
    cwd: str = field(default_factory=os.getcwd)  # relative config paths in job results are relative to this
    parallel: int | None = None  # trainings at once (local)
    runs: list[dict[str, Any]] = field(default_factory=list)  # a fixed list: {"label", "seed", "key"} (local)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {"knobs", "direction"}
    strategy: str | None = None  # or a strategy that asks as it learns ...
    strategy_kwargs: dict[str, Any] = field(default_factory=dict)
    units: dict[str, list[str]] = field(default_factory=dict)  # ... over these units
    pair: str | None = None  # the pair's name in Sisyphus aliases (bisect/<pair>/...)
    score_key: str | None = None  # how the local run scores (its jobs' `scored/<key>`); None: not scored

    def unit_sets(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(knobs) for name, knobs in self.units.items()}


def write_run_plan(folder: str | Path, plan: RunPlan) -> Path:
    path = Path(folder) / PLAN_FILE
    write_atomic(path, json.dumps(asdict(plan), indent=1) + "\n")
    return path


def read_run_plan(folder: str | Path) -> RunPlan | None:
    """The folder's plan; None when there is none (a run started by an older version)."""
    path = Path(folder) / PLAN_FILE
    if not path.exists():
        return None
    try:
        plan = RunPlan(**json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"not a run plan written by config-bisect: {exc}", path) from None
    if plan.engine not in ENGINES:
        raise UserError(f"unknown engine {plan.engine!r} (expected one of {', '.join(ENGINES)})", path)
    return plan
