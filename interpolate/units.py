"""What a strategy switches: *units*, a knob or knobs that RETURNN couples and that are switched together.

A strategy names a hybrid by the units that have start's value (the empty set is orig, every unit is start);
`request_for` turns that into the `HybridRequest` with the fewer switched knobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from interpolate.plan import HybridRequest

Units = dict[str, frozenset[str]]  # unit name ("lr+pretrain") -> its knobs


def unit_name(knobs: Iterable[str]) -> str:
    return "+".join(sorted(knobs))


def merge_units(groups: Iterable[frozenset[str]]) -> Units:
    """Knob groups that share a knob become one unit (e.g. lr+pretrain and pretrain+model: one unit)."""
    merged: list[set[str]] = []
    for group in groups:
        touching = [m for m in merged if m & group]
        union = set(group).union(*touching)
        merged = [m for m in merged if not m & group] + [union]
    return {unit_name(m): frozenset(m) for m in merged}


def request_for(hybrid: frozenset[str], units: Mapping[str, frozenset[str]]) -> HybridRequest | None:
    """The hybrid with the units in `hybrid` at start's value: start with the others from orig (knock-in) or
    orig with these from start (knock-out), whichever switches fewer units; None for orig and start."""
    unknown = hybrid - set(units)
    if unknown:
        raise ValueError(f"not a unit: {', '.join(sorted(unknown))}")
    at_start = [u for u in units if u in hybrid]
    from_orig = [u for u in units if u not in hybrid]
    if not at_start or not from_orig:
        return None
    if len(from_orig) <= len(at_start):
        return HybridRequest(frozenset().union(*(units[u] for u in from_orig)), "knock-in")
    return HybridRequest(frozenset().union(*(units[u] for u in at_start)), "knock-out")
