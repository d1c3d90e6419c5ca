"""Environment knobs: how the two sides' environments differ, as knobs that hybrids switch like any other.

Pure functions over plain data: each side's environment spec (`python`, `returnn_root`, `env`, `engine_rqmt`)
and its probed facts (RETURNN version and git revision, TensorFlow, Python and numpy versions). The differences
fall into facets, each switched by the spec fields that cause it:

- `returnn-version`: RETURNN version or revision (switched by `returnn_root`; by `python` too when the
  RETURNN of one side is the one installed in a different Python);
- `tensorflow-version`: TensorFlow, Python or numpy version (switched by `python`);
- `hardware`: `engine_rqmt` (what a cluster engine allocates; ignored by the local runner);
- `env-vars`: `env`.

Facets that share a field cannot be switched apart. One knob `environment` (category `environment`) switches
everything that differs, unless the differing facets can be switched separately: then one knob per facet.
A knock-in hybrid of an environment knob is start's config trained in start's environment with that knob's
fields from orig's (for `environment`: start's config in orig's environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from knobs.diff import Change, Knob, PairDiff, show

CATEGORY = "environment"
ENVIRONMENT = "environment"
FACETS = ("returnn-version", "tensorflow-version", "hardware", "env-vars")
KNOB_NAMES = frozenset((ENVIRONMENT, *FACETS))
_FACT_FACET = {"returnn_version": "returnn-version", "returnn_git": "returnn-version",
               "tensorflow": "tensorflow-version", "python_version": "tensorflow-version",
               "numpy": "tensorflow-version"}
_FIELD_FACET = {"engine_rqmt": "hardware", "env": "env-vars"}


@dataclass
class EnvironmentKnob(Knob):
    """A knob switched by environment fields instead of config values."""

    fields: list[str] = field(default_factory=list)  # spec fields it takes from the donor side


@dataclass(frozen=True)
class SideEnvironment:
    """One side's environment as plain data: its spec fields, its probed facts and where it came from."""

    spec: dict[str, Any]
    facts: dict[str, Any]
    source: str | None = None


def _facet_fields(orig: SideEnvironment, start: SideEnvironment) -> dict[str, set[str]]:
    same_python = orig.spec["python"] == start.spec["python"]
    both_roots = bool(orig.spec.get("returnn_root")) and bool(start.spec.get("returnn_root"))
    returnn = {"returnn_root"} if both_roots or same_python else {"returnn_root", "python"}
    return {"returnn-version": returnn, "tensorflow-version": {"python"}, "hardware": {"engine_rqmt"},
            "env-vars": {"env"}}


def _groups(facets: list[str], fields: dict[str, set[str]]) -> list[list[str]]:
    """Facets joined when they share a spec field (they cannot be switched apart)."""
    groups: list[list[str]] = []
    for facet in facets:
        touching = [g for g in groups if any(fields[f] & fields[facet] for f in g)]
        merged = [f for g in touching for f in g] + [facet]
        groups = [g for g in groups if g not in touching] + [merged]
    return groups


def _summary(changes: list[Change]) -> str:
    facts = [c for c in changes if c.parts[1] == "facts"] or changes
    return "; ".join(f"{c.parts[-1]}: {show(c.orig, 30)} → {show(c.start, 30)}" for c in facts[:4])


def environment_knobs(orig: SideEnvironment, start: SideEnvironment, compare_hardware: bool = True
                      ) -> tuple[list[EnvironmentKnob], list[dict]]:
    """(knobs, equivalent notes): the knobs for what differs; a note where the specs differ but the probed facts
    do not (e.g. two venvs with the same versions), which trains alike and so is no knob."""
    changes: dict[str, list[Change]] = {facet: [] for facet in FACETS}
    for fact, facet in _FACT_FACET.items():
        if orig.facts.get(fact) != start.facts.get(fact):
            changes[facet].append(Change(f"environment.facts.{fact}", orig.facts.get(fact), start.facts.get(fact),
                                         category=CATEGORY, parts=["environment", "facts", fact]))
    for name, facet in _FIELD_FACET.items():
        if (name != "engine_rqmt" or compare_hardware) and orig.spec.get(name) != start.spec.get(name):
            changes[facet].append(Change(f"environment.{name}", orig.spec.get(name), start.spec.get(name),
                                         category=CATEGORY, parts=["environment", name]))
    fields = _facet_fields(orig, start)
    differing = [facet for facet in FACETS if changes[facet]]
    for facet in differing:  # the spec fields behind a differing fact are changes of that knob too
        for name in sorted(fields[facet] - set(_FIELD_FACET)):
            if orig.spec.get(name) != start.spec.get(name):
                changes[facet].append(Change(f"environment.{name}", orig.spec.get(name), start.spec.get(name),
                                             category=CATEGORY, parts=["environment", name]))
    groups = _groups(differing, fields)
    knobs = []
    for group in groups:
        name = group[0] if len(groups) > 1 and len(group) == 1 else ENVIRONMENT
        items = list({c.path: c for facet in group for c in changes[facet]}.values())  # python: once per knob
        knobs.append(EnvironmentKnob(name=name, category=CATEGORY, changes=items, summary=_summary(items),
                                     fields=sorted(set().union(*(fields[f] for f in group)))))
    equivalent = []
    spec_differs = [n for n in ("python", "returnn_root") if orig.spec.get(n) != start.spec.get(n)]
    covered = {c.parts[1] for k in knobs for c in k.changes}
    if [n for n in spec_differs if n not in covered]:
        equivalent.append({"what": "environment", "orig": ", ".join(f"{n}={orig.spec.get(n)}" for n in spec_differs),
                           "start": ", ".join(f"{n}={start.spec.get(n)}" for n in spec_differs),
                           "why": "same Python, numpy, TensorFlow and RETURNN versions and revision (probed)"})
    return knobs, equivalent


def with_environment_knobs(diff: PairDiff, knobs: list[EnvironmentKnob], equivalent: list[dict] = ()) -> PairDiff:
    """The diff with the environment knobs after the config knobs (the diff itself is not changed)."""
    kept = [k for k in diff.knobs if not is_environment_knob(k)]
    return replace(diff, knobs=kept + list(knobs), equivalent=list(diff.equivalent) + list(equivalent))


def is_environment_knob(knob: Knob) -> bool:
    return knob.category == CATEGORY


def environment_fields(diff: PairDiff) -> dict[str, list[str]]:
    """Environment knob name -> the spec fields it switches."""
    return {k.name: list(getattr(k, "fields", [])) for k in diff.knobs if is_environment_knob(k)}


def config_only(diff: PairDiff) -> PairDiff:
    """The diff without environment knobs (what a hybrid config is proven against)."""
    return replace(diff, knobs=[k for k in diff.knobs if not is_environment_knob(k)])


def switched_sides(knobs: frozenset[str] | set[str], direction: str, fields: dict[str, list[str]]) -> dict[str, str]:
    """Per spec field, the side whose environment a hybrid uses: the base side's (start for knock-in, orig for
    knock-out), except the fields of the switched environment knobs, which come from the donor side."""
    base, donor = ("start", "orig") if direction == "knock-in" else ("orig", "start")
    switched = {f for name in knobs if name in fields for f in fields[name]}
    return {name: donor if name in switched else base for name in ("python", "returnn_root", "env", "engine_rqmt")}
