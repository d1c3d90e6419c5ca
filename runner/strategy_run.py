"""A strategy's `evaluate(requests)` on this machine: hybrids written and proven once, each (hybrid, seed)
trained and scored by the local runner.

Finished jobs are reused (their folders are named by content hash), and the strategies are deterministic
given the WERs, so rerunning an interrupted bisection replays the same questions and trains only what is new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from attribution.strategies import SeedNumbers
from common.atomic import write_atomic
from common.errors import UserError
from interpolate.hybrids import HybridResult
from interpolate.plan import HybridRequest
from interpolate.units import Units, request_for
from knobs.requirements import Requirements
from runner.local import Job, JobResult, job_key, run_jobs
from runner.settings import RunSettings

RETRIED = "retried"  # in a job folder: its failure was retried once by a strategy run


class LocalEvaluate:
    """Callable `evaluate(requests)`: one round; per (hybrid, count) (the units at start's value), `count` new
    seeds."""

    def __init__(self, settings: RunSettings, units: Units, write_hybrid: Callable[[HybridRequest], HybridResult],
                 on_done: Callable[[JobResult], None] | None = None, seeds: SeedNumbers | None = None):
        """`settings.environments`: the sides' environments (a hybrid's comes from its environment knobs);
        `settings.requires`: what orig's and start's configs need from RETURNN (checked before each batch);
        `seeds`: the seed numbers (default: the strategies' stream)."""
        self.settings, self.units, self.write_hybrid, self.on_done = settings, units, write_hybrid, on_done
        self.seeds = seeds or SeedNumbers()
        self.written: dict[HybridRequest, HybridResult] = {}
        self.labels: dict[str, tuple[list[str], str | None]] = {"orig": ([], None), "start": ([], None)}
        self.results: list[JobResult] = []

    def config_of(self, hybrid: frozenset[str]) -> tuple[str, str, HybridResult | None]:
        """(label, config path, the written hybrid or None for orig/start) of a hybrid; the hybrid file is
        written (and proven) on first use."""
        request = request_for(hybrid, self.units)
        if request is None:
            return ("orig", str(self.settings.orig), None) if not hybrid else ("start", str(self.settings.start), None)
        if request not in self.written:
            self.written[request] = self.write_hybrid(request)
        written = self.written[request]
        if written.status != "ok":
            raise UserError(f"hybrid {written.id} cannot be written exactly ({written.status}): {written.reason}")
        self.labels[written.id] = (written.knobs, written.direction)
        return written.id, written.path, written

    def _job(self, label: str, config: str, seed: int, written: HybridResult | None) -> Job:
        direction, sides = (None, None) if written is None else (written.direction, written.environment)
        environment = self.settings.environments.for_job(label, direction, sides)
        requires = self.settings.requires.get(label) if written is None else Requirements.from_json(written.requires)
        return Job(label, config, seed, self.settings.epochs, environment, requires)

    def jobs_of(self, hybrid: frozenset[str], seeds: int) -> list[Job]:
        """The next `seeds` seeds of a hybrid as jobs (its hybrid config written on first use)."""
        label, config, written = self.config_of(hybrid)
        return [self._job(label, config, seed, written) for seed in self.seeds.take(hybrid, seeds)]

    def __call__(self, requests: list[tuple[frozenset[str], int]]) -> list[list[JobResult]]:
        """One round: per (hybrid, count), `count` new seeds trained at once; a training that fails is retried
        once, and if it fails again its result has no WER (the strategy goes on without it)."""
        jobs = [self.jobs_of(hybrid, count) for hybrid, count in requests]
        flat = [job for group in jobs for job in group]
        done = self._retry_failed_once(flat, run_jobs(flat, self.settings, self.on_done))
        self.results += done
        by_job = dict(zip(flat, done, strict=True))
        return [[by_job[job] for job in group] for group in jobs]

    def _retry_failed_once(self, jobs: list[Job], done: list[JobResult]) -> list[JobResult]:
        """Each failed training (or scoring) once more, in the same round. A marker in its folder keeps a rerun of
        the command from retrying it again (`--retry-failed` trains failed jobs anew in any case)."""
        folders = {job: self.settings.work / "jobs" / job_key(job, self.settings.data_env) for job in jobs}
        again = [job for job, r in zip(jobs, done, strict=True)
                 if r.status != "ok" and not (folders[job] / RETRIED).exists()]
        if not again:
            return done
        retried = dict(zip(again, run_jobs(again, replace(self.settings, retry_failed=True), self.on_done),
                           strict=True))
        for job in again:
            write_atomic(folders[job] / RETRIED, "a failed training of this folder was retried once\n")
        return [retried.get(job, r) for job, r in zip(jobs, done, strict=True)]
