"""Run (config, seed) jobs on one machine: parallel, resumable, one folder per training named by content hash.

A job folder `WORK/jobs/<key>` holds `result.json` once its training has finished (or failed with its reason);
each way of scoring it (vocabulary, references, recognition arguments) has its own folder `scored/<key>` inside,
with its own `result.json`. A folder without `result.json` is interrupted work and is started afresh; a finished
training is scored again without training again when the references change. A lock file keeps a second runner
off the same work folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO

from common.atomic import write_atomic
from common.errors import UserError
from knobs.requirements import Requirements
from runner import steps
from runner.environment import Environment
from runner.preflight import preflight
from runner.settings import RunSettings

RUNNER_VERSION = 3  # 3: trainings keyed by the data environment too, each scoring in a folder of its own
ORPHAN_STOP_SECONDS = 10.0
RESULT = "result.json"


@dataclass(frozen=True)
class Job:
    label: str  # e.g. "orig", "start", "knock-in:batching"
    config: str
    seed: int
    epochs: int | None = None
    environment: Environment | None = None  # None: the tool's own Python and RETURNN
    requires: Requirements | None = None  # checked against the environment before the batch starts


def job_key(job: Job, data_env: Mapping[str, str]) -> str:
    """Content hash of every input that changes a training: the config text, seed, epochs, a non-default
    environment and the data environment variables. Paths and labels do not count: one training under two labels
    is one job. How it is scored has a key of its own (`Recognition.key`)."""
    parts: list[object] = [hashlib.sha256(Path(job.config).read_bytes()).hexdigest(), job.seed, job.epochs,
                           RUNNER_VERSION, dict(sorted(data_env.items()))]
    environment_key = job.environment.training_key() if job.environment else None
    if environment_key:
        parts.append(environment_key)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class JobResult:
    label: str
    config: str
    seed: int
    key: str  # the training's (its folder WORK/jobs/<key>)
    status: str  # "ok" | "failed" (the training, or its scoring)
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
    train_dir: str | None = None  # RETURNN's training folder (learning-rate file, checkpoints)
    final_epoch: int | None = None  # of the checkpoint that is scored
    score_key: str | None = None  # how it was scored (Recognition.key); None: not scored (no references)

    @classmethod
    def from_json(cls, data: dict) -> JobResult:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class WorkdirLock:
    """An exclusive lock on WORKDIR; a second runner refuses with the holder's pid.

    Re-entrant within one process: a command holds it from its first write to its last, and the runner it calls
    takes it again without letting go in between."""

    _held: dict[Path, list] = {}  # lock file -> [open handle, depth]
    _guard = threading.Lock()

    def __init__(self, work_dir: Path):
        self.path = Path(os.path.abspath(work_dir)) / ".lock"

    def __enter__(self) -> WorkdirLock:
        with self._guard:
            if self.path in self._held:
                self._held[self.path][1] += 1
                return self
            self._held[self.path] = [self._acquire(), 1]
        return self

    def _acquire(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise UserError(f"another config-bisect run (pid {holder}) is using this work folder",
                            self.path.parent) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def __exit__(self, *exc) -> None:
        with self._guard:
            entry = self._held[self.path]
            entry[1] -= 1
            if entry[1] == 0:
                del self._held[self.path]
                fcntl.flock(entry[0], fcntl.LOCK_UN)
                entry[0].close()


def process_running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan stays a zombie until its new parent reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _stop_orphan(job_dir: Path) -> None:
    """A killed runner may leave its RETURNN child running: stop it (and wait until it is gone) before the job
    starts again in the same folder."""
    pid_file = job_dir / steps.PID_FILE
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        cwd = Path(f"/proc/{pid}/cwd").resolve()
    except (ValueError, OSError):
        return
    if (b"returnn" not in cmdline and b"rnn.py" not in cmdline) or cwd != job_dir.resolve():
        return  # the pid was reused by an unrelated process
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    deadline = time.monotonic() + ORPHAN_STOP_SECONDS
    while process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _finished(result_file: Path, retry_failed: bool) -> dict | None:
    """What a finished step left in `result_file` (None: not finished, or failed and to be retried)."""
    if not result_file.exists():
        return None
    done = json.loads(result_file.read_text())
    return done if done["status"] == "ok" or not retry_failed else None


def _fresh_folder(folder: Path) -> None:
    """An empty `folder` for a step: what an interrupted (or retried) run left there is removed, and a RETURNN
    process it orphaned is stopped first."""
    if folder.exists():
        _stop_orphan(folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def run_job(job: Job, key: str, settings: RunSettings) -> JobResult:
    """Train one job in `WORK/jobs/<key>` and, with `settings.recognition`, score it in its `scored/<key>` folder.
    Finished steps are reused (failed ones too unless `settings.retry_failed`): other references re-score a
    finished training without training it again."""
    job_dir = settings.work / "jobs" / key
    trained = _finished(job_dir / RESULT, settings.retry_failed)
    if trained is not None:
        result = JobResult.from_json({**trained, "reused": True})
    else:
        result = _train(job, key, job_dir, settings)
    if result.status == "ok" and settings.recognition is not None:
        _score(result, job, job_dir, settings)
    return result


def _train(job: Job, key: str, job_dir: Path, settings: RunSettings) -> JobResult:
    _fresh_folder(job_dir)
    write_atomic(job_dir / "job.json", json.dumps({**asdict(job), "key": key, "data_env": settings.data_env},
                                                  indent=1) + "\n")
    trained = steps.train(job.config, job_dir, job.seed, job.epochs, env=settings.data_env,
                          environment=job.environment)
    result = JobResult(job.label, job.config, job.seed, key, trained.status, trained.reason, trained.log,
                       best_dev=trained.best_dev, train_seconds=trained.seconds, seconds=trained.seconds,
                       environment=trained.environment,
                       environment_spec=job.environment.spec() if job.environment else None,
                       train_dir=str(job_dir), final_epoch=trained.final_epoch)
    write_atomic(job_dir / RESULT, json.dumps(asdict(result), indent=1) + "\n")
    return result


def _score(result: JobResult, job: Job, job_dir: Path, settings: RunSettings) -> None:
    """Recognize and score a finished training (or reuse its scoring): sets the result's WER and segments, or
    its failure."""
    recognition = settings.recognition
    result.score_key = recognition.key()
    score_dir = job_dir / "scored" / result.score_key
    scored = _finished(score_dir / RESULT, settings.retry_failed)
    if scored is None:
        _fresh_folder(score_dir)
        write_atomic(score_dir / "scoring.json", json.dumps(asdict(recognition), indent=1) + "\n")
        start = time.monotonic()
        scored = {"status": "ok", "reason": None, "wer": None, "segments": []}
        try:
            _, score = steps.recognize_and_score(job.config, score_dir, job_dir, result.final_epoch,
                                                 list(recognition.vocab), recognition.ref_file,
                                                 extra_args=recognition.extra_args, env=settings.data_env,
                                                 environment=job.environment)
            scored.update(wer=score.wer, segments=[asdict(s) for s in score.segments])
        except (RuntimeError, UserError) as exc:
            scored.update(status="failed", reason=f"recognition: {exc}")
        scored["seconds"] = round(time.monotonic() - start, 2)
        write_atomic(score_dir / RESULT, json.dumps(scored, indent=1) + "\n")
    result.seconds = round((result.train_seconds or 0) + scored["seconds"], 2)
    result.status, result.reason = scored["status"], scored["reason"] or result.reason
    result.wer, result.segments = scored["wer"], scored["segments"]


def run_jobs(jobs: list[Job], settings: RunSettings,
             on_done: Callable[[JobResult], None] | None = None) -> list[JobResult]:
    """Run all jobs (`settings.parallel` at once; finished ones are reused); results in job order. Before anything
    starts, each environment is probed and every job's config checked against it."""
    preflight(jobs)
    with WorkdirLock(settings.work):
        # jobs with one key are one training (e.g. an environment hybrid of a pair with one config file is
        # the baseline of the other side): run once, reported under each label
        by_key: dict[str, list[Job]] = {}
        for job in jobs:
            by_key.setdefault(job_key(job, settings.data_env), []).append(job)
        results: dict[Job, JobResult] = {}
        with ThreadPoolExecutor(max_workers=settings.parallel) as pool:
            futures = {pool.submit(run_job, same[0], key, settings): same for key, same in by_key.items()}
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
