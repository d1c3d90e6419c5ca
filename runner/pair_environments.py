"""The two sides' environments of a bisection (`--orig-env`, `--start-env`): loaded, probed once, turned into
environment knobs, and composed per hybrid."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interpolate.plan import DIRECTIONS
from knobs.environment import EnvironmentKnob, SideEnvironment, environment_knobs, switched_sides
from knobs.loader import LoadContext, load_pair
from knobs.requirements import Requirements, requirements_of
from runner.environment import FIELDS, SIDES, Environment, compose, describe_sides, environment_of, from_spec
from runner.environment_facts import spec_key
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

    def report(self, original: dict[str, dict | None], specs: list[dict[str, Any]],
               compare_hardware: bool = True) -> dict[str, Any]:
        """Everything the results' `environments` section needs besides the trainings (see
        `environment_facts.section_from_report`): `specs` are the environments trainings use (each probed)."""
        knobs, _ = self.knobs(compare_hardware)
        unique = list({spec_key(spec): spec for spec in specs if spec is not None}.values())
        with ThreadPoolExecutor(max_workers=2) as pool:
            promised = [[spec, found.facts()] for spec, found in zip(unique, pool.map(probe, map(from_spec, unique)),
                                                                       strict=True)]
        return {"pair": self.to_json(), "knobs": [{"name": k.name, "fields": k.fields, "summary": k.summary}
                                                  for k in knobs],
                "original": original, "promised": promised}

    def compositions(self) -> list[dict[str, Any]]:
        """The spec of every environment a hybrid can train in: each side's, and each mix that switching
        a set of environment knobs in either direction gives."""
        if not self.active:
            return []
        fields = {k.name: k.fields for k in self.knobs()[0]}
        names = sorted(fields)
        subsets = [frozenset(n for i, n in enumerate(names) if mask >> i & 1) for mask in range(2 ** len(names))]
        specs = [compose(switched_sides(s, d, fields), self.environments).spec() for s in subsets for d in DIRECTIONS]
        return list({spec_key(spec): spec for spec in specs}.values())

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



@dataclass
class PlannedTraining:
    """A config (orig's or start's) in an environment, as `runner.preflight` checks it."""

    label: str
    config: str
    environment: Environment | None
    requires: Requirements | None


def side_configs_in_environments(environments: PairEnvironments, requests: list[tuple[list[str], str]] | None,
                                 requires: dict[str, Requirements]) -> list[PlannedTraining]:
    """The trainings of orig's and start's own configs a plan holds: the baselines and the hybrids that switch
    environment knobs only (`requests` None: every such hybrid, as a strategy may ask for any)."""
    fields = {k.name: k.fields for k in environments.knobs()[0]}
    if requests is None:
        names = sorted(fields)
        requests = [([n for i, n in enumerate(names) if mask >> i & 1], d) for mask in range(1, 2 ** len(names))
                    for d in DIRECTIONS]
    planned = [PlannedTraining(side, side, environments.for_job(side, None), requires.get(side)) for side in SIDES]
    for knobs, direction in requests:
        if knobs and set(knobs) <= set(fields):
            base = hybrid_base_side(direction, "")
            sides = switched_sides(frozenset(knobs), direction, fields)
            planned.append(PlannedTraining(f"{direction}:{'+'.join(sorted(knobs))}", base,
                                           environments.for_job(base, direction, sides), requires.get(base)))
    return planned
