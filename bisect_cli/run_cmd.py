"""`config-bisect run ORIG START -o WORKDIR`: write hybrids, train and score each (hybrid, seed) locally."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from artefacts.curves import Curve, compare_curves, read_curve, replicate_band
from attribution.report import write_report
from attribution.strategies import STRATEGIES, Finding, strategy_options
from bisect_cli.diff_cmd import context_options, make_context
from bisect_cli.environment_options import (
    environment_options,
    environments_payload,
    local_run_notes,
    original_log_options,
    original_logs,
)
from bisect_cli.options import debug_option
from bisect_cli.plan_inputs import directions_of, recognition_setup, requests_from, strategy_units
from common.atomic import write_atomic
from common.errors import UserError
from interpolate.hybrids import make_hybrids, write_manifest
from interpolate.plan import DIRECTIONS
from knobs.pairing import pair_paths
from knobs.requirements import Requirements
from runner import steps
from runner.local import Job, JobResult, Recognition, run_jobs
from runner.pair_environments import PairEnvironments, baseline_requirements
from runner.strategy_run import LocalEvaluate
from runner.summary import label_runs, summarize, to_json, verdict


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("-o", "--output", "work_dir", required=True, type=click.Path(file_okay=False),
              help="Work folder (hybrids, one folder per job, results.json); rerun to resume.")
@click.option("--knobs", "knob_list", help="Comma-separated knobs to switch together (default: each knob alone).")
@click.option("--direction", type=click.Choice([*DIRECTIONS, "both"]), default="both", show_default=True)
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)),
              help="Let this strategy choose the hybrids as the results come in (see `plan`); without it, the "
                   "hybrids of --knobs/--direction are trained all at once.")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seed replicates per hybrid (default 1); with --strategy, passed to strategies that take it.")
@click.option("--baseline-seeds", type=click.IntRange(min=1), default=None,
              help="Seed replicates of orig and start (default: max(3, --seeds)); they give the noise floor.")
@click.option("--jobs", "parallel", type=click.IntRange(min=1), default=2, show_default=True,
              help="Trainings in parallel.")
@click.option("--retry-failed", is_flag=True, help="Train failed jobs again (finished ones are always kept).")
@click.option("--vocab", "vocab_file", type=click.Path(), help="Output labels (JSON list or {label: index}).")
@click.option("--refs", type=click.Path(), help="Reference transcripts of the test split (`tag word ...`).")
@click.option("--rules", "rules_file", type=click.Path(), help="Extra knob category rules (JSON).")
@context_options
@environment_options
@original_log_options
@debug_option
def run(orig: str, start: str, work_dir: str, knob_list: str | None, direction: str, strategy: str | None,
        seeds: int | None, baseline_seeds: int | None, parallel: int, retry_failed: bool, vocab_file: str | None,
        refs: str | None, rules_file: str | None, settings: tuple[str, ...], context_files: tuple[str, ...],
        timeout: float, epochs: int | None, orig_env: str | None, start_env: str | None, orig_log: str | None,
        start_log: str | None) -> None:
    """Train and score orig, start and their hybrids; report which knobs close the gap.

    --epochs N trains N epochs instead of num_epochs. With --orig-env/--start-env each side trains in its own
    environment and the environment is a knob; --orig-log/--start-log compare the original trainings'
    environments with the ones the bisection trained in."""
    started = time.monotonic()
    environments = PairEnvironments.from_files(orig_env, start_env)
    original = original_logs(orig_log, start_log)
    for note in local_run_notes(environments):
        click.echo(note)
    pairs = pair_paths(orig, start)
    if len(pairs) != 1:
        names = ", ".join(o.name for o, _ in pairs)
        raise UserError(f"run needs one config pair; the folders hold {len(pairs)} ({names}): name the files")
    (orig_path, start_path), = pairs
    work = Path(work_dir)
    env, recognition = recognition_setup(orig_path, start_path, vocab_file, refs)
    context = make_context(settings, context_files, timeout, None)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    finding = None
    if strategy is None:
        results, labels = _run_hybrids(orig_path, start_path, work, knob_list, direction, seeds or 1,
                                       baseline_seeds or max(3, seeds or 1), parallel, retry_failed, recognition,
                                       env, context, rules_file, epochs, console, environments)
    else:
        if knob_list or direction != "both" or baseline_seeds:
            raise UserError("--strategy chooses the hybrids and seeds itself: leave out --knobs, --direction and "
                            "--baseline-seeds")
        if recognition is None:
            raise UserError("--strategy needs test WERs: give --vocab and --refs")
        finding, results, labels = _run_strategy(orig_path, start_path, work, strategy, seeds, parallel,
                                                 retry_failed, recognition, env, context, rules_file, epochs,
                                                 environments)
    summaries = summarize(results, labels)
    curves = dev_curves(results, work)
    parting = parting_epochs(curves)
    lines = verdict(summaries)
    if finding is not None:
        lines += finding.summary()
    payload = {"orig": str(orig_path), "start": str(start_path), "jobs": [r.__dict__ for r in results],
               "hybrids": to_json(summaries), "verdict": lines, "scorer": "test WER" if recognition else "dev error",
               "dev_curves_part_from_start": parting}
    if finding is not None:
        payload["strategy"] = finding.to_json()
    environments_section = environments_payload(environments, results, original)
    if environments_section:
        payload["environments"] = environments_section
        lines += environments_section["warnings"] + environments_section["original"]
    write_atomic(work / "results.json", json.dumps(payload, indent=1) + "\n")
    if recognition is not None and summaries[0].wer_mean is not None and summaries[1].wer_mean is not None:
        report_md, report_html = write_report(work, label_runs(results, labels),
                                              [c for (_, seed), c in sorted(curves.items()) if seed == 1],
                                              f"config-bisect: {orig_path.name}", finding, environments_section)
        lines.append(f"report: {report_md} and {report_html}")
    _print_summary(console, summaries, results, lines, time.monotonic() - started, work, parting)


def _run_hybrids(orig_path: Path, start_path: Path, work: Path, knob_list: str | None, direction: str, seeds: int,
                 baseline_seeds: int, parallel: int, retry_failed: bool, recognition: Recognition | None,
                 env: dict[str, str], context, rules_file: str | None, epochs: int | None, console: Console,
                 environments: PairEnvironments) -> tuple[list[JobResult], dict[str, tuple[list[str], str | None]]]:
    """The hybrids of --knobs/--direction (default: each knob alone), all trained at once."""
    directions = directions_of(direction)
    requests = requests_from(knob_list, directions)
    environment_knobs, _ = environments.knobs(compare_hardware=False)
    diff, hybrids = make_hybrids(str(orig_path), str(start_path), work / "hybrids", requests, directions, context,
                                 rules_file, environment_knobs)
    write_manifest(work / "hybrids", diff, hybrids)
    requires = baseline_requirements(orig_path, start_path, context) if environments.active else {}
    labels: dict[str, tuple[list[str], str | None]] = {"orig": ([], None), "start": ([], None)}
    jobs = [Job(side, str(path), seed, epochs, environments.for_job(side, None), requires.get(side))
            for side, path in (("orig", orig_path), ("start", start_path)) for seed in range(1, baseline_seeds + 1)]
    for h in hybrids:
        if h.status == "ok":
            labels[h.id] = (h.knobs, h.direction)
            jobs += [Job(h.id, h.path, seed, epochs, environments.for_job(h.id, h.direction, h.environment),
                         Requirements.from_json(h.requires)) for seed in range(1, seeds + 1)]
    for h in hybrids:
        if h.status != "ok":
            console.print(f"hybrid {h.id} not trained: {h.status}: {h.reason}", markup=False)
    return _run_with_progress(jobs, work, recognition, env, parallel, console, retry_failed), labels


def _run_strategy(orig_path: Path, start_path: Path, work: Path, strategy: str, seeds: int | None, parallel: int,
                  retry_failed: bool, recognition: Recognition, env: dict[str, str], context, rules_file: str | None,
                  epochs: int | None, environments: PairEnvironments
                  ) -> tuple[Finding, list[JobResult], dict[str, tuple[list[str], str | None]]]:
    """The strategy asks for hybrids and seeds as it learns; each batch is trained before it asks again."""
    environment_knobs, _ = environments.knobs(compare_hardware=False)
    units, diff, write_hybrid = strategy_units(orig_path, start_path, work / "hybrids", context, rules_file,
                                               environment_knobs)
    requires = baseline_requirements(orig_path, start_path, context) if environments.active else {}
    count = 0

    def log_line(result: JobResult) -> None:
        nonlocal count
        count += 1
        print(f"[{count}] {_job_line(result)}", flush=True)

    evaluate = LocalEvaluate(str(orig_path), str(start_path), units, write_hybrid, work, recognition, env, parallel,
                             epochs, retry_failed, log_line, environments, requires)
    print(f"{strategy} over {len(units)} units: {', '.join(units)}", flush=True)
    finding = STRATEGIES[strategy](list(units), evaluate, **strategy_options(strategy, seeds, parallel))
    write_manifest(work / "hybrids", diff, list(evaluate.written.values()))
    return finding, evaluate.results, evaluate.labels


def dev_curves(results: list[JobResult], work: Path, key: str = "dev_error") -> dict[tuple[str, int], Curve]:
    """(label, seed) -> the dev curve in the job's learning-rate file."""
    curves = {}
    for result in results:
        if result.status == "ok":
            try:
                curve = read_curve(work / "jobs" / result.key / steps.LR_FILE, key)
            except UserError:
                continue
            curve.label = f"{result.label} seed {result.seed}"
            curves[(result.label, result.seed)] = curve
    return curves


