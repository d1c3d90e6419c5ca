"""The decision table of `config-bisect plan` as a file: what `plan -o PLAN.json` writes and `run`/`submit --plan`
read (validated: a clear one-line error for a file that is not such a table, or one computed for other units), and
the `plan` section of results.json built from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from common.errors import UserError

_NUMBER = (int, float)
_KINDS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": _NUMBER, "bool": (bool,)}
_HEADER = {"orig": "str", "start": "str", "gpus": "int", "hours_per_training": "float", "noise": "float",
           "trials_per_case": "int", "seed": "int"}  # what a table was computed for, besides its units
SOURCE_HINT = "write it with `config-bisect plan ORIG START ... -o PLAN.json`"


@dataclass
class PlanRow:
    """One strategy at one number of GPUs, simulated on the pair's units."""

    strategy: str
    gpus: int
    success_rate: float
    mean_runs: float
    p95_runs: float
    mean_gpu_hours: float
    p95_gpu_hours: float
    mean_rounds: float
    p95_rounds: float
    mean_days: float
    p95_days: float
    recommended: bool = False

    def figures(self) -> tuple[str, str, str, str, str]:
        """As `plan` prints it: success, then mean (95th percentile) of trainings, GPU-hours, rounds, days."""
        return (f"{self.success_rate:.0%}", f"{self.mean_runs:.1f} ({self.p95_runs:.0f})",
                f"{self.mean_gpu_hours:.0f} ({self.p95_gpu_hours:.0f})",
                f"{self.mean_rounds:.1f} ({self.p95_rounds:.0f})", f"{self.mean_days:.1f} ({self.p95_days:.1f})")


@dataclass
class PlanTable:
    """Every row of the decision table and what it was computed for: the pair, its units, the user's GPUs, hours per
    training (a round lasts one training, a training costs that many GPU-hours), seed noise x the gap, simulated
    trials per case and the simulation's seed."""

    orig: str
    start: str
    units: list[str]
    gpus: int
    hours_per_training: float
    noise: float
    trials_per_case: int
    seed: int
    cases: list[str]
    rows: list[PlanRow]
    why: str  # why the recommended row is recommended

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        pick = self.recommended_row
        data.pop("why")
        data["recommended"] = {"strategy": pick.strategy, "gpus": pick.gpus, "why": self.why}
        return data

    @classmethod
    def from_json(cls, data: Any) -> PlanTable:
        """The table of `to_json`'s content; a ValueError names what is missing or wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        for name in ("units", "rows", "recommended", *_HEADER, "cases"):
            if name not in data:
                raise ValueError(f"no `{name}`")
        for name, kind in _HEADER.items():
            _typed(name, data[name], kind)
        for name in ("units", "cases"):
            if not (isinstance(data[name], list) and data[name] and all(isinstance(u, str) for u in data[name])):
                raise ValueError(f"`{name}` is not a list of names")
        if not (isinstance(data["rows"], list) and data["rows"] and all(isinstance(r, dict) for r in data["rows"])):
            raise ValueError("`rows` is not a list of rows")
        recommended = data["recommended"]
        if not isinstance(recommended, dict) or not isinstance(recommended.get("why"), str):
            raise ValueError("`recommended` has no `why`")
        table = cls(**{name: data[name] for name in (*_HEADER, "units", "cases")},
                    rows=[_row(r, i) for i, r in enumerate(data["rows"], 1)], why=recommended["why"])
        picked = [(r.strategy, r.gpus) for r in table.rows if r.recommended]
        if picked != [(recommended.get("strategy"), recommended.get("gpus"))]:
            raise ValueError("not exactly one recommended row, the one `recommended` names")
        return table

    @property
    def recommended_row(self) -> PlanRow:
        return next(r for r in self.rows if r.recommended)

    def row(self, strategy: str | None, gpus: int) -> PlanRow | None:
        """The row of `strategy` on `gpus` GPUs, if the table has it."""
        return next((r for r in self.rows if (r.strategy, r.gpus) == (strategy, gpus)), None)

    def check_units(self, units: list[str], source: str | Path) -> None:
        """A UserError naming `source` unless the table was computed for these units (in any order)."""
        if sorted(self.units) != sorted(units):
            raise UserError(f"the plan table was computed for other units ({', '.join(self.units)}) than this "
                            f"pair's ({', '.join(units)}): run `config-bisect plan` on this pair", source)


def _typed(name: str, value: Any, kind: str) -> None:
    if isinstance(value, bool) != (kind == "bool") or not isinstance(value, _KINDS[kind]):
        raise ValueError(f"`{name}` is not a{'n' if kind == 'int' else ''} {kind}: {value!r}")


def _row(data: dict[str, Any], number: int) -> PlanRow:
    for f in fields(PlanRow):
        if f.name not in data:
            raise ValueError(f"row {number} has no `{f.name}`")
        _typed(f"row {number} {f.name}", data[f.name], str(f.type))
    return PlanRow(**{f.name: data[f.name] for f in fields(PlanRow)})


def load_plan_table(path: str | Path) -> PlanTable:
    """The table in `path`; unreadable, not JSON or not a plan table: a one-line UserError naming the file."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read the plan table: {exc.strerror or exc}", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"not a plan table (not valid JSON: {exc}); {SOURCE_HINT}", path) from None
    try:
        return PlanTable.from_json(data)
    except ValueError as exc:
        raise UserError(f"not a plan table ({exc}); {SOURCE_HINT}", path) from None


def plan_section(table: PlanTable, path: str | Path, strategy: str | None, jobs: int | None) -> dict[str, Any]:
    """results.json's `plan`: the table (`file`, `table`) and the settings the run used (`strategy`: None for a fixed
    list of hybrids; `jobs`: trainings at once, None where the cluster decides)."""
    return {"file": str(Path(path).resolve()), "strategy": strategy, "jobs": jobs, "table": table.to_json()}
