"""Print a table: a rich table on a terminal, aligned plain text otherwise (pipes, files, tests)."""

from __future__ import annotations

import sys

import click


def print_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> None:
    """Print `rows` under `headers`; rich on a terminal, else plain columns separated by two spaces."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(highlight=False).print(table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    if title:
        click.echo(title)
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
