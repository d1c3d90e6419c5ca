"""Adaptive: a batched design for rounds of at most `jobs` trainings (one call of the callback each).

The researcher's budget is calendar time: a round of trainings that run at once and wait for the one before.
So each round asks for as much as is informative at once, and the design adapts between rounds.

1. First stage. With 8 GPUs or more (MANY_GPUS factors fit in GROUP_ROUNDS rounds) there are no baselines:
   the first stage is a two-level fold-over design over all knobs, cut into as many groups as about two rounds
   hold (every knob alone when that fits). Orig and start are two of its rows, and every run informs every
   group and the gap: the hidden replication of factorial designs. With fewer GPUs, orig and start get 3
   seeds first (up to 2 more while the gap is unclear): a clear gap is bisected (2), an unclear or small one
   goes to the design over all knobs.
2. Stages (group screening). A stage cuts every active group into parts and runs a resolution IV fold-over
   design over them (designs.foldover: the odd-weight columns of a Sylvester-Hadamard matrix, so no main
   effect is aliased with a two-factor interaction: Box & Hunter 1961; a pure pair still shows half its
   effect on each partner's average effect); a last stage of up to 5 single knobs whose full factorial fits a
   round is that full factorial (no pair aliased with another). Seeds per row are planned so that the
   largest effect of the groups it cuts stands PLAN_Z standard errors from zero within one round. A part
   stays active when its average effect (or a pair it is in, chosen by forward selection: linear_model) is
   beyond ACTIVE_Z standard errors and can hold a culprit's share; unclear parts are kept, and a cut group
   none of whose parts shows anything keeps its strongest part (heredity). An unreplicated design has no
   pure error: its noise comes from the contrasts no factor uses (the pairs' alias chains), trimmed as in
   Lenth (1989) so that a chain holding a pair acting together does not inflate it. This is group screening
   (Watson 1961; Lewis & Dean 2001 with interactions; Morris 2006 for an overview) made multi-stage, each
   stage a parallel group test (Du & Hwang, Combinatorial Group Testing, 2000) sized by the GPUs; with one
   or two GPUs it becomes sequential bifurcation (Bettonvil & Kleijnen 1997).
3. Few GPUs: one active group is bisected by probabilistic bisection (Horstein 1963; Waeber, Frazier &
   Henderson 2013), as many nested questions per round as there are GPUs (one GPU: the half of the
   probability; m GPUs: an (m + 1)-ary search), and the answer is checked in both directions (start with the
   found knobs at orig's values against orig, orig with them at start's against start) before a design over
   all knobs is spent; a partner or masking knob left open is located the same way.
4. Verdicts. Least squares over every run: main effects of every factor (a knob's effect when it alone has
   start's value, the model of the factorial ground truth) and pairs among the active knobs that show an average
   effect (strong effect heredity, Wu & Hamada, Experiments, ch. 5; a pure pair shows half its effect on each
   partner), or pairs of such a knob with one whose weaker average effect has its sign (weak heredity, Chipman
   1996: one half may fall short by chance). A culprit is a knob whose effect, or a pair it is in, is at least
   CULPRIT_SHARE of the gap (as the significant terms explain it) and significant at VERDICT_LEVEL, Bonferroni
   over the knobs and pairs examined. Follow-ups (Meyer, Steinberg & Box 1996: follow-up runs that discriminate
   between the models left): pairs the runs cannot tell apart get each pair switched both ways (de-aliasing, a
   fold-over on those factors); terms near a boundary, or beyond 2 standard errors and not yet significant, get
   their knock-in and knock-out hybrids with start and orig as references, in every round left before
   ROUND_TARGET (at least FOLLOW_UPS rounds' worth, merged into fewer, larger rounds where the target is near: a
   design that took one round, as with 8 knobs on 16 GPUs, spends the calendar it has left on the verdicts still
   open; heavy noise at 8 knobs, 1000 trials: 76 % -> 85 %). A verdict of an unreplicated design waits a round
   for replicates (the references of later contrasts, the first pure error) unless that round would be the
   target's last, as after the three rounds of stages over 32 knobs on 16 GPUs, the gap is real (a verdict of
   "noise" always waits) and no pair among its culprits shows an effect its model lacks (`unreplicated_stands`: a
   pure pair's half effects pass for two main effects). Whatever is still aliased or unclear is reported as such
   (Finding.aliased, Finding.undecided), not guessed; a failed training is left out (Evaluator) and what it would
   have decided is undecided.
5. Closure (adaptive_checks.close). A design's culprits must explain the gap in both directions, as a bisection's
   answer must (3): start with them at orig's values against orig, and start against orig with them at start's.
   Heredity misses a knob that masks a culprit when its main effect and half its pair cancel in its average
   effect (the first version of the subtle real pair: lr -0.21 alone, +1.19 with the larger batch, +0.39 on
   average); its pair then leaves part of the gap in one bracket. The brackets' cells join the first follow-up
   round where it has room; with few GPUs they get seeds while unclear (a round of its own is a small share of a
   long calendar), with many GPUs only a significant remainder counts (no round of its own). The knob is located
   in the open bracket, and its pairs with the culprits become candidates of the verdicts (Meyer, Steinberg & Box
   1996: follow-up runs where the models left disagree; Wu & Hamada ch. 5 on the limits of effect heredity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import scipy.linalg
from scipy import stats

from attribution.scenario import CULPRIT_SHARE
from attribution.strategies import designs
from attribution.strategies.adaptive_checks import MANY_GPUS, UNCLEAR_Z, BracketChecks
from attribution.strategies.adaptive_verdicts import FLAG_Z, NAME, verdicts
from attribution.strategies.common import (
    BASELINE_SEEDS,
    Evaluate,
    Evaluator,
    Finding,
)
from attribution.strategies.linear_model import Factor, Fit, Term, fit, select_pairs

WIDE_ROUNDS = 2  # the design over all knobs is the first stage when it fits in this many rounds, ...
GROUP_ROUNDS = 2  # a stage of groups takes at most this many rounds
EXTRA_BASELINE_SEEDS = 2  # orig and start get up to this many more seeds while the gap is unclear, then ...
LOW_SNR = 2.5  # a gap below this many seed deviations (their lower bound at NOISE_QUANTILE) goes wide
NOISE_QUANTILE = 0.8
ACTIVE_Z = 2.5  # a part stays active when its average effect or a pair it is in is beyond this
STAGE_REPEATS = 0  # ... at most this often per stage
PLAN_Z = 3.0  # a stage's seeds per row put the effect of the groups it cuts this many standard errors from zero
PLAN_ROUNDS = 1  # ... within this many rounds
ALL_PAIRS = 8  # a stage with this many factors or fewer selects among all its pairs, not only flagged ones
FULL_FACTORIAL = 3  # a stage with this many factors or fewer is a full factorial: all its pairs are fitted, ...
FULL_FACTORIAL_MAX = 5  # ... and a stage of up to this many single knobs whose full factorial fits in a round



def stage_capacity(jobs: int) -> int:
    """Factors per stage: the most whose design takes GROUP_ROUNDS rounds (at least two factors)."""
    f = 2
    while designs.runs_of(2 * f) <= GROUP_ROUNDS * jobs:
        f *= 2
    return f


def with_noise(design: Fit, overall: Fit) -> Fit:
    """A design's fit with the noise of the fit over every run when that has more degrees of freedom (a small
    design, whose rows have one run each, has none of its own)."""
    return replace(design, sigma=overall.sigma, df=overall.df) if overall.df > design.df else design


def next_factors(knobs: Sequence[str], active: list[Factor], capacity: int) -> list[Factor]:
    """The factors of the next stage: every active knob alone when that design is affordable, else every
    active group cut into parts (at least two each) and the active single knobs."""
    singles = [f for f in active if len(f) == 1]
    groups = [f for f in active if len(f) > 1]
    parts_each = max(2, (capacity - len(singles)) // len(groups))
    cut = [p for g in groups for p in designs.split([k for k in knobs if k in g], parts_each)]
    every = [frozenset({k}) for f in active for k in f]
    if len(every) <= capacity or (len(groups) > 1 and designs.runs_of(len(every)) <= 2 * designs.runs_of(
            len(singles) + len(cut))):
        return designs.knob_order(knobs, every)
    return designs.knob_order(knobs, singles + cut)


class Search(BracketChecks):
    """The state of one adaptive bisection: the partition of the knobs into factors and the active ones."""

    def __init__(self, ev: Evaluator, knobs: Sequence[str]):
        self.ev, self.knobs = ev, list(knobs)
        self.partition: list[Factor] = [frozenset(knobs)]
        self.active: list[Factor] = [frozenset(knobs)]
        self.notes: list[str] = []
        self.lenth: tuple[float, int] | None = None  # the seed noise of an unreplicated design (sigma, df)
        self.effects: dict[Factor, float] = {}  # each factor's average effect at its stage
        self.examined: set[Factor] = set()  # single knobs that have been a factor of a stage
        self.bisected = False  # a bisection ran (few GPUs): confirm checks the answer in both directions
        self.located: list[Factor] = []  # single knobs a bisection located (their pairs are candidates)

    def mains(self) -> list[Term]:
        return [(f,) for f in self.partition]

    def pair_candidates(self, flagged: list[Factor]) -> list[Term]:
        return [(a, b) for i, a in enumerate(flagged) for b in flagged[i + 1:]]

    def flagged(self, model: Fit, factors: list[Factor], z: float) -> list[Factor]:
        out = []
        for f in factors:
            est, se = model.term((f,))
            if math.isfinite(est) and abs(est) > z * se:
                out.append(f)
        return out

    def classify(self, factors: list[Factor], rows: list[frozenset[str]]) -> tuple[list[Factor], list[Factor]]:
        """(active, unclear) among a stage's factors. A factor is active when its effect is beyond ACTIVE_Z
        standard errors and can be a culprit's share of the gap (unclear: beyond UNCLEAR_Z), or when it is in a
        significant pair. Its effect: with few factors (a full factorial) the larger of its knock-out effect
        (the other factors at orig's values) and its knock-in effect (at start's), with every pair fitted (one
        F test of both); with more, its average effect over the design, which a resolution IV design keeps
        clear of pairs (a pair shows half its effect on each of its factors). Effects come from the design's
        rows alone (a balanced analysis: runs elsewhere would tilt an average effect towards their context). An active
        group's effect must lie in its parts (heredity): when none of them is active or unclear, the one with
        the largest effect is unclear."""
        mains = [(f,) for f in factors]
        overall = fit(self.ev, self.mains())  # every run: the gap, and the noise when the design has too little
        gap, _ = overall.gap()
        robust = self.unreplicated_noise(factors, rows)
        average = robust(with_noise(fit(self.ev, mains, rows), overall))
        parents = {f: next(g for g in self.active if f <= g) for f in factors}
        in_pairs: set[Factor] = set()
        if self.full(factors):
            pairs = self.pair_candidates(factors)
        else:
            pairs = []
            for _ in range(2):  # the pairs found take their share out of the noise: flag again with less of it
                flagged = set(self.flagged(average, factors, FLAG_Z)) | set(self.strongest(average, factors, parents))
                if len(factors) <= ALL_PAIRS:  # few factors: every pair is a candidate (a pure pair's half
                    flagged = set(factors)  # effects may hide in noise that the pair itself inflates)
                chosen, aliased = select_pairs(self.ev, mains, self.pair_candidates(
                    [f for f in factors if f in flagged]), only=rows)
                average = with_noise(fit(self.ev, mains + chosen, rows), overall)  # mains unchanged (res. IV)
                average = average if chosen else robust(average)
            in_pairs = {f for t in chosen + [t for g in aliased for t in g] for f in t}
        model = with_noise(fit(self.ev, mains + pairs, rows), overall)
        self.effects.update({f: average.term((f,))[0] for f in factors})
        scores: dict[Factor, tuple[float, bool]] = {}  # factor -> (evidence of an effect as a z, can be a culprit)
        for f in factors:
            mine = dict.fromkeys([p for p in pairs if f in p], 1.0)
            used = model if mine else average
            contexts = [used.vector({(f,): 1.0})] + ([model.vector({(f,): 1.0, **mine})] if mine else [])
            sizes = [used.estimate(c) for c in contexts]
            scores[f] = (used.evidence(contexts), any(
                abs(est) + ACTIVE_Z * se >= CULPRIT_SHARE * abs(gap) / 2 for est, se in sizes if math.isfinite(est)))
        active = [f for f in factors if f in in_pairs or (scores[f][0] > ACTIVE_Z and scores[f][1])]
        unclear = [f for f in factors if f not in active and scores[f][0] > UNCLEAR_Z and scores[f][1]]
        kept = set(active) | set(unclear)
        orphans = {g for g in set(parents.values()) if len(g) > 1 and not any(parents[f] == g for f in kept)}
        unclear += [max((f for f in factors if parents[f] == g),
                        key=lambda f: (scores[f][0], abs(average.term((f,))[0]))) for g in orphans]
        return active, unclear

    def unreplicated_noise(self, factors: list[Factor], rows: list[frozenset[str]]) -> Callable[[Fit], Fit]:
        """For a fold-over design whose rows have one run each (no pure error: its residual is the pairs' alias
        chains, which a pair acting inflates): a fit with the noise from Lenth's pseudo standard error over all
        the design's contrasts instead; otherwise the fit as it is."""
        if self.full(factors) or len(set(rows)) != len(rows) or any(self.ev.n(h) != 1 for h in rows):
            return lambda model: model
        means = np.array([self.ev.mean(h) for h in rows])
        used = set(designs.columns(len(factors)))
        unused = [c for c in range(1, len(rows)) if c not in used]
        se, df = designs.chain_noise(scipy.linalg.hadamard(len(rows))[:, unused].T @ means * 2 / len(rows))
        if not df:
            return lambda model: model
        self.lenth = (se * math.sqrt(len(rows)) / 2, df)
        return lambda model: replace(model, sigma=self.lenth[0], df=self.lenth[1])

    def strongest(self, model: Fit, factors: list[Factor], parents: dict[Factor, Factor]) -> list[Factor]:
        """Per active group that was cut, its part with the largest |t| (heredity: one of them holds it)."""
        best: dict[Factor, tuple[float, Factor]] = {}
        for f in factors:
            est, se = model.term((f,))
            t = abs(est) / se if se and math.isfinite(est) else 0.0
            if len(parents[f]) > 1 and t >= best.get(parents[f], (-1.0, f))[0]:
                best[parents[f]] = (t, f)
        return [f for _, f in best.values()]

    def stage(self, factors: list[Factor]) -> None:
        """Run the fold-over design over `factors` and keep the active ones."""
        old = set(self.active)
        self.partition = designs.knob_order(self.knobs, [f for f in self.partition if f not in old] + factors)
        rows = designs.hybrids(factors, self.ev.start, self.full(factors))
        self.examined |= {f for f in factors if len(f) == 1}
        self.ev.ensure(rows, self.planned_seeds([g for g in old if len(g) > 1 and g not in factors], len(rows)))
        repeats = STAGE_REPEATS if any(len(f) > 1 for f in factors) else 0  # the last stage: resolve follows
        for repeat in range(repeats + 1):
            active, unclear = self.classify(factors, rows)
            if not unclear or repeat == repeats:
                break
            if self.full(factors):  # every cell is fitted: seeds go where they are fewest
                fewest = min(self.ev.attempts(h) for h in rows)
                self.ev.more([h for h in rows if self.ev.attempts(h) == fewest])
            else:
                self.ev.more(rows)  # another seed of every row keeps the average effects balanced
        self.active = designs.knob_order(self.knobs, active + unclear)  # still unclear: kept, not lost

    def full(self, factors: list[Factor]) -> bool:
        """A stage of single knobs is a full factorial when that is small or fits in one round: no pair among
        them is then aliased with another."""
        return len(factors) <= FULL_FACTORIAL or (len(factors) <= FULL_FACTORIAL_MAX and all(
            len(f) == 1 for f in factors) and 2 ** len(factors) <= self.ev.jobs)

    def planned_seeds(self, cut: list[Factor], rows: int) -> int:
        """Seeds per row of a stage that cuts the groups `cut`: enough for the smallest of their effects (one part
        holds it when it is one knob's) to stand PLAN_Z standard errors from zero with the noise measured so
        far, within WIDE_ROUNDS rounds."""
        sizes = [abs(self.effects[g]) for g in cut if math.isfinite(self.effects.get(g, math.nan))]
        sigma = fit(self.ev, self.mains()).sigma
        if not sizes or not min(sizes) or not math.isfinite(sigma):
            return 1
        wanted = math.ceil((PLAN_Z * 2 * sigma / max(sizes)) ** 2 / rows)
        return max(1, min(wanted, PLAN_ROUNDS * self.ev.jobs // rows))

    def run(self, capacity: int) -> None:
        while any(len(f) > 1 for f in self.active):
            factors = next_factors(self.knobs, self.active, capacity)
            if len(self.active) == 1 and len(factors) == 2 and self.ev.jobs < designs.runs_of(2):
                group, self.bisected = self.active[0], True
                knob = self.locate(group, self.ev.start, self.ev.start - group)
                if knob is not None:
                    self.single_out(knob)
                    continue
            self.stage(factors)

def adaptive(knobs: Sequence[str], evaluate: Evaluate, jobs: int = 1) -> Finding:
    """Culprits (a main effect or a pair >= CULPRIT_SHARE of the gap) in rounds of at most `jobs` trainings."""
    ev = Evaluator(knobs, evaluate, jobs)
    search = Search(ev, knobs)
    capacity = stage_capacity(jobs)
    if designs.runs_of(len(knobs)) <= WIDE_ROUNDS * jobs:
        capacity = len(knobs)
    elif capacity < MANY_GPUS:
        gap, se, significant = ev.baselines(BASELINE_SEEDS, BASELINE_SEEDS + EXTRA_BASELINE_SEEDS)
        if not math.isfinite(gap) or (gap == 0 and se == 0):  # no run, or identical runs: nothing to bisect
            return ev.noise_finding(NAME, gap, se)
        sigma, df = ev.noise()
        if not significant or abs(gap) < LOW_SNR * sigma * math.sqrt(df / stats.chi2.ppf(NOISE_QUANTILE, df)):
            capacity = len(knobs)  # every run of the design informs every knob (and the gap): hidden replication
            search.notes.append(f"gap {gap:+.2f} is {'not clear' if not significant else 'small'} against the seed "
                                f"noise: a design over all knobs")
    search.run(capacity)
    search.confirm()
    return verdicts(search)
