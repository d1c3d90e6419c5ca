"""Adaptive's verdicts: after the stages (`attribution.strategies.adaptive.Search`), the pairs among the active
knobs (strong effect heredity, de-aliasing runs), follow-up runs where a verdict is close to a boundary, and the
Finding: culprits, pairs acting together, what is aliased or undecided, and the whole gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from attribution.scenario import CULPRIT_SHARE
from attribution.statistics import runs_to_decide
from attribution.strategies.common import Finding
from attribution.strategies.linear_model import Factor, Fit, Term, fit, select_pairs

if TYPE_CHECKING:
    from attribution.strategies.adaptive import Search

NAME = "adaptive"
FLAG_Z = 2.0  # a part whose average effect is beyond this many standard errors may be in a pair
PARTNER_Z = 1.5  # ... and so may a knob beyond this with the same sign, as the partner of such a knob
CLOSE_LOCATES = 1  # knobs the check of the culprits may locate (each: the verdicts once more)
ROUND_TARGET = 4  # rounds a bisection aims at: follow-ups that would go beyond are merged into fewer, larger ones
CONFIRM_Z = 1.5  # a verdict this close (standard errors) to a boundary gets follow-up runs ...
FOLLOW_UPS = 2  # ... in every round left before ROUND_TARGET, at least this many rounds' worth of runs, ...
FOLLOW_SEEDS = 1  # ... each with this many seeds of its knock-in and knock-out hybrids ...
REFERENCE_SEEDS = 2  # ... and this many of start and of orig (the references of those contrasts)
VERDICT_LEVEL = 0.02  # family-wise level of the verdicts
REST_Z = 2.0  # the knobs without a significant effect count towards the gap when together beyond this


@dataclass
class Verdict:
    """One look at the runs: the model, its pairs, the culprits and what is still unclear."""

    model: Fit
    pairs: list[Term]
    aliased: list[list[Term]]
    culprits: set[str]
    unclear: list[Term]
    gap: tuple[float, float]  # the gap the significant terms (and the rest, when it is significant) explain
    real: bool  # the gap (or a term) is distinguishable from noise


def explained_gap(model: Fit, significant: list[Term]) -> tuple[float, float]:
    """(estimate, standard error) of the gap as the significant terms explain it, plus what every other term
    explains together when that is itself significant (many small effects); under effect sparsity this is
    far less noisy than the sum of every term."""
    rest = [t for t in model.terms if t not in significant]
    rest_est, rest_se = model.estimate(model.vector(dict.fromkeys(rest, 1.0)))
    counted = significant + (rest if abs(rest_est) > REST_Z * rest_se else [])
    return model.estimate(model.vector(dict.fromkeys(counted, 1.0))) if counted else (0.0, 0.0)


def judge(search: Search, singles: list[Factor], candidates: list[Term]) -> Verdict:
    ev = search.ev
    pairs, aliased = select_pairs(ev, search.mains(), candidates)
    model = fit(ev, search.mains() + pairs)
    if search.lenth and not ev.noise()[1]:  # no replicates yet: the residual holds the alias chains
        model = replace(model, sigma=search.lenth[0], df=search.lenth[1])
    q = model.quantile(len(search.examined) + len(candidates), VERDICT_LEVEL)  # Bonferroni over the terms examined
    terms = [(f,) for f in singles] + pairs
    stand_ins = {group[0] for group in aliased}  # a pair standing in for others it cannot be told from
    estimates = {t: model.term(t) for t in terms}
    significant = [t for t, (est, se) in estimates.items() if abs(est) > q * se]
    gap, gap_se = explained_gap(model, significant)
    full, full_se = model.gap()
    threshold = CULPRIT_SHARE * abs(gap)
    culprits: set[str] = set()
    unclear: list[Term] = []
    for term, (est, se) in estimates.items():
        if not math.isfinite(est):
            unclear.append(term)
            continue
        size = (abs(est) - threshold) / se if se else math.inf
        significance = abs(est) / se - q if se else math.inf
        if size >= 0 and significance > 0 and term not in stand_ins:
            culprits |= {k for f in term for k in f}
        promising = size >= 0 and significance <= 0 and abs(est) > FLAG_Z * se  # an effect, not yet significant
        if promising or (size >= 0 and abs(significance) < CONFIRM_Z) or (significance > 0 and abs(size) < CONFIRM_Z):
            unclear.append(term)
    real = bool(significant) or abs(full) > model.quantile() * full_se
    return Verdict(model, pairs, aliased, culprits, unclear, (gap, gap_se) if significant else (full, full_se), real)


def heredity(search: Search, singles: list[Factor]) -> list[Factor]:
    """The knobs whose average effect (main effects only, over every run) is beyond FLAG_Z standard errors:
    strong effect heredity (Hamada & Wu 1992) makes pairs among them the candidates; without it a pair on a
    flagged pair's alias chain plus main effects that cancel its average effects fits the runs as well. A
    second look takes the noise from the fit with the pairs the first look found (a pair's own contrast
    inflates the noise of a fit without it)."""
    ev = search.ev
    if search.bisected:  # the knobs a bisection singled out (its check saw them act together or not): all pairs
        return singles
    located = [f for f in singles if f in search.located]  # a knob located by the check of a design's culprits
    average = fit(ev, search.mains())
    flagged = search.flagged(average, singles, FLAG_Z)
    pairs, _ = select_pairs(ev, search.mains(), search.pair_candidates(flagged))
    if pairs:
        cleaner = fit(ev, search.mains() + pairs)
        if cleaner.df and average.df and cleaner.sigma < average.sigma:
            flagged = search.flagged(replace(average, sigma=cleaner.sigma, df=cleaner.df), singles, FLAG_Z)
    return [f for f in singles if f in set(flagged) | set(search.flagged(average, singles, FLAG_Z)) | set(located)]


def candidate_pairs(search: Search, singles: list[Factor]) -> list[Term]:
    """The pairs the verdicts consider: among the knobs heredity flags, and each of them with a knob whose
    average effect has its sign and lies beyond PARTNER_Z standard errors (weak heredity, Chipman 1996): a pure
    pair shows half its effect on each partner, with the pair's sign, and one half may fall short of FLAG_Z by
    chance. Pairs of a flagged knob with one of the other sign are left out: in heavy noise such pairs were
    selected by chance and took part of a culprit's effect."""
    flagged = heredity(search, singles)  # after a bisection: every knob, so every pair
    average = fit(search.ev, search.mains())
    sign = {f: math.copysign(1.0, average.term((f,))[0]) for f in singles}
    partners = set(search.flagged(average, singles, PARTNER_Z))
    kept = [f for f in singles if f in flagged or f in partners]
    return [(a, b) for a, b in search.pair_candidates(kept) if (a in flagged and b in flagged) or (
        (a in flagged or b in flagged) and sign[a] == sign[b])]


