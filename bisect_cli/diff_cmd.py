"""`config-bisect diff ORIG START` (also the default command): list the knob diffs."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from bisect_cli.options import debug_option
from knobs import LoadContext, compare
from knobs.loader import DEFAULT_TIMEOUT, parse_setting
from knobs.pairing import pair_paths
from knobs.render import render


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("--epochs", type=click.IntRange(min=1), help="Compare epochs 1..N (default: num_epochs).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Set a config value before loading (Python literal), e.g. --set task=train.")
@click.option("--context", "context_files", multiple=True, type=click.Path(),
              help="A config executed first (e.g. the generated prefix of an i6 setup).")
@click.option("--knobs", "rules_file", type=click.Path(), help="Extra category rules (JSON), tried first.")
@click.option("--timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds allowed for loading one config.")
@click.option("-v", "--verbose", is_flag=True, help="List every change under its knob.")
@debug_option
def diff(orig: str, start: str, as_json: bool, epochs: int | None, settings: tuple[str, ...],
         context_files: tuple[str, ...], rules_file: str | None, timeout: float, verbose: bool) -> None:
    """List how ORIG and START differ, grouped into knobs (files, or folders of same-named files)."""
    context = LoadContext(context_files=context_files, settings=tuple(parse_setting(s) for s in settings),
                          epochs=epochs, timeout=timeout)
    pairs = pair_paths(orig, start)
    diffs = [compare(o, s, context, rules_file) for o, s in pairs]
    if as_json:
        payload = diffs[0].to_json() if len(diffs) == 1 else [d.to_json() for d in diffs]
        click.echo(json.dumps(payload, indent=1, default=str))
        return
    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty(), width=None if sys.stdout.isatty() else 160)
    for i, d in enumerate(diffs):
        if i:
            console.print()
        render(d, console, verbose=verbose)
