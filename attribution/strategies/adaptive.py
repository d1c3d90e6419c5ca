"""Adaptive: sequential group splitting that spends seeds only where a decision is still uncertain, and a
fractional-factorial screen when the seed noise is large against the gap.

1. orig and start with 3 seeds, more (up to 12) only while the gap is unclear (Bonferroni over the looks): a
   gap that stays within the noise is the answer "noise".
2. Noise check. A gap below LOW_SNR pooled seed deviations (their lower bound at NOISE_QUANTILE, so that few
   degrees of freedom rarely trigger it) is screened: one seed of every row of the two-level fractional
   factorial (screening.design), main effects by least squares over every run so far, a culprit's effect
   >= 20 % of the gap and significant (Bonferroni over the knobs); a knob near that boundary gets more seeds of
   its knock-in and knock-out hybrids. No culprit: "noise". The same screen takes over after a wrong turn of
   step 3 when the gap, with the noise now measured from more runs, is below LOW_SNR deviations.
3. Knock-in search. From `base` (start, later start with the culprits found so far switched to orig), a
   probabilistic bisection over the candidate knobs (falling back to halving: switch one half to orig and
   follow the half that holds more of what is left of the gap) down to one knob. Each question is a
   sequential test: one seed, another only while the answer is unclear. The knob is kept when its own
   knock-in effect is closer to what the path promised than to zero, at least 20 % of the gap and significant
   (seeds added while that is unclear); otherwise the turn was wrong and the knob is set aside. Repeat while
   what is left of the gap (one seed of `base`, up to two more while it is beyond one standard error but
   not significant) is distinguishable from noise and, with more seeds, at least a culprit's share
   (at most `max_wrong_turns` knobs set aside).
4. Knock-out check. A culprit whose knock-out effect (orig with only it from start) is clearly below half its
   knock-in effect acts together with a knob still at start's value (seeds are added until a sequential
   probability ratio test accepts "additive" or that is clear; undecided counts as additive); that partner
   is found by the same splitting from the hybrid with the culprit (and every unexplained knob) at start's
   value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from attribution.strategies import screening
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
POSTERIOR_STOP = 0.95  # probabilistic bisection stops when one knob holds this much of the posterior
MISFIT_Z = 3.0  # a hybrid this many standard errors from both "holds it" and "does not": several culprits
LEFT_SEEDS = 1  # what is left of the gap after a culprit: its hybrid with at least this many seeds, ...
GREY_Z = 1.0  # ... and more while it is beyond this many standard errors but not significant, ...
GREY_SEEDS = 2  # ... at most this many
SPRT_LLR = float(np.log(9))  # sequential probability ratio test between two effects, 10 % error each way
LOW_SNR = 2.5  # a gap below this many seed standard deviations is screened (every run informs every knob) ...
NOISE_QUANTILE = 0.8  # ... the deviation's lower bound at this confidence: few degrees of freedom rarely screen
BASELINE_FUTILITY_Z = 0.25  # a gap within a quarter standard error of zero gets no more baseline seeds
CONFIRM_Z = 1.0  # a screened knob this close (standard errors) to its verdict's boundary gets more runs
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


def left_over(ev: Evaluator, base: Hybrid, max_seeds: int) -> float:
    """effect(base, orig): what is left of the gap, with LEFT_SEEDS seeds of `base` at least and up to
    GREY_SEEDS more (to the side with fewer runs) while it lies between GREY_Z standard errors and the critical
    value: a second culprit seen through few degrees of freedom, or noise?"""
    ev.ensure([base], min(LEFT_SEEDS, max_seeds))
    for _ in range(GREY_SEEDS):
        est, se = ev.effect(base, ev.orig), ev.se(base, ev.orig)
        side = base if ev.n(base) <= ev.n(ev.orig) else ev.orig
        if not GREY_Z * se < est <= ev.critical() * se or ev.n(side) >= max_seeds:
            break
        ev.ensure([side], ev.n(side) + 1)
    return ev.effect(base, ev.orig)


def main_effects(ev: Evaluator) -> tuple[np.ndarray, np.ndarray, int]:
    """(effects, standard errors, residual degrees of freedom): least squares over every run so far of
    WER = mu + sum of the effects of the knobs with start's value (sign-normalised: positive widens the gap)."""
    xs, ys = [], []
    for hybrid, wers in ev.wers.items():
        xs += [[1.0, *(float(k in hybrid) for k in ev.knobs)]] * len(wers)
        ys += wers
    x, y = np.array(xs), np.array(ys)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    df = len(y) - rank
    resid = y - x @ coef
    cov = float(resid @ resid) / max(df, 1) * np.linalg.pinv(x.T @ x)
    return ev.sign * coef[1:], np.sqrt(np.diag(cov)[1:]), df


