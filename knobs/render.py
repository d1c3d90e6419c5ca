"""Human view of a knob diff: a rich table plus "equivalent", "unresolved" and "warnings" sections."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from knobs.diff import PairDiff, show


def render(diff: PairDiff, console: Console, verbose: bool = False) -> None:
    console.print(f"[bold]{diff.orig}[/bold] → [bold]{diff.start}[/bold]"
                  + (f"  ({diff.epochs} epochs compared)" if diff.epochs else ""))
    if not diff.knobs:
        console.print("No differences that change training.")
    table = Table(show_lines=False)
    for column in ("knob", "category", "orig → start", "changes", "switchable"):
        table.add_column(column, overflow="fold")
    for knob in diff.knobs:
        switchable = "yes" if knob.switchable else f"no (coupled with {', '.join(knob.coupled_with)})"
        name = knob.name if knob.affects_results else f"{knob.name} (no effect on results)"
        table.add_row(name, knob.category, escape(knob.summary), str(len(knob.changes)), switchable)
    if diff.knobs:
        console.print(table)
    if verbose:
        for knob in diff.knobs:
            console.print(f"\n[bold]{knob.name}[/bold]")
            for c in knob.changes:
                epochs = f" [epochs {c.epochs}]" if c.epochs else ""
                note = f"  ({c.note})" if c.note else ""
                shown_orig, shown_start = c.shown(80)
                console.print(f"  {c.path}{epochs}: {shown_orig} → {shown_start}{note}", markup=False)
    if diff.equivalent:
        console.print("\n[bold]Equivalent[/bold] (spelled differently, same training):")
        for eq in diff.equivalent:
            console.print(f"  {eq['what']}: {eq['orig']}  ≡  {eq['start']}  — {eq['why']}", markup=False)
    if diff.helpers:
        console.print("\n[bold]Helper values[/bold] (RETURNN never reads them; their effect is in the values "
                      "computed from them):")
        for c in diff.helpers:
            console.print(f"  {c.path}: {show(c.orig, 80)} → {show(c.start, 80)}", markup=False)
    if diff.unresolved:
        console.print("\n[bold]Unresolved[/bold] (statements that failed while loading; compared by source):")
        for u in diff.unresolved:
            name = u["name"] or u["source"].splitlines()[0][:60]
            console.print(f"  {u['side']}: {name} (line {u['line']}): {u['error']}", markup=False)
    if diff.warnings:
        console.print("\n[bold]Warnings[/bold] (loading, reproducibility, fairness of the comparison):")
        for w in diff.warnings:
            side = f" ({w.side})" if w.side else ""
            console.print(f"  [yellow]{w.code}[/yellow]{escape(side)}: {escape(w.message)}")
            console.print(f"      → {escape(w.advice)}")
