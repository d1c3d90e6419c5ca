"""Run (config, seed) jobs on one machine: parallel, resumable, one folder per job named by content hash.

A job folder holds `result.json` once the job has finished (trained and scored, or failed with its
reason); a folder without it is an interrupted job and is started afresh. A lock file keeps a second
runner off the same work folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from common.atomic import write_atomic
from common.errors import UserError
from knobs.requirements import Requirements
from runner import steps
from runner.environment import Environment
from runner.preflight import preflight

RUNNER_VERSION = 1


@dataclass(frozen=True)
class Job:
    label: str  # e.g. "orig", "start", "knock-in:batching"
    config: str
    seed: int
    epochs: int | None = None
    environment: Environment | None = None  # None: the tool's own Python and RETURNN
    requires: Requirements | None = None  # checked against the environment before the batch starts

    @property
    def key(self) -> str:
        """Content hash: the config text, seed, epochs, runner version and a non-default environment decide the
        result."""
        text = Path(self.config).read_bytes()
        parts = [hashlib.sha256(text).hexdigest(), self.seed, self.epochs, RUNNER_VERSION]
        environment_key = self.environment.training_key() if self.environment else None
        payload = json.dumps(parts + [environment_key] if environment_key else parts)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Recognition:
    vocab: list[str]
    ref_file: str
    extra_args: tuple[str, ...] = ()


@dataclass
class JobResult:
    label: str
    config: str
    seed: int
    key: str
    status: str  # "ok" | "failed"
    reason: str | None = None
    log: str | None = None
    wer: float | None = None
    segments: list[dict] = field(default_factory=list)
    best_dev: dict | None = None
    train_seconds: float | None = None
    seconds: float | None = None
    reused: bool = False
    environment: dict | None = None  # the facts RETURNN's log states (artefacts.training_log)
    environment_spec: dict | None = None  # the environment it was started in (runner.environment spec)


class WorkdirLock:
    """An exclusive lock on WORKDIR; a second runner refuses with the holder's pid."""

    def __init__(self, work_dir: Path):
        self.path = work_dir / ".lock"
        self.handle = None

    def __enter__(self) -> WorkdirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "?"
            self.handle.close()
            raise UserError(f"another config-bisect run (pid {holder}) is using this work folder",
                            self.path.parent) from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        return self

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _stop_orphan(job_dir: Path) -> None:
    """A killed runner may leave its RETURNN child running: stop it before the job starts again."""
    pid_file = job_dir / steps.PID_FILE
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"returnn" in cmdline and str(job_dir).encode() in Path(f"/proc/{pid}/cwd").resolve().as_posix().encode():
            os.kill(pid, signal.SIGKILL)
    except (ValueError, OSError):
        pass


def run_job(job: Job, work_dir: Path, recognition: Recognition | None, env: dict[str, str],
            retry_failed: bool = False) -> JobResult:
    job_dir = work_dir / "jobs" / job.key
    result_file = job_dir / "result.json"
    if result_file.exists():
        done = JobResult(**{**json.loads(result_file.read_text()), "reused": True})
        if done.status == "ok" or not retry_failed:
            return done
    if job_dir.exists():  # interrupted earlier: start it afresh
        _stop_orphan(job_dir)
        shutil.rmtree(job_dir)
    job_dir.mkdir(parents=True)
    write_atomic(job_dir / "job.json", json.dumps(asdict(job), indent=1) + "\n")
    start = time.monotonic()
    trained = steps.train(job.config, job_dir, job.seed, job.epochs, env=env, environment=job.environment)
    result = JobResult(job.label, job.config, job.seed, job.key, trained.status, trained.reason, trained.log,
                       best_dev=trained.best_dev, train_seconds=trained.seconds, environment=trained.environment,
                       environment_spec=job.environment.spec() if job.environment else None)
    if trained.status == "ok" and recognition is not None:
        try:
            hyp = steps.recognize(job.config, job_dir, trained.final_epoch, recognition.vocab,
                                  extra_args=recognition.extra_args, env=env, environment=job.environment)
            scored = steps.score(hyp, recognition.ref_file, job_dir / "score.json")
            result.wer, result.segments = scored.wer, [asdict(s) for s in scored.segments]
        except (RuntimeError, UserError) as exc:
            result.status, result.reason = "failed", f"recognition: {exc}"
    result.seconds = round(time.monotonic() - start, 2)
    write_atomic(result_file, json.dumps(asdict(result), indent=1) + "\n")
    return result


def run_jobs(jobs: list[Job], work_dir: Path, recognition: Recognition | None, env: dict[str, str],
             parallel: int, on_done: Callable[[JobResult], None] | None = None,
             retry_failed: bool = False) -> list[JobResult]:
    """Run all jobs (finished ones are reused; failed ones too unless `retry_failed`); results in job order.
    Before anything starts, each environment is probed and every job's config checked against it."""
    preflight(jobs)
    with WorkdirLock(work_dir):
        # jobs with one key are one training (e.g. an environment hybrid of a pair with one config file is
        # the baseline of the other side): run once, reported under each label
        by_key: dict[str, list[Job]] = {}
        for job in jobs:
            by_key.setdefault(job.key, []).append(job)
        results: dict[Job, JobResult] = {}
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            futures = {pool.submit(run_job, same[0], work_dir, recognition, env, retry_failed): same
                       for same in by_key.values()}
            try:
                for future in as_completed(futures):
                    done = future.result()
                    for i, job in enumerate(futures[future]):
                        results[job] = replace(done, label=job.label, config=job.config, reused=done.reused or i > 0)
                        if on_done:
                            on_done(results[job])
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return [results[job] for job in jobs]
