"""Independent ground truth for a config pair: train every subset of its units (2^k hybrids x seeds) and fit
main effects and two-way interactions with intervals (`attribution.factorial`).

Run: .venv/bin/python benchmarks/factorial_truth.py ORIG START -o WORKDIR [--seeds 3] [--jobs 2]
     [--epochs E] [--json TRUTH.json]

The hybrids are the ones a strategy trains (`interpolate.units.request_for`: each subset of units at start's
value, written as the knock-in or knock-out hybrid that switches fewer units, proven by round trip), trained
and scored by the project's local runner in WORKDIR (resumable: rerun after an interruption). Every training
has its own seed (`SeedNumbers` with the stream SEED_STREAM: no two cells copy one training, and none is a
training the strategies ask for, so the truth is independent of the runs it checks). Prints the table of effects
and writes the fit as JSON (its culprit set under `culprits`, the seeds of every cell under `cells`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artefacts.text_table import print_table  # noqa: E402
from attribution.factorial import FactorialFit, all_cells, fit_factorial  # noqa: E402
from attribution.strategies import SeedNumbers  # noqa: E402
from bisect_cli.diff_cmd import make_context  # noqa: E402
from bisect_cli.plan_inputs import recognition_setup, strategy_units  # noqa: E402
from common.atomic import write_atomic  # noqa: E402
from common.errors import UserError  # noqa: E402
from runner.settings import RunSettings  # noqa: E402
from runner.strategy_run import LocalEvaluate  # noqa: E402

SEED_STREAM = "factorial-truth"


def effects_table(fit: FactorialFit) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): every term with its estimate, intervals and share of the gap."""
    headers = ["term", "effect", "95 % interval", "Bonferroni interval", "share of gap", "culprit"]
    culprit_sets = set(fit.culprit_sets())
    rows = [[" x ".join(t.knobs), f"{t.estimate:+.2f}", f"[{t.low:+.2f}, {t.high:+.2f}]",
             f"[{t.low_adjusted:+.2f}, {t.high_adjusted:+.2f}]", f"{100 * t.estimate / fit.gap:+.0f}%",
             "yes" if t.knobs in culprit_sets else ""] for t in fit.terms]
    return headers, rows


@click.command()
@click.argument("orig", type=click.Path(exists=True, dir_okay=False))
@click.argument("start", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", "work_dir", required=True, type=click.Path(file_okay=False))
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--jobs", "parallel", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="Train this many epochs instead of num_epochs.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), help="Write the fit here as JSON.")
def main(orig: str, start: str, work_dir: str, seeds: int, parallel: int, epochs: int | None,
         json_file: str | None) -> None:
    """Train all 2^k subsets of the pair's units and print main effects and two-way interactions."""
    started = time.monotonic()
    orig_path, start_path, work = Path(orig).resolve(), Path(start).resolve(), Path(work_dir).resolve()
    env, recognition = recognition_setup(orig_path, start_path, None, None)
    if recognition is None:
        raise UserError("the factorial needs test WERs: only the demo configs are scored without --vocab/--refs")
    context = make_context((), (), 60, None)
    units, _, write_hybrid = strategy_units(orig_path, start_path, work / "hybrids", context)
    names = list(units)
    cells = all_cells(names)
    click.echo(f"{len(names)} units ({', '.join(names)}): {len(cells)} cells x {seeds} seeds = "
               f"{len(cells) * seeds} trainings, {parallel} at a time")
    done = 0

    def progress(result) -> None:
        nonlocal done
        done += 1
        what = f"WER {result.wer:.2f}" if result.wer is not None else result.reason
        click.echo(f"[{done}/{len(cells) * seeds}] {result.label} seed {result.seed}: {what}"
                   f"{' (done before)' if result.reused else ''}")

    settings = RunSettings(orig_path, start_path, work, epochs=epochs, parallel=parallel, recognition=recognition,
                           data_env=env, context=context)
    evaluate = LocalEvaluate(settings, units, write_hybrid, progress, SeedNumbers(SEED_STREAM))
    runs = evaluate([(cell, seeds) for cell in cells])
    fit = fit_factorial(names, {cell: [r.wer for r in cell_runs] for cell, cell_runs in zip(cells, runs, strict=True)})
    trained = [r.train_seconds for r in evaluate.results if r.train_seconds and not r.reused]
    headers, rows = effects_table(fit)
    print_table(headers, rows, title=f"{orig_path.name}: gap {fit.gap:+.2f} (orig {fit.orig_wer:.2f}); seed std "
                                     f"{fit.seed_std:.2f} ({fit.seed_df} df), residual std {fit.residual_std:.2f} "
                                     f"({fit.residual_df} df)")
    if fit.lack_of_fit_p is not None:
        click.echo(f"three-way and higher interactions: lack-of-fit F test p = {fit.lack_of_fit_p:.2g}"
                   f"{' (they matter: the two-way terms average over them)' if fit.lack_of_fit_p < 0.05 else ''}")
    click.echo(f"culprits: {', '.join(sorted(fit.culprits())) or 'none'}; "
               f"{len(trained)} trainings run now ({min(trained, default=0):.0f}-{max(trained, default=0):.0f} s "
               f"each), wall {time.monotonic() - started:.0f} s")
    if json_file:
        payload = {"orig": str(orig_path), "start": str(start_path), "seeds": seeds, "seed_stream": SEED_STREAM,
                   "epochs": epochs,
                   "units": {name: sorted(knobs) for name, knobs in units.items()},
                   "cells": [{"at_start": sorted(cell), "seeds": [r.seed for r in cell_runs],
                              "wers": [r.wer for r in cell_runs]}
                             for cell, cell_runs in zip(cells, runs, strict=True)],
                   **fit.to_json()}
        write_atomic(json_file, json.dumps(payload, indent=1) + "\n")
        click.echo(f"written: {json_file}")


if __name__ == "__main__":
    try:
        main(standalone_mode=True)
    except UserError as exc:
        click.echo(f"factorial_truth: error: {exc}", err=True)
        sys.exit(2)
