"""Where a local `run` stands, read from its work folder: `jobs/<key>/` holds `job.json` (label, seed) from its
start, `returnn.pid` while RETURNN runs, `result.json` once trained and `scored/<key>/result.json` once scored;
`run_plan.json` says what the run will train (a fixed list, or a strategy whose questions are replayed over the
finished jobs)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from artefacts.curves import read_scores
from attribution.replay import Answer, replay_strategy
from common.errors import UserError
from interpolate.hybrids import hybrid_id
from runner import steps
from runner.progress import RUNNING, WAITING, Progress, RunRecord
from runner.run_plan import read_run_plan

MANIFEST = Path("hybrids") / "manifest.json"


@dataclass
class JobFolder:
    path: Path
    job: dict
    result: dict | None

    @property
    def run(self) -> tuple[str, int]:
        return self.job["label"], int(self.job["seed"])


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc}", path) from None


def job_folders(work: Path) -> list[JobFolder]:
    """Every started job, oldest first."""
    folders = []
    for job_file in (work / "jobs").glob("*/job.json"):
        job = _read_json(job_file)
        if job is not None:
            folders.append(JobFolder(job_file.parent, job, _read_json(job_file.parent / "result.json")))
    return sorted(folders, key=lambda f: (f.path / "job.json").stat().st_mtime)


def runner_alive(work: Path) -> bool:
    """Whether the runner that last held the work folder's lock still runs (its pid is in `.lock`)."""
    try:
        pid = int((work / ".lock").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def epochs_trained(job_dir: Path) -> int:
    """Epochs with scores in the job's learning-rate file (0 while it is missing or being written)."""
    try:
        return sum(bool(scores) for scores in read_scores(job_dir / steps.LR_FILE).values())
    except UserError:
        return 0


def folder_record(folder: JobFolder, alive: bool, now: float, score_key: str | None = None) -> RunRecord:
    """A job's state; with `score_key` (the run scores) a finished training counts as done once it is scored."""
    label, seed = folder.run
    trained = folder.result
    to_score = trained is not None and trained["status"] == "ok" and score_key is not None
    scored = _read_json(folder.path / "scored" / score_key / "result.json") if to_score else None
    if trained is not None and (scored is not None or not to_score):
        r = {**trained, **(scored or {})}
        seconds = trained.get("seconds") if scored is None else (trained.get("seconds") or 0) + (scored["seconds"] or 0)
        return RunRecord(label, seed, r["status"], r.get("wer"), r.get("reason"), None, trained.get("config"),
                         trained.get("log"), seconds, r.get("segments") or [], trained.get("environment"))
    config, log = folder.job.get("config"), str(folder.path / "returnn.stdout.txt")
    if not alive:
        return RunRecord(label, seed, WAITING, detail="interrupted: starts afresh when the run is resumed",
                         config=config, log=log)
    if trained is not None:
        detail = "recognition"
    else:
        detail = f"training, epoch {epochs_trained(folder.path) + 1}"
    return RunRecord(label, seed, RUNNING, detail=detail, config=config, log=log,
                     seconds=now - (folder.path / "job.json").stat().st_mtime)


def _manifest_labels(manifest: dict) -> dict[str, tuple[list[str], str | None]]:
    return {h["id"]: (h["knobs"], h["direction"]) for h in manifest.get("hybrids", []) if h.get("status") == "ok"}


def wall_seconds(folders: list[JobFolder], now: float) -> float | None:
    """From the first job's start to the last one's end (now, while one has no result)."""
    if not folders:
        return None
    ends = [(f.path / "result.json").stat().st_mtime if f.result is not None else now for f in folders]
    return max(ends) - min((f.path / "job.json").stat().st_mtime for f in folders)


def local_progress(work: str | Path) -> Progress:
    work = Path(work)
    if not (work / "jobs").is_dir() and not (work / "run_plan.json").exists():
        raise UserError("not a work folder of `config-bisect run` (no jobs/ folder, no run_plan.json)", work)
    plan = read_run_plan(work)
    alive, now = runner_alive(work), time.time()
    folders = job_folders(work)
    by_run = {f.run: f for f in reversed(folders)}  # the oldest folder of a (label, seed) wins
    records = {run: folder_record(f, alive, now, plan.score_key if plan else None) for run, f in by_run.items()}
    labels: dict[str, tuple[list[str], str | None]] = {"orig": ([], None), "start": ([], None)}
    manifest = _read_json(work / MANIFEST) or {}
    labels.update(_manifest_labels(manifest))
    replay = None
    if plan is not None and plan.strategy:
        def answer(label: str, seed: int) -> Answer:
            record = records.get((label, seed))
            return Answer(record.status, record.wer) if record else Answer(WAITING)

        replay = replay_strategy(plan.strategy, plan.unit_sets(), answer, hybrid_id, plan.strategy_kwargs)
        labels.update(replay.labels)
        order = list(dict.fromkeys(replay.runs))
    elif plan is not None:
        labels.update({label: (v["knobs"], v["direction"]) for label, v in plan.labels.items()})
        order = [(r["label"], int(r["seed"])) for r in plan.runs]
    else:
        order = list(dict.fromkeys(f.run for f in folders))
    shown = [records.get(run) or RunRecord(run[0], run[1], WAITING) for run in order]
    notes = []
    if plan is None:
        notes.append("no run_plan.json (a run of an older version): trainings not started yet are not known")
    elif not alive and any(r.status in (RUNNING, WAITING) for r in shown):
        notes.append("no runner is working on this folder: rerun the same `config-bisect run` command to go on")
    used = [by_run[(r.label, r.seed)] for r in shown if (r.label, r.seed) in by_run]
    return Progress("local", str(work), shown, labels, plan, replay, plan.parallel if plan else None, notes,
                    manifest.get("diff"), wall_seconds(used, now))
