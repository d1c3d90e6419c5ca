"""One knob at a time, both directions: knock-in (start with the knob from orig) and knock-out (orig with
the knob from start). Disagreement between the directions flags an interaction."""

from __future__ import annotations

import math
from collections.abc import Sequence

from attribution.strategies.common import MAX_BASELINE_SEEDS, Evaluate, Evaluator, Finding

NAME = "one-at-a-time"


def one_at_a_time(knobs: Sequence[str], evaluate: Evaluate, seeds: int = 3, jobs: int = 1) -> Finding:
    """Every knob alone in both directions with `seeds` seeds each (all at once after the baselines)."""
    ev = Evaluator(knobs, evaluate, jobs)
    gap, se, significant = ev.baselines(seeds, max(seeds, MAX_BASELINE_SEEDS))
    if not significant:
        return ev.noise_finding(NAME, gap, se)
    ev.ensure([h for k in knobs for h in (ev.start - {k}, frozenset({k}))], seeds)
    threshold, critical = ev.threshold(), ev.critical(2 * len(knobs))
    effects, notes, culprits = {}, [], set()
    for k in knobs:
        knock_in, knock_out = ev.start - {k}, frozenset({k})
        e_in, se_in = ev.effect(ev.start, knock_in), ev.se(ev.start, knock_in)
        e_out, se_out = ev.effect(knock_out, ev.orig), ev.se(knock_out, ev.orig)
        effects[k] = ev.sign * (e_in + e_out) / 2
        if any(abs(e) >= threshold and abs(e) > critical * s for e, s in ((e_in, se_in), (e_out, se_out))):
            culprits.add(k)
        if abs(e_in - e_out) > critical * math.hypot(se_in, se_out):
            notes.append(f"{k}: knock-in {ev.sign * e_in:+.2f} vs knock-out {ev.sign * e_out:+.2f}: an interaction")
    return ev.finding(NAME, culprits, {k: e for k, e in effects.items() if math.isfinite(e)}, notes)