def unreplicated_stands(search: Search, verdict: Verdict, rounds: int) -> bool:
    """Whether a clear verdict from runs without replicates stands without a round of them (the references of
    the follow-up contrasts, and the first pure error): only where that round would be the last before `rounds`
    or beyond (many knobs per GPU, as 32 knobs on 16: the stages took the calendar); only when the gap is real
    (without replicates a gap's standard error is poorly known: pure pairs among 16 knobs on 8 GPUs were called
    noise, 1000 trials 86 -> 84 %); and only when no pair among its culprits shows an effect beyond FLAG_Z
    standard errors (with the design's noise) where the model has none: without replicates a pure pair's half
    effects on its partners pass for two main effects (in every round, not only late, this lost 5 of 300
    pure-pair trials at 8 knobs on 16 GPUs; 2 with the pair check). The check of the culprits (`Search.close`)
    rides on that round: with many GPUs it is skipped with it (masking at 32 knobs, 1000 trials: 99.0 ->
    99.1 %)."""
    if search.ev.rounds + 1 < rounds or not verdict.real:  # no verdict of noise from an unreplicated design
        return False
    culprits = [f for f in search.active if len(f) == 1 and f <= verdict.culprits]
    for pair in search.pair_candidates(culprits):
        if pair in verdict.pairs:
            continue
        model = fit(search.ev, search.mains() + verdict.pairs + [pair])
        est, se = replace(model, sigma=verdict.model.sigma, df=verdict.model.df).term(pair)
        if not math.isfinite(est) or abs(est) > FLAG_Z * se:
            return False
    return True


