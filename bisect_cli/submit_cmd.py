"""`config-bisect submit ORIG START -o SETUP_DIR --engine ...`: a Sisyphus setup that trains and scores the
hybrids on a cluster (or the local engine), then the manager run (or, with --dry-run, what it would run)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pprint
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from attribution.plan_table import load_plan_table, plan_section
from attribution.strategies import STRATEGIES, strategy_options
from bisect_cli.diff_cmd import context_options, make_context
from bisect_cli.environment_options import (
    diff_with_environments,
    environment_options,
    original_log_options,
    original_logs,
)
from bisect_cli.options import debug_option
from bisect_cli.plan_inputs import directions_of, proven_units, recognition_setup, requests_from
from common.atomic import write_atomic
from common.errors import UserError
from interpolate.hybrids import single_knob_requests
from interpolate.plan import DIRECTIONS
from jobs import engine_settings as es
from jobs.slurm_state import SlurmWatch, cluster_gres_types, sbatch_flags, sbatch_refusal
from jobs.task_tries import final_errors
from knobs import diff_configs, load_pair, load_rules
from knobs.pairing import pair_paths
from runner.pair_environments import PairEnvironments, baseline_requirements, side_configs_in_environments
from runner.preflight import preflight
from runner.run_plan import RunPlan, write_run_plan

INSTALL_HINT = ("RWTH Sisyphus is not installed (it is not the PyPI package `sisyphus`): install it from its "
                "repository, e.g. `pip install git+https://github.com/rwth-i6/sisyphus`")


def sisyphus_available() -> bool:
    if importlib.util.find_spec("sisyphus") is None:
        return False
    logging.disable(logging.WARNING)  # importing sisyphus outside a setup warns that settings.py is missing
    try:
        import sisyphus
    finally:
        logging.disable(logging.NOTSET)

    return hasattr(sisyphus, "Job")  # PyPI's unrelated `sisyphus` has no Job


def config_text(orig: Path, start: Path, plan: dict, pair: str, confirm_seeds: int = 0, strategy: str | None = None,
                units: dict[str, list[str]] | None = None) -> str:
    """The Sisyphus config: a fixed plan (`bisect_<pair>`), its confirmation stage (`confirm_<pair>`) and, with
    `strategy`, the strategy's workflow over `units` (`strategy_<pair>`); `py()` runs the one asked for."""
    if strategy:
        main = f"async def py():\n    await strategy_{pair}()"
    elif confirm_seeds:
        main = f"async def py():\n    await confirm_{pair}()"
    else:
        main = f"def py():\n    bisect_{pair}()"
    return f'''"""Sisyphus config written by `config-bisect submit`: the bisection of {orig.name}.

Import `bisect_{pair}` (or the async `confirm_{pair}`, `strategy_{pair}`) from an existing setup, or run
`sis m config/bisect.py` here.
"""
from jobs.graph import Plan, bisect_with_strategy, build_bisection, confirm_culprits

ORIG = {str(orig)!r}
START = {str(start)!r}
PLAN = Plan(**{pprint.pformat(plan, width=110, compact=True, sort_dicts=False)})
PLAN.requests = [(tuple(knobs), direction) for knobs, direction in PLAN.requests]
PLAN.settings = tuple(tuple(kv) for kv in PLAN.settings)
# what the strategy switches (coupled knobs together), in the order `run` has them
UNITS = {pprint.pformat(units or {}, width=110, compact=True, sort_dicts=False)}


def bisect_{pair}():
    return build_bisection(ORIG, START, PLAN, pair={pair!r})


async def confirm_{pair}():
    """Stage 2 after stage 1's result: more seeds only for the hybrids that moved the gap."""
    return await confirm_culprits(ORIG, START, PLAN, pair={pair!r}, extra_seeds={confirm_seeds})


async def strategy_{pair}():
    """The strategy chooses the hybrids and seeds as the scores come in."""
    return await bisect_with_strategy(ORIG, START, PLAN, {strategy or "adaptive"!r}, UNITS, pair={pair!r})


{main}
'''


