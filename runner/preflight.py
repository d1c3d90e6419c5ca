"""Before a batch of trainings starts: probe each environment once and check every job's config against it, so
that an incompatible combination is a one-line error per hybrid, not a failed training hours later."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from common.errors import UserError
from knobs.requirements import Requirements
from runner.environment import Environment
from runner.probe import Probe, compatibility_problems, probe


class PlannedJob(Protocol):
    label: str
    config: str
    environment: Environment | None
    requires: Requirements | None


def incompatible(jobs: Iterable[PlannedJob], probe_of: Callable[[Environment], Probe] = probe) -> list[str]:
    """One line per hybrid whose config cannot train in its environment (jobs in the tool's own environment
    are not probed: that RETURNN loaded and built the configs already)."""
    lines, seen = [], set()
    for job in jobs:
        environment = job.environment
        if environment is None or environment.is_default() or (job.label, environment) in seen:
            continue
        seen.add((job.label, environment))
        found = probe_of(environment)  # raises a UserError when the environment itself is broken
        problems = compatibility_problems(job.requires, found) if job.requires else []
        if problems:
            lines.append(f"{job.label} cannot train in environment {environment.name}: {'; '.join(problems)}")
    return lines


def preflight(jobs: Iterable[PlannedJob], probe_of: Callable[[Environment], Probe] = probe) -> None:
    """Raise a `UserError` (nothing trained) listing every incompatible hybrid, one line each."""
    lines = incompatible(jobs, probe_of)
    if len(lines) == 1:
        raise UserError(lines[0])
    if lines:
        raise UserError(f"{len(lines)} hybrids cannot train in their environments, nothing was started:\n  "
                        + "\n  ".join(lines))
