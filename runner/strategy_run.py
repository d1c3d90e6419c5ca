"""A strategy's `evaluate(requests)` on this machine: hybrids written and proven once, each (hybrid, seed)
trained and scored by the local runner.

Finished jobs are reused (their folders are named by content hash), and the strategies are deterministic
given the WERs, so rerunning an interrupted bisection replays the same questions and trains only what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from attribution.strategies import SeedNumbers
from common.errors import UserError
from interpolate.hybrids import HybridResult
from interpolate.plan import HybridRequest
from interpolate.units import Units, request_for
from knobs.requirements import Requirements
from runner.local import Job, JobResult, Recognition, run_jobs
from runner.pair_environments import PairEnvironments


class LocalEvaluate:
    """Callable `evaluate(requests)`: one round; per (hybrid, count) (the units at start's value), `count` new
    seeds."""

    def __init__(self, orig: str, start: str, units: Units, write_hybrid: Callable[[HybridRequest], HybridResult],
                 work: Path, recognition: Recognition, env: dict[str, str], parallel: int, epochs: int | None,
                 retry_failed: bool = False, on_done: Callable[[JobResult], None] | None = None,
                 environments: PairEnvironments | None = None, requires: dict[str, Requirements] | None = None):
        """`environments`: the sides' environments (a hybrid's comes from its environment knobs); `requires`:
        what orig's and start's configs need from RETURNN (checked before each batch)."""
        self.orig, self.start, self.units = orig, start, units
        self.environments, self.requires = environments, dict(requires or {})
        self.write_hybrid = write_hybrid
        self.work, self.recognition, self.env = work, recognition, env
        self.parallel, self.epochs, self.retry_failed, self.on_done = parallel, epochs, retry_failed, on_done
        self.seeds = SeedNumbers()
        self.written: dict[HybridRequest, HybridResult] = {}
        self.labels: dict[str, tuple[list[str], str | None]] = {"orig": ([], None), "start": ([], None)}
        self.results: list[JobResult] = []

    def config_of(self, hybrid: frozenset[str]) -> tuple[str, str, HybridResult | None]:
        """(label, config path, the written hybrid or None for orig/start) of a hybrid; the hybrid file is
        written (and proven) on first use."""
        request = request_for(hybrid, self.units)
        if request is None:
            return ("orig", self.orig, None) if not hybrid else ("start", self.start, None)
        if request not in self.written:
            self.written[request] = self.write_hybrid(request)
        written = self.written[request]
        if written.status != "ok":
            raise UserError(f"hybrid {written.id} cannot be written exactly ({written.status}): {written.reason}")
        self.labels[written.id] = (written.knobs, written.direction)
        return written.id, written.path, written

    def _job(self, label: str, config: str, seed: int, written: HybridResult | None) -> Job:
        direction, sides = (None, None) if written is None else (written.direction, written.environment)
        environment = self.environments.for_job(label, direction, sides) if self.environments else None
        requires = self.requires.get(label) if written is None else Requirements.from_json(written.requires)
        return Job(label, config, seed, self.epochs, environment, requires)

    def __call__(self, requests: list[tuple[frozenset[str], int]]) -> list[list[JobResult]]:
        """One round: per (hybrid, count), `count` new seeds trained at once; a failed training's result has no
        WER (the strategy goes on without it)."""
        jobs: list[list[Job]] = []
        for hybrid, count in requests:
            label, config, written = self.config_of(hybrid)
            jobs.append([self._job(label, config, seed, written) for seed in self.seeds.take(hybrid, count)])
        flat = [job for group in jobs for job in group]
        done = run_jobs(flat, self.work, self.recognition, self.env, self.parallel, self.on_done, self.retry_failed)
        self.results += done
        by_job = dict(zip(flat, done, strict=True))
        return [[by_job[job] for job in group] for group in jobs]
