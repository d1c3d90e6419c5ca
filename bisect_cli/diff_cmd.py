"""`config-bisect diff ORIG START` (also the default command): list the knob diffs."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from bisect_cli.environment_options import diff_with_environments, environment_options
from bisect_cli.options import debug_option
from knobs import LoadContext, compare
from knobs.loader import DEFAULT_TIMEOUT, parse_setting
from knobs.pairing import pair_paths
from knobs.render import render
from runner.pair_environments import PairEnvironments


def context_options(command):
    """Options that say how configs are loaded (shared by every command that loads configs)."""
    for decorator in reversed([
        click.option("--epochs", type=click.IntRange(min=1), help="Compare epochs 1..N (default: num_epochs)."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Set a config value before loading (Python literal), e.g. --set task=train."),
        click.option("--context", "context_files", multiple=True, type=click.Path(),
                     help="A config executed first (e.g. the generated prefix of an i6 setup)."),
        click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
                     help="Seconds allowed for loading one config."),
    ]):
        command = decorator(command)
    return command


def make_context(settings: tuple[str, ...], context_files: tuple[str, ...], timeout: float,
                 epochs: int | None) -> LoadContext:
    return LoadContext(context_files=context_files, settings=tuple(parse_setting(s) for s in settings),
                       epochs=epochs, timeout=timeout)


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="List every change under its knob.")
@click.option("--knobs", "--rules", "rules_file", type=click.Path(),
              help="Extra knob category rules (JSON), tried before the shipped table.")
@context_options
@environment_options
@debug_option
def diff(orig: str, start: str, as_json: bool, verbose: bool, settings: tuple[str, ...],
         context_files: tuple[str, ...], timeout: float, epochs: int | None, rules_file: str | None,
         orig_env: str | None, start_env: str | None) -> None:
    """List how ORIG and START differ, grouped into knobs (files, or folders of same-named files).

    With --orig-env/--start-env, both environments are probed and their differences are knobs too."""
    context = make_context(settings, context_files, timeout, epochs)
    pairs = pair_paths(orig, start)
    environments = PairEnvironments.from_files(orig_env, start_env)
    diffs = [diff_with_environments(compare(o, s, context, rules_file), environments) for o, s in pairs]
    if as_json:
        payload = diffs[0].to_json() if len(diffs) == 1 else [d.to_json() for d in diffs]
        click.echo(json.dumps(payload, indent=1, default=str))
        return
    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)
    for i, d in enumerate(diffs):
        if i:
            console.print()
        render(d, console, verbose=verbose)
