"""`config-bisect report WORKDIR`: write the report of a bisection (a local `run` or a Sisyphus `submit`), also
while its trainings still run (marked partial)."""

from __future__ import annotations

from pathlib import Path

import click

from attribution.report import write_report
from attribution.report_model import HOURS_PER_TRAINING
from bisect_cli.options import debug_option
from bisect_cli.status_cmd import load_progress
from runner.report_inputs import progress_results, report_context, title_of


@click.command()
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Where to write report.md, report.html and the PNGs (default: the work folder of `run`, "
                   "report/ in a Sisyphus setup).")
@click.option("--hours-per-training", type=click.FloatRange(min=0, min_open=True),
              help="GPU-hours of one full-size training, for the cost (as `plan --hours-per-training`; default: the "
                   f"plan's when the run had --plan, else {HOURS_PER_TRAINING:g}).")
@click.option("--pair", help="The pair's name in a Sisyphus setup that bisects several.")
@debug_option
def report(folder: str, out_dir: str | None, hours_per_training: float | None, pair: str | None) -> None:
    """Write report.md and a self-contained report.html for the bisection in FOLDER (a work folder of `run` or a
    setup folder of `submit`), from the trainings finished so far."""
    progress, finished = load_progress(folder, pair)
    out = Path(out_dir) if out_dir else Path(folder) / ("report" if progress.engine == "sisyphus" else "")
    context = report_context(progress, hours_per_training)
    md, html = write_report(out, progress_results(progress, finished), title_of(progress, finished), context)
    click.echo(f"report{' (partial: ' + context.partial + ')' if context.partial else ''}: {md} and {html}")
