"""Options shared by the commands that train or compare: each side's environment file (`--orig-env`,
`--start-env`) and, for `run`/`submit`, the user's original training logs (`--orig-log`, `--start-log`)."""

from __future__ import annotations

import click

from artefacts.training_log import parse_training_log
from knobs.diff import PairDiff
from knobs.environment import with_environment_knobs
from runner.environment_facts import section_from_report
from runner.pair_environments import PairEnvironments


def _side_options(kind: str, orig_help: str, start_help: str):
    """`--orig-KIND FILE` and `--start-KIND FILE` (parameters `orig_KIND`, `start_KIND`) as one decorator."""
    options = [click.option(f"--{side}-{kind}", f"{side}_{kind}", type=click.Path(dir_okay=False), help=text)
               for side, text in (("orig", orig_help), ("start", start_help))]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


environment_options = _side_options(
    "env", "Environment file (JSON or TOML: python, returnn_root, env, engine_rqmt) orig trains in; default: this "
           "tool's Python and RETURNN.", "Environment file start trains in (see --orig-env).")
original_log_options = _side_options(
    "log", "The log (or stdout) of orig's original training: its environment is compared with the one the "
           "bisection trains in.", "The log of start's original training (see --orig-log).")


def original_logs(orig_log: str | None, start_log: str | None) -> dict[str, dict | None]:
    """side -> the environment facts of the user's original training log (read now: a bad log is refused before
    anything trains)."""
    return {side: ({**parse_training_log(path).to_json(), "log": path} if path else None)
            for side, path in (("orig", orig_log), ("start", start_log))}


def diff_with_environments(diff: PairDiff, environments: PairEnvironments, compare_hardware: bool = True) -> PairDiff:
    knobs, equivalent = environments.knobs(compare_hardware)
    return with_environment_knobs(diff, knobs, equivalent) if environments.active else diff


def environments_payload(environments: PairEnvironments, runs: list, original: dict[str, dict | None],
                         compare_hardware: bool = False) -> dict | None:
    """results.json's `environments` (None when no environment file and no original log was given)."""
    if not environments.active and not any(original.values()):
        return None
    report = environments.report(original, [run.environment_spec for run in runs], compare_hardware)
    return section_from_report(report, runs)


def local_run_notes(environments: PairEnvironments) -> list[str]:
    """What `run` (one machine) does not use of the environments."""
    return [f"note: {environments.environments[side].name}: engine_rqmt selects hardware for `submit`; `run` trains "
            f"on this machine and ignores it (no hardware knob)"
            for side in ("orig", "start") if environments.environments[side].engine_rqmt]
