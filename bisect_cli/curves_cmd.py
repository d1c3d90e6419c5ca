"""`config-bisect curves A B [...]`: per-epoch score curves side by side, and from which epoch they part."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import click

from artefacts.curves import Comparison, Curve, compare_curves, curve_of, plot_curves, read_scores, replicate_band
from artefacts.text_table import print_table
from bisect_cli.options import debug_option


def _labels(files: list[str]) -> list[str]:
    """File names; where two are alike (every `learning_rates`), parent folder and name."""
    names = [Path(f).name for f in files]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(f).resolve().parent.name}/{Path(f).name}" for f in files]


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _summary(c: Comparison) -> str:
    band = "no noise band" if c.band is None else f"noise band up to ±{c.band:.3g} ({c.band_source})"
    parted = f"apart from epoch {c.parted_from} on" if c.parted_from is not None else "never stay apart"
    return (f"{c.b} vs {c.a}: {parted}, {band}; best {c.best_b[1]:.4g} (epoch {c.best_b[0]}) vs "
            f"{c.best_a[1]:.4g} (epoch {c.best_a[0]}), best gap {c.best_gap:+.4g}, "
            f"final gap {c.final_gap:+.4g} (epoch {c.final_epoch})")


def _comparison_json(c: Comparison) -> dict:
    return {"a": c.a, "b": c.b, "parted_from": c.parted_from, "band_source": c.band_source, "band": c.band,
            "best_a": {"epoch": c.best_a[0], "value": c.best_a[1]},
            "best_b": {"epoch": c.best_b[0], "value": c.best_b[1]}, "best_gap": c.best_gap,
            "final_epoch": c.final_epoch, "final_gap": c.final_gap, "notes": c.notes,
            "per_epoch": [{"epoch": e, "gap": g, "band": b} for e, g, b in zip(c.epochs, c.gaps, c.bands, strict=True)]}


def _png_path(png: str, key: str, several: bool) -> Path:
    if not several:
        return Path(png)
    path = Path(png)
    return path.with_name(f"{path.stem}.{re.sub(r'[^A-Za-z0-9_.-]+', '_', key)}{path.suffix or '.png'}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--key", "keys", multiple=True, default=["dev_score"], show_default=True,
              help="Score to compare (e.g. dev_error, dev_score_output/output_prob); repeat for several.")
@click.option("--replicate", "replicates", multiple=True, type=click.Path(),
              help="Another run of the first file's config (other seed); repeat. With any, the noise band "
                   "comes from the spread of the first file and its replicates.")
@click.option("--png", type=click.Path(dir_okay=False),
              help="Write a plot of the curves (with several keys: FILE's stem + .KEY.png per key).")
@click.option("--json", "as_json", is_flag=True, help="Print the curves and comparisons as JSON.")
@debug_option
def curves(files: tuple[str, ...], keys: tuple[str, ...], replicates: tuple[str, ...], png: str | None,
           as_json: bool) -> None:
    """Compare learning-rate files or *.train.info.txt score files; the first file is the reference.

    Per key: the scores per epoch, for every further file the epoch from which it stays apart from the
    reference beyond the noise band (lower scores are better), the best and the final gap.
    """
    if len(files) < 2:
        raise click.UsageError("give at least two files")
    paths = [*files, *replicates]
    labels = _labels(paths)
    scores = [read_scores(path) for path in paths]
    output = {}
    for key in keys:
        loaded = [curve_of(s, key, label, path) for s, label, path in zip(scores, labels, paths, strict=True)]
        shown: list[Curve] = loaded[:len(files)]
        band = replicate_band([shown[0], *loaded[len(files):]]) if replicates else None
        comparisons = [compare_curves(shown[0], other, band) for other in shown[1:]]
        if png:
            parted = {c.b: c.parted_from for c in comparisons if c.parted_from is not None}
            plot_curves(loaded, key, _png_path(png, key, len(keys) > 1), parted)
        if as_json:
            output[key] = {"curves": {c.label: {str(e): _number(v) for e, v in sorted(c.values.items())}
                                      for c in loaded},
                           "replicates": labels[len(files):],
                           "comparisons": [_comparison_json(c) for c in comparisons]}
            continue
        epochs = sorted(set().union(*(c.values for c in loaded)))
        print_table(["epoch", *(c.label for c in loaded)],
                    [[str(e), *(f"{c.values[e]:.4g}" if e in c.values else "-" for c in loaded)] for e in epochs],
                    title=f"{key} per epoch" + (f" (replicates of {labels[0]}: {', '.join(labels[len(files):])})"
                                                if replicates else ""))
        for c in comparisons:
            click.echo(_summary(c))
            for note in c.notes:
                click.echo(f"  note: {note}")
    if as_json:
        click.echo(json.dumps(output, indent=1, allow_nan=False))