def parting_epochs(curves: dict[tuple[str, int], Curve]) -> dict[str, int | None]:
    """Per label: the epoch from which its seed-1 dev curve stays apart from start's, so that a user can stop
    hopeless trainings early. The noise band comes from the start replicates (see `replicate_band`)."""
    reference = curves.get(("start", 1))
    band = replicate_band([c for (label, _), c in curves.items() if label == "start"])
    if reference is None:
        return {}
    return {label: compare_curves(reference, c, band).parted_from
            for (label, seed), c in curves.items() if seed == 1 and label != "start"}


def _run_with_progress(jobs: list[Job], work: Path, recognition, env, parallel: int, console: Console,
                       retry_failed: bool) -> list[JobResult]:
    failed = 0
    if console.is_terminal:
        with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("jobs", total=len(jobs), failed=0)

            def done(result: JobResult) -> None:
                nonlocal failed
                failed += result.status != "ok"
                bar.update(task, advance=1, failed=failed)

            return run_jobs(jobs, work, recognition, env, parallel, done, retry_failed)

    count = 0

    def log_line(result: JobResult) -> None:
        nonlocal count
        count += 1
        print(f"[{count}/{len(jobs)}] {_job_line(result)}", flush=True)

    return run_jobs(jobs, work, recognition, env, parallel, log_line, retry_failed)