def show_requests(engine: str, plan: dict, site_flags: tuple[str, ...], why: list[str]) -> None:
    """Print each task's requests, where they come from, and (Slurm, with Sisyphus here) the sbatch flags."""
    click.echo(f"requests per task (engine {engine}{', site flags ' + ' '.join(site_flags) if site_flags else ''}):")
    for line in why:
        click.echo(line)
    if engine == "slurm" and sisyphus_available():
        for kind in ("rqmt", "score_rqmt"):
            flags = sbatch_flags(plan[kind])
            click.echo(f"  sbatch for {'training' if kind == 'rqmt' else 'scoring'}: {' '.join(flags)}")


MANAGER_POLL_SECONDS = 5.0


def failed_jobs(setup: Path) -> list[str]:
    """Job folders with an error file (Sisyphus writes `error.<task>.<n>` when a task fails) of a task with no try
    left (a failed training's first try is run again)."""
    return sorted({str(p.parent) for p in (setup / "work").rglob("error.*") if final_errors(p.parent)})


def finished_results(setup: Path, pair: str, confirm: bool, said: str, notes: Iterable[str] = ()) -> Path:
    """The results.json a finished manager run left (the confirmation stage's, with `confirm`); a failed job or a
    missing result is a one-line error (the manager exits 0 even when jobs failed). `said`: its last line;
    `notes`: what the cluster said about jobs that ended abnormally."""
    results = setup / "output" / "bisect" / pair / "results.json"
    errors = failed_jobs(setup)
    if errors or not results.exists():
        detail = f"failed jobs: {', '.join(errors[:3])}" if errors else f"manager said: {said}"
        detail += "".join(f"; {line}" for line in notes)
        raise UserError(f"the bisection did not finish ({detail})", setup)
    final = setup / "output" / "bisect" / f"{pair}_confirm" / "results.json" if confirm else results
    if not final.exists():
        raise UserError(f"the confirmation stage did not finish (manager said: {said})", setup)
    return final


def run_manager(sis: Path, setup: Path, watch: Callable[[], str | None] | None = None) -> str:
    """Run `sis m -r` without input; stop it when a job fails (an asynchronous config that awaits a failed
    job's output would wait forever) or when `watch` names a problem of the cluster (raised as a UserError).
    Returns the manager's last output line."""
    problem = None
    log = setup / "manager.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(sis), "m", "-r", "config/bisect.py"], cwd=setup, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=MANAGER_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                problem = watch() if watch else None
                if failed_jobs(setup) or problem:
                    proc.terminate()
                    proc.wait(timeout=60)
                    break
    if problem:
        raise UserError(f"stopped the manager: {problem}", setup)
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("-o", "--output", "setup_dir", required=True, type=click.Path(file_okay=False),
              help="The Sisyphus setup folder to write (settings.py, config/bisect.py, work/).")
@click.option("--engine", type=click.Choice(sorted(es.ENGINES)), default="local", show_default=True)
@click.option("--knobs", "knob_list", help="Comma-separated knobs to switch together (default: each knob alone).")
@click.option("--direction", type=click.Choice([*DIRECTIONS, "both"]), default="both", show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seed replicates per hybrid (default 1); with --strategy, passed to strategies that take it.")
@click.option("--baseline-seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--rqmt", "rqmt_items", multiple=True, metavar="KEY=VALUE",
              help="Per-task requirements for training and scoring: cpu=, mem= (GB), gpu=, gpu_name=, time= (hours); "
                   "they win over what the configs and --runtime-log say.")
@click.option("--runtime-log", type=click.Path(exists=True, dir_okay=False),
              help="A RETURNN training log of the pair: its GPU model and measured epoch time size the requests.")
@click.option("--engine-opts", help="Site flags for every cluster task, e.g. '--partition=gpu --account=asr'.")
@click.option("--node-down-timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help="Stop (and say so) when jobs have waited this many seconds for Slurm nodes that are all down.")
@click.option("--vocab", "vocab_file", type=click.Path(), help="Output labels (JSON list or {label: index}).")
@click.option("--refs", type=click.Path(), help="Reference transcripts of the test split.")
@click.option("--confirm-seeds", type=click.IntRange(min=0), default=0, show_default=True,
              help="An asynchronous second stage: this many more seeds for the hybrids that moved half the gap.")
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)),
              help="An asynchronous workflow in which this strategy chooses the hybrids and seeds as the scores "
                   "come in (instead of --knobs/--direction).")