def resolve(search: Search, rounds: int = ROUND_TARGET) -> Verdict:
    """Pairs among the active knobs, de-aliasing and follow-up runs: the last verdict. Follow-ups go on while
    a verdict is unclear and rounds are left before `rounds` (a design that took few rounds, as with few knobs
    and many GPUs, spends them where a verdict is still open); fewer than FOLLOW_UPS left are merged into
    fewer, larger ones."""
    ev = search.ev
    singles = [f for f in search.active if len(f) == 1]
    allowed = max(1, rounds - ev.rounds)  # follow-up rounds left within the target ...
    scale = math.ceil(FOLLOW_UPS / allowed)  # ... each with the seeds of the rounds it saves
    for follow_up in range(allowed + 1):
        candidates = candidate_pairs(search, singles)
        verdict = judge(search, singles, candidates)
        follow = [h for group in verdict.aliased for t in group  # de-aliasing: each pair switched in both ways
                  for h in (ev.orig.union(*t), ev.start.difference(*t))]
        follow += [h for t in verdict.unclear
                   for h in (ev.start.difference(*t), ev.orig.union(*t))] * (FOLLOW_SEEDS * scale)
        if verdict.unclear or not (ev.noise()[1] or unreplicated_stands(search, verdict, rounds)):
            follow += [ev.start, ev.orig] * (REFERENCE_SEEDS * scale)
        if not follow or follow_up == allowed:
            break
        check = search.closure_cells(verdict.culprits) if follow_up == 0 else []
        if len(check) <= -len(follow) % ev.jobs:  # the check of the culprits (`Search.close`) where a round has room
            follow += check
        ev.more(follow)
    return verdict


def verdicts(search: Search) -> Finding:
    """Resolve; then check that the culprits explain the gap both ways (`Search.close`): a knob located there
    joins the culprits' pair candidates, and the verdicts are resolved again."""
    verdict = resolve(search)
    for _ in range(CLOSE_LOCATES):
        knob = search.close(verdict.culprits)
        if knob is None:
            break
        search.single_out(knob)
        verdict = resolve(search, search.ev.rounds + FOLLOW_UPS)  # the target is behind: every follow-up
    return finding(search, verdict)


def no_culprit_note(gap: float, effects: dict[str, float], undecided: set[str]) -> str:
    """Why a real gap has no culprit: knobs still undecided (an effect the runs could not yet call significant
    at the verdicts' family-wise level), or no knob or pair holding a culprit's share (many small effects)."""
    if undecided:
        named = ", ".join(f"{k} {effects[k]:+.2f}" if k in effects else k for k in sorted(
            undecided, key=lambda k: -abs(effects.get(k, 0.0))))
        return (f"gap {gap:+.2f} is real but no knob or pair is significant at the family-wise {VERDICT_LEVEL:.0%} "
                f"level yet; undecided: {named} (more seeds of their hybrids would decide)")
    largest = sorted(effects.items(), key=lambda kv: -abs(kv[1]))[:4]
    return (f"gap {gap:+.2f} is real but no knob or pair holds {CULPRIT_SHARE:.0%} of it"
            + (f"; the largest: {', '.join(f'{k} {v:+.2f}' for k, v in largest)}" if largest else ""))


def finding(search: Search, verdict: Verdict) -> Finding:
    ev, model = search.ev, verdict.model
    q95 = model.quantile()
    g, g_se = verdict.gap  # the gap the verdict measured shares against (the part its significant terms explain)
    full, full_se = model.gap()  # the whole gap the model predicts: what the Finding reports
    culprits = verdict.culprits
    notes = list(search.notes)
    effects, intervals = {}, {}
    for f in search.active:
        est, se = model.term((f,))
        if len(f) == 1 and math.isfinite(est):
            (k,) = f
            effects[k], intervals[k] = est, (est - q95 * se, est + q95 * se)
    interactions = []
    for a, b in verdict.pairs:
        est, se = model.term((a, b))
        if math.isfinite(est) and set(a | b) <= culprits and abs(est) >= CULPRIT_SHARE * abs(g):
            interactions.append({"knobs": sorted(a | b), "effect": est, "low": est - q95 * se,
                                 "high": est + q95 * se})
    if not verdict.real:
        more = runs_to_decide(g, model.sigma) if min(abs(g), model.sigma) > 1e-9 else 0
        notes.insert(0, f"gap {g:+.2f} (standard error {g_se:.2f}) is not distinguishable from noise"
                        + (f"; about {more} runs of orig and of start would decide a gap of this size" if more else ""))
    alias_names = [["*".join(sorted(k for f in t for k in f)) for t in group] for group in verdict.aliased]
    undecided = {k for t in verdict.unclear for f in t for k in f} | {
        k for group in verdict.aliased for t in group for f in t for k in f if k not in culprits}
    if verdict.real and not culprits:
        notes.insert(0, no_culprit_note(g, effects, undecided))
    notes.append(f"{len(search.partition)} factors after the stages; effects by least squares over {ev.runs} "
                 f"trainings (residual degrees of freedom {model.df})")
    return ev.finding(NAME, culprits, effects, notes, intervals=intervals, interactions=interactions,
                      undecided=sorted(undecided), aliased=alias_names, gap=(full, full - q95 * full_se,
                                                                             full + q95 * full_se))
