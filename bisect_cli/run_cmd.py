"""`config-bisect run ORIG START -o WORKDIR`: write hybrids, train and score each (hybrid, seed) locally."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from attribution.plan_table import load_plan_table, plan_section
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
from bisect_cli.plan_inputs import directions_of, proven_units, recognition_setup, requests_from, strategy_units
from common.errors import UserError
from common.timefmt import duration
from interpolate.hybrids import make_hybrids, write_manifest
from interpolate.plan import DIRECTIONS
from knobs.pairing import pair_paths
from knobs.requirements import Requirements
from runner.local import Job, JobResult, WorkdirLock, job_key, run_jobs
from runner.local_progress import local_progress
from runner.pair_environments import PairEnvironments, baseline_requirements
from runner.report_inputs import report_context, title_of
from runner.results import Bisection, write_bisection_report, write_results
from runner.run_plan import RunPlan, write_run_plan
from runner.settings import RunSettings
from runner.strategy_run import LocalEvaluate
from runner.summary import Labels


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
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="The decision table of `config-bisect plan ... -o PLAN.json` for this pair: the report shows its "
                   "row for the strategy and --jobs of this run next to what the run measured.")
@context_options
@environment_options
@original_log_options
@debug_option
def run(orig: str, start: str, work_dir: str, knob_list: str | None, direction: str, strategy: str | None,
        seeds: int | None, baseline_seeds: int | None, parallel: int, retry_failed: bool, vocab_file: str | None,
        refs: str | None, rules_file: str | None, plan_file: str | None, settings: tuple[str, ...],
        context_files: tuple[str, ...], timeout: float, epochs: int | None, orig_env: str | None, start_env: str | None,
        orig_log: str | None, start_log: str | None) -> None:
    """Train and score orig, start and their hybrids; report which knobs close the gap.

    --epochs N trains N epochs instead of num_epochs. With --orig-env/--start-env each side trains in its own
    environment and the environment is a knob; --orig-log/--start-log compare the original trainings'
    environments with the ones the bisection trained in."""
    started = time.monotonic()
    if strategy is not None and (knob_list or direction != "both" or baseline_seeds):
        raise UserError("--strategy chooses the hybrids and seeds itself: leave out --knobs, --direction and "
                        "--baseline-seeds")
    plan_table = load_plan_table(plan_file) if plan_file else None
    environments = PairEnvironments.from_files(orig_env, start_env)
    original = original_logs(orig_log, start_log)
    for note in local_run_notes(environments):
        click.echo(note)
    pairs = pair_paths(orig, start)
    if len(pairs) != 1:
        names = ", ".join(o.name for o, _ in pairs)
        raise UserError(f"run needs one config pair; the folders hold {len(pairs)} ({names}): name the files")
    (orig_path, start_path), = pairs
    data_env, recognition = recognition_setup(orig_path, start_path, vocab_file, refs)
    if strategy is not None and recognition is None:
        raise UserError("--strategy needs test WERs: give --vocab and --refs")
    context = make_context(settings, context_files, timeout, None)
    run_settings = RunSettings(
        orig=orig_path, start=start_path, work=Path(work_dir), epochs=epochs, seeds=seeds,
        baseline_seeds=baseline_seeds or max(3, seeds or 1), parallel=parallel, retry_failed=retry_failed,
        recognition=recognition, data_env=data_env, context=context, rules_file=rules_file, environments=environments,
        requires=baseline_requirements(orig_path, start_path, context) if environments.active else {})
    if plan_table is not None:  # before anything is written; knobs left out are said when the hybrids are written
        with contextlib.redirect_stdout(io.StringIO()):
            units = proven_units(orig_path, start_path, context, rules_file,
                                 environments.knobs(compare_hardware=False)[0])
        plan_table.check_units(list(units), plan_file)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    with WorkdirLock(run_settings.work):  # from the first file written to the last
        if strategy is None:
            finding, (runs, labels) = None, _run_hybrids(run_settings, knob_list, direction, console)
        else:
            finding, runs, labels = _run_strategy(run_settings, strategy)
        bisection = Bisection(str(orig_path), str(start_path), run_settings.scorer, runs, labels, finding,
                              environments_payload(environments, runs, original),
                              plan_section(plan_table, plan_file, strategy, parallel) if plan_table else None)
        payload = write_results(run_settings.work / "results.json", bisection)
        progress = local_progress(run_settings.work)
        report = write_bisection_report(run_settings.work, payload, title_of(progress, payload),
                                        report_context(progress))
    _print_summary(console, payload, report, run_settings.work)
    trainings = payload["trainings"]
    console.print(f"wall time {duration(time.monotonic() - started)}; {trainings['run']} trainings run, "
                  f"{trainings['reused']} reused from earlier runs", markup=False, soft_wrap=True)


def _run_hybrids(settings: RunSettings, knob_list: str | None, direction: str, console: Console
                 ) -> tuple[list[JobResult], Labels]:
    """The hybrids of --knobs/--direction (default: each knob alone), all trained at once."""
    directions = directions_of(direction)
    environments = settings.environments
    environment_knobs, _ = environments.knobs(compare_hardware=False)
    diff, hybrids = make_hybrids(str(settings.orig), str(settings.start), settings.work / "hybrids",
                                 requests_from(knob_list, directions), directions, settings.context,
                                 settings.rules_file, environment_knobs)
    write_manifest(settings.work / "hybrids", diff, hybrids)
    labels: Labels = {"orig": ([], None), "start": ([], None)}
    jobs = [Job(side, str(path), seed, settings.epochs, environments.for_job(side, None), settings.requires.get(side))
            for side, path in (("orig", settings.orig), ("start", settings.start))
            for seed in range(1, settings.baseline_seeds + 1)]
    for h in hybrids:
        if h.status == "ok":
            labels[h.id] = (h.knobs, h.direction)
            jobs += [Job(h.id, h.path, seed, settings.epochs, environments.for_job(h.id, h.direction, h.environment),
                         Requirements.from_json(h.requires)) for seed in range(1, (settings.seeds or 1) + 1)]
        else:
            console.print(f"hybrid {h.id} not trained: {h.status}: {h.reason}", markup=False, soft_wrap=True)
    write_run_plan(settings.work, RunPlan("local", str(settings.orig.resolve()), str(settings.start.resolve()),
                                          parallel=settings.parallel, score_key=settings.score_key,
                                          runs=[{"label": j.label, "seed": j.seed,
                                                 "key": job_key(j, settings.data_env)} for j in jobs],
                                          labels={k: {"knobs": v[0], "direction": v[1]} for k, v in labels.items()}))
    return _run_with_progress(jobs, settings, console), labels


def _run_strategy(settings: RunSettings, strategy: str) -> tuple[Finding, list[JobResult], Labels]:
    """The strategy asks for hybrids and seeds as it learns; each round is trained before it asks again."""
    environment_knobs, _ = settings.environments.knobs(compare_hardware=False)
    units, diff, write_hybrid = strategy_units(settings.orig, settings.start, settings.work / "hybrids",
                                               settings.context, settings.rules_file, environment_knobs)
    options = strategy_options(strategy, settings.seeds, settings.parallel)
    write_manifest(settings.work / "hybrids", diff, [])  # the diff for a partial report; the hybrids follow at the end
    write_run_plan(settings.work, RunPlan("local", str(settings.orig.resolve()), str(settings.start.resolve()),
                                          parallel=settings.parallel, score_key=settings.score_key,
                                          strategy=strategy, strategy_kwargs=options,
                                          units={name: sorted(knobs) for name, knobs in units.items()}))
    count = 0

    def log_line(result: JobResult) -> None:
        nonlocal count
        count += 1
        print(f"[{count}] {_job_line(result)}", flush=True)

    evaluate = LocalEvaluate(settings, units, write_hybrid, log_line)
    print(f"{strategy} over {len(units)} units: {', '.join(units)}", flush=True)
    finding = STRATEGIES[strategy](list(units), evaluate, **options)
    write_manifest(settings.work / "hybrids", diff, list(evaluate.written.values()))
    return finding, evaluate.results, evaluate.labels


def _run_with_progress(jobs: list[Job], settings: RunSettings, console: Console) -> list[JobResult]:
    if console.is_terminal:
        with Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[failed]} failed"), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("jobs", total=len(jobs), failed=0)
            failed = 0

            def done(result: JobResult) -> None:
                nonlocal failed
                failed += result.status != "ok"
                bar.update(task, advance=1, failed=failed)

            return run_jobs(jobs, settings, done)

    count = 0

    def log_line(result: JobResult) -> None:
        nonlocal count
        count += 1
        print(f"[{count}/{len(jobs)}] {_job_line(result)}", flush=True)

    return run_jobs(jobs, settings, log_line)


def _job_line(result: JobResult) -> str:
    what = f"WER {result.wer:.2f}%" if result.wer is not None else (result.reason or result.status)
    reused = " (trained before)" if result.reused else f" in {result.seconds:.0f} s"
    return f"{result.label} seed {result.seed}: {result.status}, {what}{reused}"


def _fmt(value: float | None, signed: bool = False) -> str:
    return "-" if value is None else (f"{value:+.2f}" if signed else f"{value:.2f}")


def _print_summary(console: Console, payload: dict, report: tuple[Path, Path] | None, work: Path) -> None:
    """The table, failures and verdict exactly as results.json has them."""
    table = Table(title=f"{payload['scorer']} per hybrid (mean ± std over seeds)")
    for column in ("hybrid", "runs", "score %", "vs start", "vs orig", "effect [95 % interval]", "gap share",
                   "verdict", "dev curve parts from start"):
        table.add_column(column)
    parting = payload["dev_curves_part_from_start"]
    for h in payload["hybrids"]:
        score = "-" if h["wer_mean"] is None else f"{h['wer_mean']:.2f} ± {h['wer_std']:.2f}"
        effect = "-" if h["effect"] is None else (f"{h['effect']:+.2f} [{_fmt(h['effect_low'], True)}, "
                                                  f"{_fmt(h['effect_high'], True)}]")
        share = "-" if h["gap_share"] is None else f"{100 * h['gap_share']:.0f}%"
        parted = parting.get(h["label"])
        table.add_row(h["label"], f"{h['runs'] - h['failed']}/{h['runs']}", score, _fmt(h["vs_start"], True),
                      _fmt(h["vs_orig"], True), effect, share, h["verdict"] or "-",
                      "-" if parted is None else f"epoch {parted}")
    console.print(table)
    for job in payload["jobs"]:
        if job["status"] != "ok":
            console.print(f"failed: {job['label']} seed {job['seed']}: {job['reason']} (log: {job['log']})",
                          markup=False, soft_wrap=True)
    trained = [j["train_seconds"] for j in payload["jobs"] if not j["reused"] and j["train_seconds"]]
    if trained:
        console.print(f"trainings took {min(trained):.0f}-{max(trained):.0f} s each", markup=False, soft_wrap=True)
    for line in payload["verdict"]:
        console.print(line, markup=False, soft_wrap=True)
    if report:
        console.print(f"report: {report[0]} and {report[1]}", markup=False, soft_wrap=True)
    console.print(f"results: {work / 'results.json'}", markup=False, soft_wrap=True)