@click.option("--jobs", "parallel", type=click.IntRange(min=1), default=8, show_default=True,
              help="With --strategy: trainings that may run at once on the cluster (its GPUs); each round of the "
                   "strategy is up to this many trainings, submitted together.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
              help="The decision table of `config-bisect plan ... -o PLAN.json` for this pair: the report shows its "
                   "row for the strategy and --jobs of this bisection next to what it measured.")
@click.option("--dry-run", is_flag=True, help="Write the setup, print the jobs and the command; start nothing.")
@context_options
@environment_options
@original_log_options
@debug_option
def submit(orig: str, start: str, setup_dir: str, engine: str, knob_list: str | None, direction: str,
           seeds: int | None,
           baseline_seeds: int, rqmt_items: tuple[str, ...], runtime_log: str | None, engine_opts: str | None,
           node_down_timeout: float, vocab_file: str | None, refs: str | None, confirm_seeds: int,
           strategy: str | None, parallel: int, plan_file: str | None, dry_run: bool,
           settings: tuple[str, ...], context_files: tuple[str, ...], timeout: float, epochs: int | None,
           orig_env: str | None, start_env: str | None, orig_log: str | None, start_log: str | None) -> None:
    """Write a Sisyphus setup that bisects ORIG vs START, and start its manager.

    With --orig-env/--start-env each side trains in its own environment (python and returnn_root are job inputs,
    engine_rqmt joins the tasks' rqmt) and the environment is a knob."""
    if not dry_run and not sisyphus_available():
        raise UserError(INSTALL_HINT)
    plan_table = load_plan_table(plan_file) if plan_file else None
    environments = PairEnvironments.from_files(orig_env, start_env)
    original = original_logs(orig_log, start_log)
    environment_knobs, _ = environments.knobs()
    pairs = pair_paths(orig, start)
    if len(pairs) != 1:
        raise UserError(f"submit needs one config pair; the folders hold {len(pairs)}: name the files")
    (orig_path, start_path), = pairs
    orig_path, start_path = orig_path.resolve(), start_path.resolve()
    rqmt = es.parse_rqmt(rqmt_items)
    site_flags = es.parse_engine_opts(engine, engine_opts)
    site = {es.ENGINE_ARGS[engine]: list(site_flags)} if site_flags else {}  # in the tasks' rqmt: they join others
    data_env, recognition = recognition_setup(orig_path, start_path, vocab_file, refs)
    context = make_context(settings, context_files, timeout, None)
    loaded = load_pair(orig_path, start_path, context)
    resources = es.pair_requests(loaded, rqmt, epochs, es.runtime_from_log(runtime_log) if runtime_log else None,
                                 cluster_gres_types() if engine == "slurm" else None)
    units: dict[str, list[str]] = {}
    if strategy:
        if knob_list or direction != "both" or confirm_seeds:
            raise UserError("--strategy chooses the hybrids itself: leave out --knobs, --direction and --confirm-seeds")
        if recognition is None:
            raise UserError("--strategy needs test WERs: give --vocab and --refs")
    if strategy or plan_table:  # the units are proven by writing hybrids: not kept
        proven = proven_units(orig_path, start_path, context, environment_knobs=environment_knobs)
        if plan_table:
            plan_table.check_units(list(proven), plan_file)
    if strategy:
        units, requests = proven, []
    else:
        seeds = seeds or 1
        directions = directions_of(direction)
        chosen = requests_from(knob_list, directions) or single_knob_requests(
            diff_with_environments(diff_configs(*loaded, load_rules()), environments), directions)
        requests = [(sorted(r.knobs), r.direction) for r in chosen]
    if environments.active:  # before anything is written: each side's config in each environment it meets
        preflight(side_configs_in_environments(environments, None if strategy else requests,
                                               baseline_requirements(orig_path, start_path, context)))
    plan = {"requests": requests, "seeds": seeds, "baseline_seeds": baseline_seeds, "epochs": epochs, "jobs": parallel,
            "vocab": list(recognition.vocab) if recognition else [],
            "refs": recognition.ref_file if recognition else None,
            "data_env": data_env, "rqmt": es.join_rqmt(resources.train, site),
            "score_rqmt": es.join_rqmt(resources.score, site),
            "context_files": [str(Path(f).resolve()) for f in context_files],
            "settings": [list(kv) for kv in context.settings],
            "environments": {side: e.spec() for side, e in environments.environments.items()}
            if environments.active else {},
            "environment_fields": {k.name: k.fields for k in environment_knobs},
            "environment_report": environments.report(original, environments.compositions())
            if environments.active or any(original.values()) else {},
            "plan_section": plan_section(plan_table, plan_file, strategy, parallel if strategy else None)
            if plan_table else {}}
    setup = Path(setup_dir).resolve()
    pair = "".join(c if c.isalnum() else "_" for c in orig_path.stem)
    write_atomic(setup / "settings.py", es.settings_text(engine, es.DEFAULT_RQMT, site_flags, cpus=os.cpu_count() or 2))
    write_atomic(setup / "config" / "bisect.py", config_text(orig_path, start_path, plan, pair, confirm_seeds,
                                                              strategy, units))
    (setup / "work").mkdir(exist_ok=True)
    write_run_plan(setup, RunPlan("sisyphus", str(orig_path), str(start_path), strategy=strategy, units=units,
                                  strategy_kwargs=strategy_options(strategy, seeds, parallel) if strategy else {},
                                  pair=pair))  # for `status` and `report`
    sis = Path(sys.executable).with_name("sis")
    command = f"cd {setup} && {sis} m -r config/bisect.py"
    if strategy:
        click.echo(f"setup: {setup} (engine {engine}); strategy {strategy} over {len(units)} units "
                   f"({', '.join(units)}): it chooses the hybrids as the scores come in")
    else:
        trainings = (2 * baseline_seeds + len(requests) * seeds)
        click.echo(f"setup: {setup} (engine {engine}); {len(requests)} hybrids, {trainings} trainings"
                   f"{', each scored' if recognition else ''}")
    for knobs, d in requests:
        click.echo(f"  bisect/{pair}/{d}.{'+'.join(knobs)}: write hybrid, train {seeds} seed(s)")
    show_requests(engine, plan, site_flags, resources.describe())
    if dry_run:
        click.echo(f"dry run: nothing started; run: {command}")
        return
    watch = None
    if engine == "slurm":
        refusal = sbatch_refusal(sbatch_flags(plan["rqmt"]))
        if refusal:
            raise UserError(f"Slurm refuses the training jobs' requests: {refusal}", "--rqmt/--engine-opts")
        watch = SlurmWatch(setup, node_down_timeout, click.echo)
    said = run_manager(sis, setup, watch.poll if watch else None)
    final = finished_results(setup, pair, confirm_seeds > 0, said, watch.ended.values() if watch else ())
    for line in json.loads(final.read_text())["verdict"]:
        click.echo(line)
    click.echo(f"results: {final}")
