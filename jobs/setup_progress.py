"""Where a Sisyphus bisection (`config-bisect submit`) stands, read from its setup folder without importing
Sisyphus or loading the graph (the manager may be running, or the setup may lie on a cluster's file system).

Jobs are found by their aliases: `alias/.../bisect/<pair>/<label>/seed<k>/{train,score}` (links the manager makes
for every job it knows when it starts) and the `ALIAS:` lines of each set-up job's `info` file (jobs an
asynchronous workflow added later). A job's state comes from its folder as Sisyphus marks it: `finished` (or
`finished.tar.gz`), `error.<task>.<n>` after a failed task with no try left (its `log.<task>.<n>` holds the
traceback), `usage.<task>.<n>` refreshed by a running task, and no folder at all while it waits for its inputs.
A training that failed on its last try finishes with the failure in its train.json.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from artefacts.log_tail import last_error_line
from attribution.replay import Answer, replay_strategy
from common.errors import UserError
from interpolate.plan import HybridRequest
from jobs.task_tries import final_errors
from runner.progress import DONE, FAILED, RUNNING, WAITING, Progress, RunRecord
from runner.run_plan import read_run_plan

ALIAS = re.compile(r"(?:^|/)bisect/(?P<pair>[^/]+)/(?P<label>[^/]+)/(?:seed(?P<seed>\d+)/(?P<step>train|score)|"
                   r"(?P<hybrid>hybrid))$")
OUR_JOBS = "work/jobs/bisect_jobs/*/info"  # job ids are module path + class name + hash
USAGE_FRESH_SECONDS = 180  # Sisyphus refreshes usage.* every minute while a task runs (PLOGGING_UPDATE_FILE_PERIOD)


def hybrid_label(request: HybridRequest) -> str:
    """A hybrid's name in the graph's aliases (as `jobs.graph` names it)."""
    return f"{request.direction}.{'+'.join(sorted(request.knobs))}"


@dataclass
class SisJob:
    path: Path  # work/<job id>; may not exist yet

    def exists(self) -> bool:
        return self.path.is_dir()

    def finished(self) -> bool:
        return (self.path / "finished").exists() or (self.path / "finished.tar.gz").exists()

    def error(self) -> str | None:
        """The last error line of the log of a task that failed with no try left, or None."""
        errors = sorted(final_errors(self.path), key=lambda p: p.stat().st_mtime)
        if not errors:
            return None
        log = self.path / errors[-1].name.replace("error.", "log.", 1)
        text = log.read_text(errors="replace") if log.exists() else ""
        return last_error_line(text) if text.strip() else f"{errors[-1].name} (no log)"

    def running(self, now: float) -> bool:
        return any(now - p.stat().st_mtime < USAGE_FRESH_SECONDS for p in self.path.glob("usage.*"))

    def started(self) -> float | None:
        info = self.path / "info"
        return info.stat().st_mtime if info.exists() else None

    def ended(self) -> float | None:
        marker = self.path / "finished"
        return marker.stat().st_mtime if marker.exists() else None

    def output(self, name: str) -> Path:
        return self.path / "output" / name


def _aliases(setup: Path) -> dict[str, Path]:
    """alias -> job folder, from the alias links and the info files of set-up jobs."""
    found: dict[str, Path] = {}
    alias_dir = setup / "alias"
    if alias_dir.is_dir():
        for root, dirs, files in os.walk(alias_dir):
            for name in dirs + files:
                link = Path(root) / name
                if link.is_symlink():
                    found[link.relative_to(alias_dir).as_posix()] = Path(os.path.realpath(link))
    for info in setup.glob(OUR_JOBS):
        for line in info.read_text(errors="replace").splitlines():
            if line.startswith("ALIAS: "):
                found.setdefault(line[len("ALIAS: "):].strip(), info.parent)
    return found


def _score_of(job: SisJob) -> dict | None:
    try:
        return json.loads(job.output("score.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _train_result(train: SisJob) -> dict | None:
    try:
        return json.loads(train.output("train.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_record(label: str, seed: int, train: SisJob, score: SisJob | None, config: str | None,
               now: float) -> RunRecord:
    """One training and its scoring job as a record."""
    log = train.output("train/returnn.stdout.txt")
    record = RunRecord(label, seed, WAITING, config=config, log=str(log) if log.exists() else None)
    for job, step in ((train, "training"), (score, "scoring")):
        if job is not None and job.exists() and job.error() is not None:
            record.status, record.reason = FAILED, f"{step}: {job.error()}"
            return record
    trained = _train_result(train) if train.finished() else None
    if trained is not None and trained["status"] != DONE:  # failed on its last try: recorded, the job finished
        record.status, record.reason, record.log = FAILED, f"training: {trained['reason']}", trained["log"]
        return record
    last = score or train
    if last.finished():
        scored = _score_of(last) if score is not None else None
        trained = (scored or {}).get("seed_result") or _train_result(train) or {}
        record.status = DONE
        record.wer = scored["wer"] if scored else (100 * trained["best_dev"]["value"] if trained.get("best_dev")
                                                   else None)
        record.segments, record.environment = (scored or {}).get("segments", []), trained.get("environment")
        began, ended = train.started(), last.ended()
        record.seconds = ended - began if began and ended else trained.get("seconds")
        return record
    active = score if score is not None and train.finished() else train
    step = "scoring" if active is score else "training"
    if active.exists() and active.running(now):
        record.status, record.detail = RUNNING, step
        began = train.started()
        record.seconds = now - began if began else None
    elif active.exists():
        record.detail = f"{step} submitted, queued or interrupted (the manager resubmits it)"
    else:
        record.detail = "waiting for its inputs" if active is train else "waiting for the training"
    return record


def _hybrid_labels(hybrids: dict[str, SisJob]) -> dict[str, tuple[list[str], str | None]]:
    labels = {}
    for label, job in hybrids.items():
        direction, _, knobs = label.partition(".")
        labels[label] = (sorted(knobs.split("+")), direction)
        info = job.output("hybrid.json")
        if info.exists():
            written = json.loads(info.read_text())
            labels[label] = (sorted(set(written["knobs"]) | set(labels[label][0])), written["direction"])
    return labels


def wall_seconds(runs: list[tuple[SisJob, SisJob | None]], now: float) -> float | None:
    """From the first training's set-up to the last run's end (now, while one has not finished)."""
    starts = [s for train, _ in runs if (s := train.started()) is not None]
    if not starts:
        return None
    ends = [(score or train).ended() or now for train, score in runs if train.exists()]
    return max(ends) - min(starts)


def _diff(hybrids: dict[str, SisJob]) -> dict | None:
    """The knob diff a WriteHybridJob kept in its hybrid.json (older setups have none)."""
    for job in hybrids.values():
        try:
            diff = json.loads(job.output("hybrid.json").read_text()).get("diff")
        except (OSError, json.JSONDecodeError):
            continue
        if diff:
            return diff
    return None


def _hybrid_config(job: SisJob | None) -> str | None:
    configs = [] if job is None else [p for p in job.path.glob("output/hybrid.*") if p.suffix != ".json"]
    return str(configs[0]) if configs else None


def setup_progress(setup: str | Path, pair: str | None = None) -> Progress:
    """The progress of the bisection of `pair` (default: the plan's, or the only pair) in a Sisyphus setup."""
    setup = Path(setup)
    if not (setup / "work").is_dir() or not (setup / "config").is_dir():
        raise UserError("not a Sisyphus setup of `config-bisect submit` (no work/ and config/ folders)", setup)
    plan = read_run_plan(setup)
    runs: dict[tuple[str, str, int], dict[str, SisJob]] = {}
    hybrids: dict[tuple[str, str], SisJob] = {}
    for alias, folder in _aliases(setup).items():
        match = ALIAS.search(alias)
        if match is None:
            continue
        key = (match["pair"], match["label"])
        if match["hybrid"]:
            hybrids[key] = SisJob(folder)
        else:
            runs.setdefault((*key, int(match["seed"])), {})[match["step"]] = SisJob(folder)
    pairs = sorted({p for p, _, _ in runs} | {p for p, _ in hybrids})
    pair = pair or (plan.pair if plan and plan.pair else None) or (pairs[0] if len(pairs) == 1 else None)
    if pair is None and pairs:
        raise UserError(f"the setup holds bisections of several pairs ({', '.join(pairs)}): name one with --pair",
                        setup)
    now = time.time()
    configs = {"orig": plan.orig if plan else None, "start": plan.start if plan else None}
    records, jobs = {}, []
    for (p, label, seed), steps in runs.items():
        if p == pair and "train" in steps:
            config = configs.get(label) or _hybrid_config(hybrids.get((p, label)))
            records[(label, seed)] = run_record(label, seed, steps["train"], steps.get("score"), config, now)
            jobs.append((steps["train"], steps.get("score")))
    ours = {label: job for (p, label), job in hybrids.items() if p == pair}
    labels: dict[str, tuple[list[str], str | None]] = {"orig": ([], None), "start": ([], None)}
    labels.update(_hybrid_labels(ours))
    replay = None
    order = sorted(records, key=lambda run: (run[0] not in ("orig", "start"), run))
    if plan is not None and plan.strategy:
        def answer(label: str, seed: int) -> Answer:
            record = records.get((label, seed))
            return Answer(record.status, record.wer) if record else Answer(WAITING)

        replay = replay_strategy(plan.strategy, plan.unit_sets(), answer, hybrid_label, plan.strategy_kwargs)
        labels.update({k: v for k, v in replay.labels.items() if k not in labels})
        order = list(dict.fromkeys(replay.runs))
    shown = [records.get(run) or RunRecord(run[0], run[1], WAITING, detail="not submitted yet") for run in order]
    notes = [] if plan is not None else ["no run_plan.json (a setup of an older version): a strategy's next "
                                         "questions are not known"]
    return Progress("sisyphus", str(setup), shown, labels, plan, replay, None, notes, _diff(ours),
                    wall_seconds(jobs, now))
