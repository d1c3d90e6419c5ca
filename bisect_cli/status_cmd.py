"""`config-bisect status WORKDIR`: where a bisection stands (a local `run` or a Sisyphus `submit`): which hybrids
are done, running, waiting or failed, the best guess so far, what the strategy asks next, the time left."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from attribution.report_model import RunEffects
from bisect_cli.options import debug_option
from common.errors import UserError
from common.timefmt import duration
from jobs.setup_progress import setup_progress
from runner.local_progress import local_progress
from runner.progress import DONE, FAILED, RUNNING, WAITING, Progress, hybrid_states, time_left
from runner.report_inputs import pending_lines, progress_results

RESULTS = "results.json"


def is_sisyphus_setup(folder: Path) -> bool:
    return (folder / "work").is_dir() and (folder / "config").is_dir()


def load_progress(folder: str | Path, pair: str | None = None) -> tuple[Progress, dict | None]:
    """(where the bisection in `folder` stands, its final results.json content if it has one)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError("no such folder", folder)
    if is_sisyphus_setup(folder):
        progress = setup_progress(folder, pair)
        name = progress.plan.pair if progress.plan and progress.plan.pair else pair
        results = folder / "output" / "bisect" / name / RESULTS if name else None
    else:
        progress = local_progress(folder)
        results = folder / RESULTS
    try:
        finished = json.loads(results.read_text()) if results and results.exists() else None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc}", results) from None
    return progress, finished


def status_json(progress: Progress) -> dict[str, Any]:
    """{"done", "running", "waiting", "failed"}: hybrid ids (each in one list), then the details."""
    left, basis = time_left(progress)
    replay = progress.replay
    return {
        **hybrid_states(progress.records),
        "engine": progress.engine, "folder": progress.folder, "complete": progress.complete,
        "trainings": {name: sum(r.status == s for r in progress.records)
                      for name, s in (("done", DONE), ("running", RUNNING), ("waiting", WAITING), ("failed", FAILED))},
        "runs": [{k: v for k, v in r.to_json().items() if k not in ("segments", "environment")}
                 for r in progress.records],
        "failures": [{"hybrid": r.label, "seed": r.seed, "error": r.reason, "log": r.log}
                     for r in progress.records if r.status == FAILED],
        "best_guess": RunEffects.of(progress_results(progress, None)).verdict(not progress.complete),
        "next": {"strategy": replay.strategy if replay else None,
                 "asks": [{"hybrid": label, "seed": seed} for label, seed in (replay.asked if replay else [])],
                 "rounds_done": replay.rounds if replay else None,
                 "finished": bool(replay and replay.finding),
                 "culprits": sorted(replay.finding.culprits) if replay and replay.finding else None},
        "time_left_seconds": left, "time_left_basis": basis, "notes": progress.notes,
    }


def _runs(progress: Progress, status: str) -> str:
    return ", ".join(f"{r.label} seed {r.seed}" + (f" ({r.detail})" if r.detail else "")
                     for r in progress.records if r.status == status)


def status_text(progress: Progress, data: dict[str, Any]) -> list[str]:
    """The status for a terminal."""
    plan = progress.plan
    what = f"{plan.strategy} strategy" if plan and plan.strategy else "fixed list of hybrids"
    count = data["trainings"]
    lines = [f"{progress.folder}: {'Sisyphus setup' if progress.engine == 'sisyphus' else 'local run'}, {what}",
             f"trainings: {count['done']} done, {count['running']} running, {count['waiting']} waiting, "
             f"{count['failed']} failed (of {len(progress.records)}{' asked for so far' if progress.replay else ''})"]
    for name in ("done", "running", "waiting", "failed"):
        if data[name]:
            lines.append(f"  {name + ':':9}{', '.join(data[name])}")
    for status, name in ((RUNNING, "running"), (WAITING, "waiting")):
        if data["trainings"][name]:
            lines.append(f"  {name} trainings: {_runs(progress, status)}")
    for failure in data["failures"]:
        lines.append(f"  FAILED {failure['hybrid']} seed {failure['seed']}: {failure['error']} (log: {failure['log']})")
    lines.append(f"best guess: {data['best_guess']}")
    if progress.replay is not None:
        replay = progress.replay
        if replay.finding is not None:
            lines.append(f"next: nothing, the strategy has its verdict after {replay.rounds} rounds: culprits "
                         f"{', '.join(sorted(replay.finding.culprits)) or 'none'}")
        else:
            lines += [f"next: {line}" for line in pending_lines(progress)]
    elif count["running"] + count["waiting"]:
        lines.append(f"next: the fixed list: {count['running'] + count['waiting']} trainings to go")
    left = data["time_left_seconds"]
    if left != 0:
        lines.append(f"time left: {'unknown' if left is None else 'about ' + duration(left)} "
                     f"({data['time_left_basis']})")
    return lines + [f"note: {note}" for note in progress.notes]


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {done, running, waiting, failed, ...}.")
@click.option("--watch", is_flag=True, help="Refresh until nothing runs or waits (Ctrl-C to stop).")
@click.option("--interval", type=click.FloatRange(min=1), default=10, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--pair", help="The pair's name in a Sisyphus setup that bisects several.")
@debug_option
def status(folder: str, as_json: bool, watch: bool, interval: float, pair: str | None) -> None:
    """Where the bisection in FOLDER stands: a work folder of `run` or a setup folder of `submit`.

    Read-only: it looks at the job folders (and replays a strategy over the finished trainings to say what it
    asks next); it can run while the bisection runs. With --json --watch, one JSON object per line."""
    while True:
        progress, _ = load_progress(folder, pair)
        data = status_json(progress)
        if as_json:
            click.echo(json.dumps(data, indent=None if watch else 1))
        else:
            if watch:
                click.clear()
            click.echo("\n".join(status_text(progress, data)))
        if not watch or not any(r.status in (RUNNING, WAITING) for r in progress.records):
            return
        time.sleep(interval)