def screen(ev: Evaluator, threshold: float, max_seeds: int) -> tuple[dict[str, float], list[str]]:
    """Culprits with their effects when the noise is large against the gap: one seed of every row of the
    two-level fractional factorial (start is its first row), effects by least squares over every run; a
    culprit's effect is >= `threshold` and significant (Bonferroni over the knobs). A knob within CONFIRM_Z
    standard errors of that boundary gets one more seed of its knock-in and knock-out hybrids, until clear
    or `max_seeds`."""
    matrix, size = screening.design(ev.knobs)
    rows = [frozenset(k for k, level in zip(ev.knobs, row, strict=True) if level == 1)
            for row in matrix[:, 1:len(ev.knobs) + 1]]
    ev.ensure(rows, 1)
    while True:
        effects, se, df = main_effects(ev)
        boundary = np.maximum(threshold, stats.t.ppf(1 - 0.025 / len(ev.knobs), df) * se)
        unclear = [(ev.start - {k}, frozenset({k})) for k, e, s, b in zip(ev.knobs, effects, se, boundary, strict=True)
                   if abs(e - b) < CONFIRM_Z * s]
        more = [h for pair in unclear for h in pair if ev.n(h) < max_seeds]
        if not more:
            break
        for hybrid in more:
            ev.ensure([hybrid], ev.n(hybrid) + 1)
    culprits = {k: float(e) for k, e, b in zip(ev.knobs, effects, boundary, strict=True) if e >= b}
    notes = [f"screened with a {size}-run fractional factorial, effects by least squares over {ev.runs} runs"]
    return culprits, notes


def adaptive(knobs: Sequence[str], evaluate: Evaluate, baseline_seeds: int = BASELINE_SEEDS,
             max_baseline_seeds: int = MAX_BASELINE_SEEDS + 4,
             max_seeds: int = 6, max_wrong_turns: int = 2) -> Finding:
    """Culprits (knock-in effect or an interaction >= 20 % of the gap) with seeds spent on unclear answers."""
    ev = Evaluator(knobs, evaluate)
    gap, se, significant = ev.baselines(baseline_seeds, max_baseline_seeds, BASELINE_FUTILITY_Z)
    if not significant and abs(gap) <= STOP_Z * se:
        return ev.noise_finding(NAME, gap, se)  # a gap beyond 2 se is searched: only significant knobs are kept
    threshold = ev.threshold()

    def screened(reason: str) -> Finding:
        """The answer of `screen` (noise when it finds no culprit), every run so far included."""
        culprits, notes = screen(ev, threshold, max_seeds)
        notes.insert(0, reason)
        if not culprits:
            finding = ev.noise_finding(NAME, gap, se)
            finding.notes[:0] = notes
            return finding
        return Finding(NAME, frozenset(culprits), ev.runs, {k: ev.sign * e for k, e in culprits.items()}, notes)

    def noisy(quantile: float) -> bool:
        """The gap is below LOW_SNR seed deviations (the pooled deviation's lower bound at `quantile`)."""
        sigma, df = ev.noise()
        return abs(gap) < LOW_SNR * sigma * math.sqrt(df / stats.chi2.ppf(quantile, df))

    if noisy(NOISE_QUANTILE):
        return screened(f"gap {gap:+.2f} is small against the seed noise")
    found: dict[str, float] = {}
    found_at: dict[str, Hybrid] = {}  # the hybrid each culprit was knocked into
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
        if e_in >= promised / 2:  # is it a significant culprit's share (more seeds only while unclear)?
            e_in = ev.sample_until(ref, leaf, lambda est, se: est < threshold - STOP_Z * se
                                   or (est > threshold + STOP_Z * se and est > ev.critical() * se), max_seeds)
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
            if noisy(0.5):
                return screened(f"a wrong turn, and the gap {gap:+.2f} is small against the seed noise")
            continue
        found[hit[0]], found_at[hit[0]] = hit[1], base
        base = base - {hit[0]}
        remaining = left_over(ev, base, max_seeds)
        if remaining <= ev.critical() * ev.se(base, ev.orig):
            break  # what is left is not distinguishable from noise
        remaining = ev.decide(base, ev.orig, threshold, max_seeds)
        if remaining < threshold or remaining <= ev.critical() * ev.se(base, ev.orig):
            break  # with more seeds, what is left is less than a culprit's share or not significant
    for knob, e_in in list(found.items()):
        single = frozenset({knob})
        se_in = ev.se(found_at[knob], found_at[knob] - single) / 2  # of the boundary e_in / 2

        def settled(est: float, se: float, e_in: float = e_in, se_in: float = se_in) -> bool:
            """Additive (SPRT against e_out = 0), or clearly below half the knock-in effect."""
            se2 = se**2 + se_in**2
            return (est - e_in / 2) * e_in > SPRT_LLR * se2 or est < e_in / 2 - SPLIT_Z * math.sqrt(se2)

        e_out = ev.sample_until(single, ev.orig, settled, max_seeds)
        if e_out >= e_in / 2 - SPLIT_Z * math.hypot(ev.se(single, ev.orig), se_in):
            continue  # an interaction needs evidence: undecided after max_seeds counts as additive
        notes.append(f"{knob}: knock-in {ev.sign * e_in:+.2f} vs knock-out {ev.sign * e_out:+.2f}: it acts "
                     f"together with another knob")
        ref = ev.start - (frozenset(found) - single)  # the knob and every unexplained knob at start's values
        ev.ensure([ref], 1)
        hit = search(ref, ev.effect(ref, single))
        if hit is not None:
            found[hit[0]], found_at[hit[0]] = hit[1], ref
            notes.append(f"{hit[0]}: the partner of {knob} (interaction {ev.sign * hit[1]:+.2f})")
    return Finding(NAME, frozenset(found), ev.runs, {k: ev.sign * e for k, e in found.items()}, notes)
