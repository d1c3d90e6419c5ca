"""The Sisyphus gather job's work, as plain functions (no Sisyphus import): read every finished score, turn the
runs into the runner's `JobResult`s and write results.json and the report with the same functions as `run`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attribution.strategies import Finding
from common.atomic import write_atomic
from jobs.setup_progress import SisJob, wall_seconds
from runner.environment_facts import section_from_report
from runner.local import JobResult
from runner.results import Bisection, write_bisection_report, write_results
from runner.summary import Labels

if TYPE_CHECKING:
    from attribution.report_model import ReportContext


def unscored(trained: dict[str, Any]) -> dict[str, Any]:
    """The score of a training (TrainJob's train.json) that was not recognized: a failed one, or one without
    references (its best dev score is judged instead)."""
    return {"wer": None, "segments": [], "seed_result": trained}


def read_score(path: str | Path) -> dict[str, Any]:
    """A score file (RecognizeScoreJob: "wer", "segments", "seed_result"; "wer" None after a failed training) or,
    without references, a training result (TrainJob's train.json) read as one with "wer" None."""
    score = json.loads(Path(path).read_text())
    return score if "seed_result" in score else unscored(score)


def _job_id(path: str) -> str:
    """The Sisyphus job (`TrainJob.<hash>`) of a path in its `output/` folder."""
    return Path(path).parents[1].name


def entry_label(entry: dict[str, Any]) -> tuple[str, list[str], str | None]:
    """(label, knobs, direction) of a gather entry: a baseline's label, else the hybrid as written (its
    hybrid.json, when it has a config hybrid) with the environment knobs it switches too."""
    label, knobs, direction = entry["label"], [], None
    if entry.get("info") is not None:
        info = json.loads(Path(entry["info"]).read_text())
        label, knobs, direction = info["id"], info["knobs"], info["direction"]
    if "knobs" in entry:  # environment knobs switched too
        knobs, direction = sorted({*knobs, *entry["knobs"]}), entry["direction"]
        label = f"{direction}:{'+'.join(knobs)}"
    return label, knobs, direction


def gathered_runs(entries: list[dict[str, Any]]) -> tuple[list[JobResult], Labels]:
    """The finished runs of every entry, as the local runner reports them.

    :param entries: [{"label", "config" (path), "info" (hybrid.json or None), optionally "knobs" and "direction"
        (a hybrid that switches environment knobs), "runs": [{"seed", "score" (score.json or train.json)[,
        "environment" (its spec)]}]}], paths as strings"""
    labels: Labels = {}
    runs = []
    for entry in entries:
        label, knobs, direction = entry_label(entry)
        labels[label] = (knobs, direction)
        for run in entry["runs"]:
            score = read_score(run["score"])
            trained = score["seed_result"]
            scored = score["wer"] is not None
            runs.append(JobResult(label, entry["config"], run["seed"], _job_id(trained["work_dir"]),
                                  trained["status"], trained["reason"], trained["log"], wer=score["wer"],
                                  segments=score["segments"], best_dev=trained["best_dev"],
                                  train_seconds=trained["seconds"], environment=trained.get("environment"),
                                  environment_spec=run.get("environment"), train_dir=trained["work_dir"],
                                  final_epoch=trained["final_epoch"],
                                  score_key=_job_id(run["score"]) if scored else None))
    return runs, labels


def gather_results(entries: list[dict[str, Any]], results_file: Path, report_txt: Path, report_dir: Path,
                   title: str, finding: dict | None = None, environments: dict[str, Any] | None = None,
                   plan_section: dict[str, Any] | None = None) -> dict:
    """results.json (`runner.results` schema), report.txt (the table and verdict as text) and the report folder.
    `environments`: `PairEnvironments.report(...)` (results.json then has an environments section); `plan_section`:
    results.json's `plan` (`attribution.plan_table.plan_section`: the report shows the plan's row)."""
    runs, labels = gathered_runs(entries)
    configs = {entry["label"]: entry["config"] for entry in entries}
    scorer = "test WER" if any(r.wer is not None for r in runs) else "dev error"
    bisection = Bisection(configs["orig"], configs["start"], scorer, runs, labels,
                          Finding.from_json(finding) if finding else None,
                          section_from_report(environments, runs) if environments else None, plan_section or None)
    payload = write_results(results_file, bisection)
    table = [f"{h['label']}: {h['wer_mean']:.2f} ± {h['wer_std']:.2f} % {scorer} over {h['runs']} seeds"
             for h in payload["hybrids"] if h["wer_mean"] is not None]
    write_atomic(report_txt, "\n".join(table + [""] + payload["verdict"]) + "\n")
    write_bisection_report(report_dir, payload, title, report_context(entries))
    return payload


def report_context(entries: list[dict[str, Any]]) -> ReportContext:
    """The knob diff (kept in each hybrid.json) and the wall time from the first training to the last scoring."""
    from attribution.report_model import ReportContext  # the report's modules: only when a report is written

    infos = [json.loads(Path(entry["info"]).read_text()) for entry in entries if entry.get("info") is not None]
    diff = next((info["diff"] for info in infos if info.get("diff")), None)
    jobs = []
    for run in (run for entry in entries for run in entry["runs"]):
        score = read_score(run["score"])
        scored = SisJob(Path(run["score"]).parents[1]) if score["wer"] is not None else None
        jobs.append((SisJob(Path(score["seed_result"]["work_dir"]).parents[1]), scored))
    return ReportContext(diff=diff, wall_seconds=wall_seconds(jobs, time.time()))
