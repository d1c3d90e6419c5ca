"""`config-bisect hybrids ORIG START -o DIR`: write hybrid configs, each proven by round trip."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bisect_cli.diff_cmd import context_options, make_context
from bisect_cli.environment_options import environment_options
from bisect_cli.options import debug_option
from bisect_cli.plan_inputs import directions_of, requests_from
from common.errors import UserError
from interpolate.build import build_hybrids, build_label
from interpolate.hybrids import make_hybrids, write_manifest
from interpolate.plan import DIRECTIONS, HybridRequest
from knobs.environment import EnvironmentKnob
from knobs.pairing import pair_paths
from runner.pair_environments import PairEnvironments, environment_label


@click.command()
@click.argument("orig")
@click.argument("start")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the hybrids and manifest.json.")
@click.option("--knobs", "knob_list", help="Comma-separated knobs to switch together (default: each knob alone).")
@click.option("--direction", type=click.Choice([*DIRECTIONS, "both"]), default="both", show_default=True,
              help="knock-in: start with orig's knobs; knock-out: orig with start's knobs.")
@click.option("--no-build", is_flag=True, help="Skip constructing each hybrid's TF graph.")
@click.option("--native-units", is_flag=True,
              help="Build native LSTM units as they are (default: TF stand-in units, as native ops may not compile).")
@click.option("--rules", "rules_file", type=click.Path(),
              help="Extra knob category rules (JSON), tried before the shipped table.")
@context_options
@environment_options
@debug_option
def hybrids(orig: str, start: str, out_dir: str, knob_list: str | None, direction: str, no_build: bool,
            native_units: bool, rules_file: str | None, settings: tuple[str, ...], context_files: tuple[str, ...],
            timeout: float, epochs: int | None, orig_env: str | None, start_env: str | None) -> None:
    """Write hybrids of ORIG and START that switch exactly the chosen knobs.

    With --orig-env/--start-env, environment knobs are switched too: such a hybrid is a config (or the base
    config itself) plus the environment it trains in (column `environment`, key `environment` in the manifest)."""
    directions = directions_of(direction)
    context = make_context(settings, context_files, timeout, epochs)
    pairs = pair_paths(orig, start)
    requests = requests_from(knob_list, directions)
    environment_knobs, _ = PairEnvironments.from_files(orig_env, start_env).knobs()
    for orig_path, start_path in pairs:  # a folder pair: one output folder per config name
        out = Path(out_dir) if len(pairs) == 1 else Path(out_dir) / orig_path.stem
        write_pair(orig_path, start_path, out, requests, directions, context, rules_file, not no_build,
                   environment_knobs, native_units)


def write_pair(orig_path: Path, start_path: Path, out: Path, requests: list[HybridRequest] | None,
               directions: list[str], context, rules_file: str | None, build: bool,
               environment_knobs: list[EnvironmentKnob] = (), native_units: bool = False) -> None:
    diff, results = make_hybrids(str(orig_path), str(start_path), out, requests, directions, context, rules_file,
                                 environment_knobs)
    if build:
        build_hybrids(results, context, native_units)
    manifest = write_manifest(out, diff, results)
    table = Table(title=f"hybrids in {out} (manifest: {manifest.name})")
    columns = ["hybrid", "status", "build", "file / reason"] + (["environment"] if environment_knobs else [])
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in results:
        build = build_label(r.build)
        detail = Path(r.path).name if r.path else ""
        if r.reason:
            detail = f"{detail}  {r.reason}".strip()
        base = "start" if r.direction == "knock-in" else "orig"
        table.add_row(r.id, r.status, escape(build), escape(detail),
                      *([environment_label(r.environment, base)] if environment_knobs else []))
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
    if requests is not None and any(r.status != "ok" for r in results):
        failed = next(r for r in results if r.status != "ok")
        raise UserError(f"hybrid {failed.id} {failed.status}: {failed.reason}")
