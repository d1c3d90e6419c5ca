"""`config-bisect curves A B [...]`: per-epoch score curves side by side, and where they part."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from artefacts.curves import compare_curves, plot_curves, read_curve
from bisect_cli.options import debug_option


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--key", default="dev_score", show_default=True, help="Score to compare (e.g. dev_error).")
@click.option("--png", type=click.Path(dir_okay=False), help="Write a plot of all curves.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@debug_option
def curves(files: tuple[str, ...], key: str, png: str | None, as_json: bool) -> None:
    """Compare learning-rate files or *.train.info.txt score files; the first file is the reference."""
    if len(files) < 2:
        raise click.UsageError("give at least two files")
    loaded = [read_curve(f, key) for f in files]
    if len({c.label for c in loaded}) < len(loaded):  # same file names (learning_rates): name them by folder
        for curve, f in zip(loaded, files, strict=True):
            curve.label = f"{Path(f).resolve().parent.name}/{curve.label}"
    comparisons = [compare_curves(loaded[0], other) for other in loaded[1:]]
    if png:
        plot_curves(loaded, key, png)
    if as_json:
        click.echo(json.dumps([{"a": loaded[0].label, "b": c_label.label, "band": c.band, "parted_from": c.parted_from,
                                "best_gap": c.best_gap, "final_gap": c.final_gap}
                               for c_label, c in zip(loaded[1:], comparisons, strict=True)], indent=1))
        return
    epochs = sorted(set().union(*(c.values for c in loaded)))
    table = Table(title=f"{key} per epoch")
    table.add_column("epoch")
    for curve in loaded:
        table.add_column(curve.label, overflow="fold")
    for epoch in epochs:
        table.add_row(str(epoch), *(f"{c.values[epoch]:.4g}" if epoch in c.values else "-" for c in loaded))
    console = Console(highlight=False)
    console.print(table)
    for other, c in zip(loaded[1:], comparisons, strict=True):
        parted = f"apart from epoch {c.parted_from} on" if c.parted_from else "never stay apart"
        console.print(f"{other.label} vs {loaded[0].label}: {parted} (noise band ±{c.band:.3g}); "
                      f"best gap {c.best_gap:+.4g}, final gap {c.final_gap:+.4g}", markup=False)