def _job_line(result: JobResult) -> str:
    what = f"WER {result.wer:.2f}%" if result.wer is not None else (result.reason or result.status)
    reused = " (done before)" if result.reused else f" in {result.seconds:.0f} s"
    return f"{result.label} seed {result.seed}: {result.status}, {what}{reused}"


def _fmt(value: float | None, signed: bool = False) -> str:
    return "-" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")


def _print_summary(console: Console, summaries, results: list[JobResult], lines: list[str], seconds: float,
                   work: Path, parting: dict[str, int | None]) -> None:
    table = Table(title="WER per hybrid (mean ± std over seeds)")
    for column in ("hybrid", "runs", "WER %", "vs start", "vs orig", "gap share", "dev curve parts from start"):
        table.add_column(column)
    for s in summaries:
        wer = "-" if s.wer_mean is None else f"{s.wer_mean:.2f} ± {s.wer_std:.2f}"
        share = "-" if s.gap_share is None else f"{100 * s.gap_share:.0f}%"
        runs = f"{s.runs - s.failed}/{s.runs}"
        parted = parting.get(s.label)
        table.add_row(s.label, runs, wer, _fmt(s.vs_start, True), _fmt(s.vs_orig, True), share,
                      "-" if parted is None else f"epoch {parted}")
    console.print(table)
    for result in results:
        if result.status != "ok":
            console.print(f"failed: {result.label} seed {result.seed}: {result.reason} (log: {result.log})",
                          markup=False)
    trained = [r.train_seconds for r in results if not r.reused and r.train_seconds]
    if trained:
        console.print(f"{len(trained)} trainings, {min(trained):.0f}-{max(trained):.0f} s each; "
                      f"wall time {seconds:.0f} s; results: {work / 'results.json'}", markup=False)
    for line in lines:
        console.print(line, markup=False)
