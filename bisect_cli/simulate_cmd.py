"""`config-bisect simulate SCENARIO`: compare bisection strategies on a simulated scenario."""

from __future__ import annotations

import json

import click

from artefacts.text_table import print_table
from attribution.benchmark import score_strategy, score_table
from attribution.scenario import load_scenario
from attribution.strategies import STRATEGIES
from bisect_cli.options import debug_option


@click.command()
@click.argument("scenario_file", type=click.Path())
@click.option("--strategy", type=click.Choice([*STRATEGIES, "all"]), default="all", show_default=True)
@click.option("--trials", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated noise.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trainings that can run at once (GPUs): a round asks for at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per strategy.")
@debug_option
def simulate(scenario_file: str, strategy: str, trials: int, seed: int, jobs: int, as_json: bool) -> None:
    """Success rate, trainings, GPU-hours and rounds of each strategy on SCENARIO (JSON).

    Success: the strategy's culprit set equals the scenario's (a knob whose effect, or an interaction it is
    part of, is at least 15 % of the gap; the empty set when no knob is) and the pairs it names as acting
    together are the scenario's culprit interactions. A round is a batch of at most --jobs trainings that
    waits for the one before."""
    scenario = load_scenario(scenario_file)
    names = list(STRATEGIES) if strategy == "all" else [strategy]
    scores = [score_strategy(scenario, name, trials, seed, jobs) for name in names]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in scores], indent=1))
        return
    culprits = ", ".join(sorted(scenario.culprits())) or "none (noise)"
    headers, rows = score_table(scores)
    print_table(headers, rows, title=f"{scenario_file}: culprits {culprits}; {trials} trials, seed {seed}, jobs {jobs}")
