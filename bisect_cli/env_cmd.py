"""`config-bisect env LOG_A LOG_B`: how the environments of two RETURNN trainings differ."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from artefacts.training_log import environment_diff, parse_training_log
from bisect_cli.options import debug_option


@click.command()
@click.argument("log_a", type=click.Path())
@click.argument("log_b", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print both environments and the differences as JSON.")
@debug_option
def env(log_a: str, log_b: str, as_json: bool) -> None:
    """Compare RETURNN version, TensorFlow, Python, host, GPU, threads, queue and start time of two logs."""
    a, b = parse_training_log(log_a), parse_training_log(log_b)
    differences = environment_diff(a, b)
    if as_json:
        click.echo(json.dumps({"a": a.to_json(), "b": b.to_json(),
                               "differences": [{"field": f, "a": x, "b": y} for f, x, y in differences]}, indent=1))
        return
    table = Table(title=f"environment: {log_a} vs {log_b}")
    for column in ("", "A", "B"):
        table.add_column(column)
    for field, x in a.to_json().items():
        y = b.to_json()[field]
        mark = "≠ " if x != y else ""
        table.add_row(f"{mark}{field}", str(x if x is not None else "-"), str(y if y is not None else "-"))
    Console(highlight=False).print(table)
    click.echo(f"{len(differences)} of {len(a.to_json())} facts differ" if differences else "same environment")
