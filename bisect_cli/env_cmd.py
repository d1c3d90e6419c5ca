"""`config-bisect env LOG_A LOG_B`: how the environments of two RETURNN trainings differ."""

from __future__ import annotations

import json

import click

from artefacts.text_table import print_table
from artefacts.training_log import FACTS, TrainingEnvironment, environment_diff, parse_training_log
from bisect_cli.options import debug_option


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _restart_note(name: str, env: TrainingEnvironment) -> str | None:
    if env.starts == 1:
        return None
    changed = f"; changed on a restart: {', '.join(env.changed_on_restart)}" if env.changed_on_restart else ""
    return f"{name}: {env.starts} starts in one log (facts of the first){changed}"


@click.command()
@click.argument("log_a", type=click.Path())
@click.argument("log_b", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print both environments and the differences as JSON.")
@debug_option
def env(log_a: str, log_b: str, as_json: bool) -> None:
    """Compare RETURNN version and git revision, TensorFlow, Python, host, GPU and its memory, threads,
    cluster queue and start time of two RETURNN training logs (or captured stdouts)."""
    a, b = parse_training_log(log_a), parse_training_log(log_b)
    differences = environment_diff(a, b)
    if as_json:
        click.echo(json.dumps({"a": {"log": log_a, **a.to_json()}, "b": {"log": log_b, **b.to_json()},
                               "differences": [{"fact": f, "a": x, "b": y} for f, x, y in differences]}, indent=1))
        return
    if differences:
        print_table(["fact", "A", "B"], [[f, _cell(x), _cell(y)] for f, x, y in differences],
                    title=f"environment differences: A = {log_a}, B = {log_b}")
    same = [f"{name}={_cell(getattr(a, name))}" for name in FACTS if getattr(a, name) == getattr(b, name)]
    click.echo(f"{len(differences)} of {len(FACTS)} facts differ" + (f"; same: {', '.join(same)}" if same else ""))
    for note in (_restart_note("A", a), _restart_note("B", b)):
        if note:
            click.echo(note)
