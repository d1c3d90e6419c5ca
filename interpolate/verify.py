"""Proof by round trip: a hybrid differs from its base in exactly the switched knobs, from its donor in
exactly the others (runtime settings aside)."""

from __future__ import annotations

from interpolate.plan import HybridRequest
from knobs.diff import PairDiff, diff_configs
from knobs.group import NO_EFFECT
from knobs.loader import LoadedConfig
from knobs.rules import RuleTable


def _knob_names(diff: PairDiff) -> set[str]:
    return {k.name for k in diff.knobs} - NO_EFFECT


def _describe(diff: PairDiff, names: set[str]) -> str:
    parts = []
    for name in sorted(names):
        knob = diff.knob(name)
        paths = ", ".join(c.path + (f" (epochs {c.epochs})" if c.epochs else "") for c in knob.changes[:3])
        parts.append(f"{name} [{paths}{', ...' if len(knob.changes) > 3 else ''}]")
    return "; ".join(parts)


def round_trip_problems(hybrid: LoadedConfig, base: LoadedConfig, donor: LoadedConfig, request: HybridRequest,
                        all_knobs: set[str], rules: RuleTable) -> tuple[list[str], set[str], set[str]]:
    """(problems, leaked knobs, knobs still like the base): no problems when the hybrid is exact;
    otherwise one sentence per leaked or missing knob."""
    problems = []
    vs_base = diff_configs(base, hybrid, rules)
    vs_donor = diff_configs(donor, hybrid, rules)
    want = set(request.knobs)
    leaked = _knob_names(vs_base) - want
    missing = want - _knob_names(vs_base)
    kept = _knob_names(vs_donor) - (all_knobs - want - NO_EFFECT)
    if leaked:
        problems.append(f"differs from its base ({request.base_side}) in knobs it should not switch: "
                        + _describe(vs_base, leaked))
    if missing:
        problems.append(f"does not switch {', '.join(sorted(missing))}")
    if kept:
        problems.append(f"still differs from its donor ({request.donor_side}) in switched knobs: "
                        + _describe(vs_donor, kept))
    return problems, leaked, kept | missing
