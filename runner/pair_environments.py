"""The two sides' environments of a bisection (`--orig-env`, `--start-env`): loaded, probed once, turned into
environment knobs, and composed per hybrid."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knobs.environment import EnvironmentKnob, SideEnvironment, environment_knobs
from knobs.loader import LoadContext, load_pair
from knobs.requirements import Requirements, requirements_of
from runner.environment import FIELDS, SIDES, Environment, compose, describe_sides, environment_of, from_spec
from runner.environment_facts import run_record
from runner.probe import Probe, probe


@dataclass
class PairEnvironments:
    environments: dict[str, Environment]  # "orig", "start"
    probes: dict[str, Probe]  # empty when both sides use the tool's own interpreter (nothing to compare)

    @classmethod
    def from_files(cls, orig_file: str | None, start_file: str | None) -> PairEnvironments:
        """Load and validate both files (None: the tool's own interpreter), then probe both environments."""
        environments = {"orig": environment_of(orig_file), "start": environment_of(start_file)}
        if all(e.is_default() and not e.engine_rqmt for e in environments.values()):
            return cls(environments, {})
        with ThreadPoolExecutor(max_workers=2) as pool:
            probes = dict(zip(SIDES, pool.map(probe, (environments[s] for s in SIDES)), strict=True))
        return cls(environments, probes)

    @property
    def active(self) -> bool:
        """Whether an environment file was given (then environments are probed, compared and recorded)."""
        return bool(self.probes)

    def side(self, name: str) -> SideEnvironment:
        environment = self.environments[name]
        return SideEnvironment(environment.spec(), self.probes[name].facts(), environment.source)

    def knobs(self, compare_hardware: bool = True) -> tuple[list[EnvironmentKnob], list[dict]]:
        """The environment knobs (and equivalence notes) of the pair; none without environment files.
        `compare_hardware=False` for the local runner, which ignores `engine_rqmt`."""
        if not self.active:
            return [], []
        return environment_knobs(self.side("orig"), self.side("start"), compare_hardware)

    def compose(self, sides: dict[str, str] | None, base_side: str) -> Environment:
        """The environment of a hybrid whose fields come from `sides` (None: all from `base_side`)."""
        return compose(sides or dict.fromkeys(FIELDS, base_side), self.environments)

    def for_job(self, label: str, direction: str | None, sides: dict[str, str] | None = None) -> Environment | None:
        """The environment of a job (None without environment files: the runner's default)."""
        return self.compose(sides, hybrid_base_side(direction, label)) if self.active else None

    def to_json(self) -> dict[str, Any]:
        return {side: {"file": self.environments[side].source, "spec": self.environments[side].spec(),
                       "probe": self.probes[side].to_json() if side in self.probes else None} for side in SIDES}

    def run_records(self, runs: list[Any]) -> list[dict[str, Any]]:
        """Per finished job (`JobResult`s): its environment, what that promised (its probe) and what its log
        states; the input of `environment_facts.environments_section`."""
        pair = self.to_json()
        return [run_record(run.label, run.seed, run.environment_spec, pair,
                           probe(from_spec(run.environment_spec)).facts() if run.environment_spec else None,
                           run.environment) for run in runs]


def hybrid_base_side(direction: str | None, label: str) -> str:
    """The side whose environment a job uses unless environment knobs say otherwise."""
    if direction is None:
        return label
    return "start" if direction == "knock-in" else "orig"


def environment_label(sides: dict[str, str] | None, base_side: str) -> str:
    return describe_sides(sides or dict.fromkeys(FIELDS, base_side))


def baseline_requirements(orig: Path, start: Path, context: LoadContext) -> dict[str, Requirements]:
    """What orig's and start's configs need from RETURNN (loaded again: only when environments are given)."""
    loaded = load_pair(orig, start, context)
    return {side: requirements_of(config) for side, config in zip(SIDES, loaded, strict=True)}

