"""The `environments` section of results.json: per side the environment file, what its probe found, what its
trainings' logs state and what the user's original training log states; warnings when a training ran under
other facts than its environment promised; and plain sentences when the original gap came from trainings
whose environment the bisection did not reproduce. Pure functions over plain data."""

from __future__ import annotations

import json
from typing import Any

from runner.environment import FIELDS, SIDES

PROMISED = ("returnn_version", "returnn_git", "tensorflow", "python_version")  # what a probe can promise
REPRODUCED = (*PROMISED, "pytorch", "gpu")  # what decides whether the bisection ran as the original did
DEFAULT_NAME = "this tool's Python"


def differing(a: dict[str, Any], b: dict[str, Any], facts: tuple[str, ...]) -> list[str]:
    """The facts both state and that differ."""
    return [f for f in facts if a.get(f) is not None and b.get(f) is not None and a[f] != b[f]]


def _values(facts: dict[str, Any], names: list[str]) -> str:
    return ", ".join(f"{name} {facts[name]}" for name in names)


def describe_spec(spec: dict[str, Any] | None, pair: dict[str, Any]) -> str:
    """Which side's environment a spec is ("orig's (FILE)"), or which fields it takes from which side."""
    if spec is None:
        return DEFAULT_NAME
    for side in SIDES:
        if spec == pair[side]["spec"]:
            return f"{side}'s ({pair[side]['file'] or DEFAULT_NAME})"
    mixed = [f"{name} from {side}" for name in FIELDS for side in SIDES
             if pair["orig"]["spec"][name] != pair["start"]["spec"][name] and spec[name] == pair[side]["spec"][name]]
    return "mixed: " + ", ".join(mixed)


def run_record(label: str, seed: int, spec: dict[str, Any] | None, pair: dict[str, Any],
               promised: dict[str, Any] | None, logged: dict[str, Any] | None) -> dict[str, Any]:
    """One training for the section: its environment, what that promised (its probe), what its log states."""
    recorded = {k: v for k, v in (logged or {}).items() if k in REPRODUCED or k == "python"}
    return {"label": label, "seed": seed, "environment": describe_spec(spec, pair), "promised": promised,
            "recorded": recorded or None}


def promise_warnings(runs: list[dict[str, Any]]) -> list[str]:
    """Runs whose log states other facts than the probe of their environment promised.
    A run: {"label", "seed", "environment" (its description), "promised", "recorded"}."""
    warnings = []
    for run in runs:
        if not run.get("recorded") or not run.get("promised"):
            continue
        names = differing(run["recorded"], run["promised"], PROMISED)
        if names:
            warnings.append(f"{run['label']} seed {run['seed']} ran under {_values(run['recorded'], names)} (its log), "
                            f"but its environment ({run['environment']}) promised {_values(run['promised'], names)}")
    return warnings


def original_sentences(trained: dict[str, dict | None], original: dict[str, dict | None],
                       environment_knobs: list[str]) -> list[str]:
    """Compare the user's original trainings (their logs) with the environments the bisection trained in.
    `trained`/`original`: side -> facts (None where unknown)."""
    lines = []
    for side in SIDES:
        theirs, ours = original.get(side), trained.get(side)
        if not theirs or not ours:
            continue
        names = differing(theirs, ours, REPRODUCED)
        if names:
            lines.append(f"{side}'s original training ({theirs.get('log')}) ran under {_values(theirs, names)}; the "
                         f"bisection trained {side} under {_values(ours, names)}: the bisection did not reproduce "
                         f"that environment, so its WERs need not match the original ones")
        else:
            lines.append(f"{side}'s original training ran in the environment the bisection reproduced "
                         f"({_values(ours, [n for n in PROMISED if ours.get(n)])})")
    if original.get("orig") and original.get("start"):
        theirs_orig, theirs_start = original["orig"], original["start"]
        names = differing(theirs_orig, theirs_start, REPRODUCED)
        if names and not environment_knobs:
            lines.append(f"the original trainings differ in {', '.join(names)} (orig: {_values(theirs_orig, names)}; "
                         f"start: {_values(theirs_start, names)}), but the bisection trained both in one "
                         f"environment: part of the original gap may come from the environment, which this bisection "
                         f"did not test (give --orig-env/--start-env)")
        elif names:
            lines.append(f"the original trainings differ in {', '.join(names)}; the bisection switched it as the "
                         f"knob{'s' if len(environment_knobs) > 1 else ''} {', '.join(environment_knobs)}")
    return lines


def first_recorded(runs: list[dict[str, Any]], label: str) -> dict | None:
    return next((r["recorded"] for r in runs if r["label"] == label and r.get("recorded")), None)


def environments_section(pair: dict[str, Any], knobs: list[dict[str, Any]], runs: list[dict[str, Any]],
                         original: dict[str, dict | None]) -> dict[str, Any]:
    """results.json's `environments`: `pair` from `PairEnvironments.to_json()`, `knobs` [{"name", "fields",
    "summary"}], `runs` as for `promise_warnings`, `original` side -> facts of --orig-log/--start-log."""
    trained = {side: first_recorded(runs, side) or (pair[side]["probe"] or None) for side in SIDES}
    sides = {side: {**pair[side], "trained": first_recorded(runs, side), "original_log": original.get(side)}
             for side in SIDES}
    return {"sides": sides, "knobs": knobs, "runs": runs, "warnings": promise_warnings(runs),
            "original": original_sentences(trained, original, [k["name"] for k in knobs])}


def spec_key(spec: dict[str, Any] | None) -> str:
    return json.dumps(spec, sort_keys=True)


def section_from_report(report: dict[str, Any], runs: list[Any]) -> dict[str, Any]:
    """The section from a bisection's environment report (`PairEnvironments.report`: "pair", "knobs",
    "original", "promised" [[spec, probed facts], ...]) and its finished trainings (`JobResult`s: label, seed,
    environment_spec, environment)."""
    promised = {spec_key(spec): facts for spec, facts in report["promised"]}
    records = [run_record(run.label, run.seed, run.environment_spec, report["pair"],
                          promised.get(spec_key(run.environment_spec)), run.environment) for run in runs]
    return environments_section(report["pair"], report["knobs"], records, report["original"])
