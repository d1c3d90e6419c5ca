"""`config-bisect plan ORIG START --strategy NAME`: what a strategy would train first, and what it costs."""

from __future__ import annotations

import click
import numpy as np

from attribution.scenario import parse_scenario
from attribution.simulator import Simulator
from attribution.strategies import STRATEGIES
from bisect_cli.diff_cmd import context_options, make_context
from bisect_cli.environment_options import diff_with_environments, environment_options
from bisect_cli.options import debug_option
from common.errors import UserError
from interpolate.plan import NOT_SWITCHABLE
from knobs import compare
from knobs.pairing import pair_paths
from runner.pair_environments import PairEnvironments


def _describe(hybrid: frozenset[str], knobs: list[str]) -> str:
    if not hybrid:
        return "orig"
    if hybrid == frozenset(knobs):
        return "start"
    from_orig = [k for k in knobs if k not in hybrid]
    if len(from_orig) <= len(hybrid):
        return f"start with {', '.join(from_orig)} from orig (knock-in)"
    return f"orig with {', '.join(sorted(hybrid))} from start (knock-out)"


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="adaptive", show_default=True)
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per hybrid (one-at-a-time) or per baseline (the other strategies).")
@click.option("--cost-per-run", type=click.FloatRange(min=0), default=80.0, show_default=True,
              help="GPU-hours of one training.")
@click.option("--noise", type=click.FloatRange(min=0), default=0.25, show_default=True,
              help="Assumed seed std as a share of the gap, for the expected cost.")
@click.option("--trials", type=click.IntRange(min=1), default=200, show_default=True)
@context_options
@environment_options
@debug_option
def plan(orig: str, start: str, strategy: str, seeds: int, cost_per_run: float, noise: float, trials: int,
         settings: tuple[str, ...], context_files: tuple[str, ...], timeout: float, epochs: int | None,
         orig_env: str | None, start_env: str | None) -> None:
    """The hybrids STRATEGY would train first and the expected trainings and GPU-hours.

    Expected figures come from simulating the knobs of this pair with one culprit (any knob), the gap as
    effect and seed noise of --noise times the gap."""
    pairs = pair_paths(orig, start)
    if len(pairs) != 1:
        raise UserError(f"plan needs one config pair; the folders hold {len(pairs)}: name the files")
    (orig_path, start_path), = pairs
    diff = diff_with_environments(compare(str(orig_path), str(start_path),
                                          make_context(settings, context_files, timeout, epochs)),
                                  PairEnvironments.from_files(orig_env, start_env))
    knobs = [k.name for k in diff.knobs if k.name not in NOT_SWITCHABLE]
    if not knobs:
        raise UserError("the pair differs in no switchable knob: nothing to plan")
    kwargs = {"seeds": seeds} if strategy in ("one-at-a-time", "ddmin", "greedy") else {}
    runs, rounds = [], []
    for trial in range(trials):
        culprit = knobs[trial % len(knobs)]
        scenario = parse_scenario({"knobs": knobs, "orig_wer": 10.0, "effects": {culprit: 1.0}, "seed_std": noise})
        simulator = Simulator(scenario, np.random.default_rng([trial]))
        STRATEGIES[strategy](knobs, simulator, **kwargs)
        runs.append(simulator.runs)
        rounds.append(simulator.batches)
        if trial == 0:
            first = list(dict.fromkeys(h for h, _ in simulator.log))[:8]
    click.echo(f"{strategy} on {len(knobs)} knobs ({', '.join(knobs)}):")
    click.echo("first hybrids to train:")
    for hybrid in first:
        click.echo(f"  {_describe(hybrid, knobs)}")
    mean, p95 = float(np.mean(runs)), float(np.percentile(runs, 95))
    click.echo(f"expected trainings: {mean:.1f} (95th percentile {p95:.0f}); GPU-hours: {mean * cost_per_run:.0f} "
               f"(95th percentile {p95 * cost_per_run:.0f}) at {cost_per_run:g} per training")
    click.echo(f"expected rounds (batches that wait for the one before; wall time in trainings): "
               f"{float(np.mean(rounds)):.1f}")
