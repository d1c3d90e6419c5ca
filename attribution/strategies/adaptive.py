"""Adaptive: sequential group splitting that spends seeds only where a decision is still uncertain.

1. orig and start with 3 seeds, more only while the gap is unclear (Bonferroni over the looks): a gap that
   stays within the noise is the answer "noise".
2. Knock-in search. From `base` (start, later start with the culprits found so far switched to orig), halve
   the candidate knobs, switch one half to orig and follow the half that holds more of what is left of the
   gap (the other half's share is inferred), down to one knob. Each question is a sequential test: one seed,
   another only while the answer is unclear -- which half holds more, unless both clearly hold a culprit's
   share, when either will do. The knob is kept when its own knock-in effect is closer to what the path
   promised than to zero, at least 20 % of the gap and significant; otherwise the turn was wrong and the knob is set
   aside. Repeat while what is left of the gap is distinguishable from noise and, with more seeds, at least
   a culprit's share (at most `max_wrong_turns` knobs set aside).
3. Knock-out check. A culprit whose knock-out effect (orig with only it from start) is less than half its
   knock-in effect acts together with a knob still at start's value; that partner is found by the same
   splitting from the hybrid with the culprit (and every unexplained knob) at start's value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from attribution.strategies.common import (
    BASELINE_SEEDS,
    MAX_BASELINE_SEEDS,
    STOP_Z,
    Evaluate,
    Evaluator,
    Finding,
    Hybrid,
)

NAME = "adaptive"
POSTERIOR_STOP = 0.99  # probabilistic bisection stops when one knob holds this much of the posterior
MISFIT_Z = 3.0  # a hybrid this many standard errors from both "holds it" and "does not": several culprits
SPLIT_Z = 1.5  # a split is settled at 1.5 standard errors: a wrong turn is caught by the leaf's test


def split_search(ev: Evaluator, ref: Hybrid, candidates: list[str], total: float, threshold: float,
                 max_seeds: int) -> tuple[str, float]:
    """(knob, its effect as the path estimates it): the knob of `candidates` that holds the effect `total`
    of switching them all from `ref` to orig. Groups are halved (one half measured, the other inferred);
    a last pair is measured knob against knob, so that the leaf has runs of its own."""
    group, effect = candidates, total
    while len(group) > 2:
        half, other = group[: len(group) // 2], group[len(group) // 2:]

        def settled(est: float, se: float, effect: float = effect) -> bool:
            return abs(est - effect / 2) > SPLIT_Z * se or min(est, effect - est) > threshold + SPLIT_Z * se

        e_half = ev.sample_until(ref, ref - frozenset(half), settled, max_seeds)
        group, effect = (half, e_half) if e_half > effect / 2 else (other, effect - e_half)
    if len(group) == 1:
        return group[0], effect
    a, b = (ref - {k} for k in group)
    ev.sample_until(b, a, lambda est, se: abs(est) > SPLIT_Z * se, max_seeds)  # drop of group[0] - of group[1]
    drops = {k: ev.effect(ref, ref - {k}) for k in group}
    knob = max(group, key=drops.__getitem__)
    return knob, drops[knob]


def posterior_search(ev: Evaluator, ref: Hybrid, candidates: list[str], total: float,
                     max_seeds: int) -> tuple[str, float] | None:
    """Probabilistic bisection under "one knob of `candidates` holds `total`": a posterior over the knobs
    from every run so far (Student-t likelihood with the pooled noise's degrees of freedom); the next hybrid
    switches a set of knobs holding about half the probability; stop at POSTERIOR_STOP. None when a hybrid
    lands far from both "holds it" and "does not" (several culprits) or the posterior does not settle."""
    queried: list[frozenset[str]] = []
    for _ in range(2 * len(candidates).bit_length() + 4):
        sigma, df = ev.noise()
        log_post = np.zeros(len(candidates))
        for group in queried:
            hybrid = ref - group
            drop = ev.effect(ref, hybrid)
            scale = max(sigma * np.sqrt(1 / ev.n(hybrid) + 1 / ev.n(ref)), 1e-9)  # no noise: exact answers
            if min(abs(drop), abs(drop - total)) > MISFIT_Z * scale:
                return None
            member = np.array([k in group for k in candidates])
            log_post += stats.t.logpdf((drop - total * member) / scale, df)
        post = np.exp(log_post - log_post.max())
        post /= post.sum()
        order = np.argsort(-post, kind="stable")
        if post[order[0]] >= POSTERIOR_STOP:
            knob = candidates[order[0]]
            leaf = ref - {knob}
            return knob, ev.effect(ref, leaf) if ev.n(leaf) else total
        size = int(np.argmin(np.abs(np.cumsum(post[order]) - 0.5))) + 1
        group = frozenset(candidates[i] for i in order[:size])
        if ev.n(ref - group) >= max_seeds:
            return None
        ev.ensure([ref - group], ev.n(ref - group) + 1)
        if group not in queried:
            queried.append(group)
    return None


def adaptive(knobs: Sequence[str], evaluate: Evaluate, baseline_seeds: int = BASELINE_SEEDS,
             max_baseline_seeds: int = MAX_BASELINE_SEEDS,
             max_seeds: int = 6, max_wrong_turns: int = 2) -> Finding:
    """Culprits (knock-in effect or an interaction >= 20 % of the gap) with seeds spent on unclear answers."""
    ev = Evaluator(knobs, evaluate)
    gap, se, significant = ev.baselines(baseline_seeds, max_baseline_seeds)
    if not significant and abs(gap) <= STOP_Z * se:
        return ev.noise_finding(NAME, gap, se)  # a gap beyond 2 se is searched: only significant knobs are kept
    threshold = ev.threshold()
    found: dict[str, float] = {}
    set_aside: list[str] = []
    notes: list[str] = []

    def search(ref: Hybrid, total: float) -> tuple[str, float] | None:
        """A knob holding a culprit's share of `total` below `ref`, or None (the leaf is set aside)."""
        candidates = [k for k in knobs if k not in found and k not in set_aside and k in ref]
        if not candidates:
            return None
        hit = posterior_search(ev, ref, candidates, total, max_seeds)
        knob, promised = hit or split_search(ev, ref, candidates, total, threshold, max_seeds)
        leaf = ref - {knob}
        ev.ensure([leaf], 1)
        # a split search's leaf must show its promise (a wrong turn does not); the posterior already weighed it
        e_in = ev.effect(ref, leaf) if hit else ev.decide(ref, leaf, promised / 2, max_seeds)
        if e_in >= promised / 2:  # is it a culprit's share (more seeds only near 20 %)?
            e_in = ev.decide(ref, leaf, threshold, max_seeds)
            if e_in >= threshold and e_in > ev.critical() * ev.se(ref, leaf):
                return knob, e_in
        set_aside.append(knob)
        notes.append(f"{knob}: the search ended on a knob whose effect {ev.sign * e_in:+.2f} is not a culprit's; "
                     f"set aside")
        return None

    base = ev.start
    remaining = ev.effect(ev.start, ev.orig)
    while len(set_aside) <= max_wrong_turns:
        hit = search(base, remaining)
        if hit is None:
            continue
        found[hit[0]] = hit[1]
        base = base - {hit[0]}
        ev.ensure([base], 1)
        remaining = ev.effect(base, ev.orig)
        if remaining <= ev.critical() * ev.se(base, ev.orig):
            break  # what is left is not distinguishable from noise
        if ev.decide(base, ev.orig, threshold, max_seeds) < threshold:
            break  # with more seeds, what is left is less than a culprit's share
        remaining = ev.effect(base, ev.orig)
    for knob, e_in in list(found.items()):
        single = frozenset({knob})
        e_out = ev.decide(single, ev.orig, e_in / 2, max_seeds, SPLIT_Z)
        if e_out >= e_in / 2:
            continue
        notes.append(f"{knob}: knock-in {ev.sign * e_in:+.2f} vs knock-out {ev.sign * e_out:+.2f}: it acts "
                     f"together with another knob")
        ref = ev.start - (frozenset(found) - single)  # the knob and every unexplained knob at start's values
        ev.ensure([ref], 1)
        hit = search(ref, ev.effect(ref, single))
        if hit is not None:
            found[hit[0]] = hit[1]
            notes.append(f"{hit[0]}: the partner of {knob} (interaction {ev.sign * hit[1]:+.2f})")
    return Finding(NAME, frozenset(found), ev.runs, {k: ev.sign * e for k, e in found.items()}, notes)
