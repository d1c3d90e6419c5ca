"""`config-bisect simulate SCENARIO`: compare bisection strategies on a simulated scenario."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from attribution.benchmark import score_strategy
from attribution.scenario import load_scenario
from attribution.strategies import STRATEGIES
from bisect_cli.options import debug_option


@click.command()
@click.argument("scenario_file", type=click.Path())
@click.option("--strategy", type=click.Choice([*STRATEGIES, "all"]), default="all", show_default=True)
@click.option("--trials", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@debug_option
def simulate(scenario_file: str, strategy: str, trials: int, seed: int, as_json: bool) -> None:
    """Success rate, trainings and GPU-hours of each strategy on SCENARIO (JSON)."""
    scenario = load_scenario(scenario_file)
    names = list(STRATEGIES) if strategy == "all" else [strategy]
    scores = [score_strategy(scenario, name, trials, seed) for name in names]
    if as_json:
        click.echo(json.dumps([s.to_json() for s in scores], indent=1))
        return
    table = Table(title=f"{scenario_file}: culprits {', '.join(sorted(scenario.culprits())) or 'none (noise)'}")
    for column in ("strategy", "success", "mean trainings", "p95 trainings", "mean GPU-hours"):
        table.add_column(column)
    for s in scores:
        table.add_row(s.strategy, f"{100 * s.success_rate:.0f}%", f"{s.mean_runs:.1f}", f"{s.p95_runs:.0f}",
                      f"{s.mean_cost:.0f}")
    Console(highlight=False).print(table)
