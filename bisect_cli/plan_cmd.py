"""`config-bisect plan ORIG START --gpus K --hours-per-training H`: what each strategy would cost on this pair."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from artefacts.text_table import print_table
from attribution.benchmark import run_trials, summarize
from attribution.families import planning_cases
from attribution.plan_table import PlanRow, PlanTable
from attribution.strategies import DEFAULT_STRATEGY, STRATEGIES
from bisect_cli.diff_cmd import context_options, make_context
from bisect_cli.environment_options import environment_options
from bisect_cli.options import debug_option
from bisect_cli.plan_inputs import proven_units
from common.atomic import write_atomic
from common.errors import UserError
from knobs.pairing import pair_paths
from runner.pair_environments import PairEnvironments

GOOD_ENOUGH = 0.05  # strategies within this much success of the best one count as equally sure


def gpu_counts(gpus: int) -> list[int]:
    """The user's GPUs and a few values around them: half, double."""
    return sorted({max(1, gpus // 2), gpus, 2 * gpus})


def decision_table(units: list[str], gpus: int, hours: float, noise: float, trials: int, seed: int
                   ) -> list[PlanRow]:
    """Every strategy at each of `gpu_counts(gpus)`: the planning cases (families.planning_cases) simulated on
    `units`, `trials` per case; a round lasts one training (`hours`), a training costs `hours` GPU-hours."""
    cases = planning_cases(units, noise, hours)
    rows = []
    for count in gpu_counts(gpus):
        for name in STRATEGIES:
            trials_all = [t for case in cases for t in run_trials(case, name, trials, seed, count)]
            score = summarize(name, trials_all, count)
            rows.append(PlanRow(name, count, score.success_rate, score.mean_runs, score.p95_runs,
                                score.mean_runs * hours, score.p95_runs * hours, score.mean_rounds, score.p95_rounds,
                                score.mean_rounds * hours / 24, score.p95_rounds * hours / 24))
    return rows


def recommend(rows: list[PlanRow], gpus: int) -> tuple[PlanRow, str]:
    """At the user's GPUs: among the strategies within GOOD_ENOUGH of the best success, the one with the fewest
    calendar days (then GPU-hours); the reason as one sentence."""
    mine = [r for r in rows if r.gpus == gpus]
    best = max(r.success_rate for r in mine)
    sure = [r for r in mine if r.success_rate >= best - GOOD_ENOUGH]
    pick = min(sure, key=lambda r: (round(r.mean_days, 1), r.mean_gpu_hours, r.strategy != DEFAULT_STRATEGY))
    pick.recommended = True
    why = [f"{pick.strategy} is right in {pick.success_rate:.0%} of the simulated cases (best: {best:.0%}) and "
           f"takes {pick.mean_days:.1f} days ({pick.mean_rounds:.1f} rounds) and {pick.mean_gpu_hours:.0f} GPU-hours "
           f"on {gpus} GPUs"]
    unsure = [r for r in mine if r not in sure]
    if unsure:
        why.append(f"{', '.join(r.strategy for r in unsure)} {'is' if len(unsure) == 1 else 'are'} less often right")
    faster = [r for r in sure if r.mean_days < pick.mean_days - 0.05]
    cheaper = min(sure, key=lambda r: r.mean_gpu_hours)
    if faster:
        why.append(f"{faster[0].strategy} is faster but needs more GPU-hours")
    if cheaper is not pick:
        why.append(f"{cheaper.strategy} needs fewer GPU-hours ({cheaper.mean_gpu_hours:.0f}) but "
                   f"{cheaper.mean_days:.1f} days")
    more = [r for r in rows if r.strategy == pick.strategy and r.gpus > gpus]
    if more and more[0].mean_days < pick.mean_days - 0.05:
        why.append(f"with {more[0].gpus} GPUs it would take {more[0].mean_days:.1f} days")
    return pick, "; ".join(why)


def pair_units(orig: str, start: str, settings: tuple[str, ...], context_files: tuple[str, ...], timeout: float,
               epochs: int | None, rules_file: str | None, orig_env: str | None, start_env: str | None) -> list[str]:
    """The units `run --strategy` switches on this pair (hybrids written to a scratch folder, then dropped)."""
    pairs = pair_paths(orig, start)
    if len(pairs) != 1:
        raise UserError(f"plan needs one config pair; the folders hold {len(pairs)}: name the files")
    (orig_path, start_path), = pairs
    environment_knobs, _ = PairEnvironments.from_files(orig_env, start_env).knobs(compare_hardware=False)
    with contextlib.redirect_stdout(sys.stderr):  # lines about knobs left out must not spoil --json
        units = proven_units(orig_path, start_path, make_context(settings, context_files, timeout, epochs), rules_file,
                             environment_knobs)
    return list(units)


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("--gpus", type=click.IntRange(min=1), required=True,
              help="Trainings that can run at once (the table also shows half and twice as many).")
@click.option("--hours-per-training", "hours", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Wall-clock hours of one training on one GPU (also its GPU-hours).")
@click.option("--noise", type=click.FloatRange(min=0), default=0.25, show_default=True,
              help="Seed standard deviation of the WER as a share of the gap.")
@click.option("--trials", type=click.IntRange(min=1), default=40, show_default=True,
              help="Simulated bisections per case, strategy and GPU count.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated noise.")
@click.option("--rules", "rules_file", type=click.Path(), help="Extra knob category rules (JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print the table and the recommendation as JSON.")
@click.option("-o", "--output", "out_file", type=click.Path(dir_okay=False),
              help="Also save the table (the JSON of --json) to this file, for `run`/`submit --plan`.")
@context_options
@environment_options
@debug_option
def plan(orig: str, start: str, gpus: int, hours: float, noise: float, trials: int, seed: int,
         rules_file: str | None, as_json: bool, out_file: str | None, settings: tuple[str, ...],
         context_files: tuple[str, ...], timeout: float, epochs: int | None, orig_env: str | None,
         start_env: str | None) -> None:
    """Decision table: each strategy's trainings, GPU-hours, rounds and calendar days on this pair's units.

    The units are what `run --strategy` switches (each knob with the knobs it can only move with; with
    --orig-env/--start-env the environment too). Each strategy is simulated on them with the options `run`
    passes (--gpus as --jobs): the gap held by one unit, by two (3:1) and by a pure pair, seed noise --noise x
    the gap. A round is a batch of trainings that waits for the one before: it lasts one training."""
    units = pair_units(orig, start, settings, context_files, timeout, epochs, rules_file, orig_env, start_env)
    rows = decision_table(units, gpus, hours, noise, trials, seed)
    _, why = recommend(rows, gpus)  # marks the recommended row
    table = PlanTable(orig, start, units, gpus, hours, noise, trials, seed,
                      [c.name for c in planning_cases(units, noise)], rows, why)
    if out_file:
        write_atomic(out_file, json.dumps(table.to_json(), indent=1) + "\n")
    if as_json:
        click.echo(json.dumps(table.to_json(), indent=1))
    else:
        _print_table(table)
    if out_file:
        click.echo(f"saved: {out_file} (give it to run or submit as --plan)", err=as_json)


def _print_table(table: PlanTable) -> None:
    rows, units, pick = table.rows, table.units, table.recommended_row
    headers = ["strategy", "GPUs", "success", "trainings (p95)", "GPU-hours (p95)", "rounds (p95)", "days (p95)", ""]
    cells = [[r.strategy, str(r.gpus), *r.figures(), "<- recommended" if r.recommended else ""] for r in rows]
    print_table(headers, cells, title=f"{len(units)} units ({', '.join(units)}); {table.hours_per_training:g} h per "
                                      f"training, seed noise {table.noise:g} x the gap, {table.trials_per_case} trials "
                                      f"per case")
    click.echo(f"recommended: {pick.strategy} on {pick.gpus} GPUs: {table.why}")
