"""Delta debugging (Zeller's ddmin) for a 1-minimal knob set whose switch from start to orig closes the gap."""

from __future__ import annotations

from collections.abc import Sequence

from attribution.strategies.common import BASELINE_SEEDS, MAX_BASELINE_SEEDS, Evaluate, Evaluator, Finding

NAME = "ddmin"


def closes(ev: Evaluator, to_orig: frozenset[str], max_seeds: int) -> bool:
    """Noise-aware: start with `to_orig` switched to orig leaves less than 20 % of the gap (seeds are added
    while the answer is within two standard errors of that boundary)."""
    threshold = ev.threshold()
    return ev.decide(ev.start - to_orig, ev.orig, threshold, max_seeds) < threshold


def ddmin(knobs: Sequence[str], evaluate: Evaluate, seeds: int = BASELINE_SEEDS, max_seeds: int = 4,
          jobs: int = 1) -> Finding:
    """ddmin over the knobs with the `closes` test: `seeds` for orig and start (more while the gap is
    unclear), up to `max_seeds` per tested hybrid. With `jobs` > 1 the first seed of every subset (then of
    every complement) of a level is asked for in one round, as in parallel delta debugging."""
    ev = Evaluator(knobs, evaluate, jobs)
    gap, se, significant = ev.baselines(seeds, max(seeds, MAX_BASELINE_SEEDS))
    if not significant:
        return ev.noise_finding(NAME, gap, se)
    current, n = list(knobs), 2
    while len(current) >= 2:
        chunks = [current[i * len(current) // n:(i + 1) * len(current) // n] for i in range(n)]
        if jobs > 1:
            ev.ensure([ev.start - frozenset(c) for c in chunks], 1)
        reduced = next((c for c in chunks if closes(ev, frozenset(c), max_seeds)), None)
        if reduced is not None:
            current, n = reduced, 2
            continue
        if n > 2:  # complements (for n == 2 they are the chunks themselves)
            if jobs > 1:
                ev.ensure([ev.start - (frozenset(current) - frozenset(c)) for c in chunks], 1)
            complement = next((c for c in ([k for k in current if k not in chunk] for chunk in chunks)
                               if closes(ev, frozenset(c), max_seeds)), None)
            if complement is not None:
                current, n = complement, max(n - 1, 2)
                continue
        if n >= len(current):
            break
        n = min(len(current), 2 * n)
    return ev.finding(NAME, current, {k: ev.sign * ev.effect(ev.start, ev.start - {k})
                                      for k in current if ev.n(ev.start - {k})})
