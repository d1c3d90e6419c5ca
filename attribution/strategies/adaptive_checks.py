"""Adaptive's checks in brackets of two hybrids: probabilistic bisection (`locate`), the check of a bisection's
answer in both directions (`confirm`) and the check that a design's culprits explain the gap (`close`). A mixin
of `attribution.strategies.adaptive.Search`, whose state (`ev`, `knobs`, `partition`, `active`, `located`,
`notes`, `bisected`) and `stage` they use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from attribution.scenario import CULPRIT_SHARE
from attribution.strategies import designs
from attribution.strategies.adaptive_verdicts import FLAG_Z
from attribution.strategies.common import Evaluator
from attribution.strategies.linear_model import Factor

MANY_GPUS = 8  # with this many GPUs the first stage needs no baselines, and the check of a design takes no round
UNCLEAR_Z = 1.5  # a part between this and ACTIVE_Z standard errors is unclear; "little is left" within this
POSTERIOR_STOP = 0.9  # probabilistic bisection stops when one knob holds this much of the posterior ...
MISFIT_Z = 4.0  # ... and gives up when an answer is this many standard errors from both hypotheses
CHECK_LEVEL = 0.02  # ... and rejects it at this level (a wrong rejection costs a design over all knobs)
MORE_LOCATES = 2  # ... it may locate this many more knobs (partners, masks, further culprits)
CHECK_SHARE = 0.45  # ... 'nothing left' needs less than this share of the gap (and UNCLEAR_Z standard errors)
CONFIRM_SEEDS = 4  # the check of a bisection's answer adds seeds while unclear, up to this many
CLOSE_SHARE = 2 * CULPRIT_SHARE  # the check of a design's culprits: "little is left" is below this share, ...
CLOSE_START = 2  # ... from this many seeds of each side (one with MANY_GPUS or more: it costs no round) ...
CLOSE_SEEDS = 8  # ... up to this many while unclear (with fewer than MANY_GPUS GPUs)
LAZY_SEEDS = 3  # ... or asks one question this often


class BracketChecks:
    ev: Evaluator
    knobs: list[str]
    partition: list[Factor]
    active: list[Factor]
    located: list[Factor]
    examined: set[Factor]
    notes: list[str]
    bisected: bool
    stage: Callable[[list[Factor]], None]

    def locate(self, group: Factor, inside: frozenset[str], outside: frozenset[str]) -> str | None:
        """Probabilistic bisection (Horstein 1963; Waeber, Frazier & Henderson 2013) over `group`, the knobs in
        which the hybrids `inside` and `outside` differ: under "one knob of the group holds the effect of
        switching them all", a posterior over its knobs from every question so far (Student-t likelihood with
        the pooled noise's degrees of freedom); each question switches a set of the most probable knobs to orig in
        `inside`, one seed: one GPU asks the half of the probability, more GPUs ask up to `jobs` nested sets at
        once (`questions`), the same questions again while the posterior does not move (when the round holds
        them all, every knob alone is a question, a seed more for those with the fewest per round, up to
        LAZY_SEEDS). The knob once one holds POSTERIOR_STOP of the posterior and every answer fits it; None when
        an answer fits neither "holds it" nor "does not" (several culprits, an interaction) or it does not
        settle."""
        ev = self.ev
        candidates = [k for k in self.knobs if k in group]
        ev.ensure([inside, outside], 1)
        asked: list[frozenset[str]] = []
        for _ in range(2 * self.depth(len(candidates)) + 4):
            total, (sigma, df) = ev.mean(inside) - ev.mean(outside), ev.noise()
            residuals = []
            for question in asked:
                drop = ev.mean(inside) - ev.mean(inside - question)
                scale = max(sigma * math.sqrt(1 / ev.n(inside - question) + 1 / ev.n(inside)), 1e-9)
                if not df or min(abs(drop), abs(drop - total)) > MISFIT_Z * scale:
                    return None
                residuals.append([(drop - total * (k in question)) / scale for k in candidates])
            log_post = stats.t.logpdf(np.array(residuals), df).sum(axis=0) if residuals else np.zeros(len(candidates))
            post = np.exp(log_post - log_post.max())
            post /= post.sum()
            order = np.argsort(-post, kind="stable")
            best = int(order[0])
            if post[best] >= POSTERIOR_STOP and all(abs(r[best]) <= MISFIT_Z for r in residuals):
                return candidates[best]
            if len(candidates) <= ev.jobs:  # every knob a question of its own, all in one round
                asked = [frozenset({k}) for k in candidates]
                fewest = min(ev.attempts(inside - q) for q in asked)  # some may have runs from the stages
                if fewest >= LAZY_SEEDS:
                    return None
                ev.more([inside - q for q in asked if ev.attempts(inside - q) == fewest])
                continue
            questions = [q for q in self.questions(candidates, post, order) if ev.attempts(inside - q) < LAZY_SEEDS]
            if not questions:
                return None
            ev.more([inside - q for q in questions])
            asked += [q for q in questions if q not in asked]
        return None

    def width(self, n: int) -> int:
        """Questions per round over n knobs (when they do not all fit in a round)."""
        return min(self.ev.jobs, max(1, n - 1))

    def depth(self, n: int) -> int:
        """Rounds an (m + 1)-ary search over n knobs takes without noise, m = `width` questions per round."""
        m, depth = self.width(n), 1
        while (m + 1) ** depth < n + 1:
            depth += 1
        return depth

    def questions(self, candidates: list[str], post: np.ndarray, order: np.ndarray) -> list[frozenset[str]]:
        """A round's questions: the knobs of highest posterior up to each of the masses i / (m + 1) for m =
        `width` questions (nested sets: the round is an (m + 1)-ary search, and every answer bears on where the
        step lies); one GPU: the half of the mass, as bisection asks."""
        m = self.width(len(candidates))
        mass = np.cumsum(post[order])
        sizes = sorted({min(len(candidates) - 1, int(np.argmin(np.abs(mass - i / (m + 1)))) + 1)
                        for i in range(1, m + 1)})
        return [frozenset(candidates[i] for i in order[:size]) for size in sizes]

    def single_out(self, knob: str) -> None:
        """`knob` becomes a factor of its own (split off its group) and the one active factor beside those found
        so far by bisection (`confirm` checks them at the end)."""
        single = frozenset({knob})
        group = next(f for f in self.partition if knob in f)
        self.partition = designs.knob_order(self.knobs, [f for f in self.partition if f != group]
                                            + [single] + ([group - single] if len(group) > 1 else []))
        self.examined.add(single)
        self.located.append(single)
        self.active = designs.knob_order(self.knobs, [f for f in self.active if len(f) == 1 and f != single] + [single])

    def brackets(self, found: frozenset[str]) -> list[tuple[frozenset[str], frozenset[str]]]:
        """Where the knobs `found` may not explain the gap: start with them at orig's values against orig
        (another knob acts beside them), and start against orig with them at start's (they act together with a
        knob still at start's value: a partner, or a knob that masks one of them)."""
        return [(self.ev.start - found, self.ev.orig), (self.ev.start, self.ev.orig | found)]

    def left(self, inside: frozenset[str], outside: frozenset[str], share: float, bounded: bool = False
             ) -> bool | None:
        """Whether more than noise is left in a bracket: True when significant; False when little is left, below
        `share` of the gap and UNCLEAR_Z standard errors (`bounded`: or its bound at UNCLEAR_Z standard errors
        below `share` of the gap, however many standard errors that is); None while not clear."""
        ev = self.ev
        est, se = ev.effect(inside, outside), ev.se(inside, outside)
        if abs(est) > ev.critical(2, CHECK_LEVEL) * se:
            return True
        bound = share * abs(ev.mean(ev.start) - ev.mean(ev.orig))
        little = abs(est) < min(bound, UNCLEAR_Z * se) or (bounded and abs(est) + UNCLEAR_Z * se < bound)
        return False if little else None

    def confirm(self) -> None:
        """After a bisection: the knobs found must explain the gap in both `brackets` (`left`, a seed at a time). When
        start without them is not orig, another knob acts beside them: it is located among the rest in that
        bracket; when orig with them is not start, the knob they act with is located in the bracket of start and
        orig with them. Up to MORE_LOCATES times; then, or when a bisection does not settle, a design over all
        knobs follows (every run so far kept)."""
        if not self.bisected or any(len(f) > 1 for f in self.active):
            return
        ev = self.ev
        for attempt in range(MORE_LOCATES + 1):
            found = frozenset().union(*self.active)
            brackets = self.brackets(found)
            while True:  # the noise estimate moves with every run: until both are settled together
                before = ev.runs
                for inside, outside in brackets:  # a seed at a time: a missing partner leaves the whole gap
                    ev.sample_until(inside, outside, lambda *_, i=inside, o=outside: self.left(i, o, CHECK_SHARE)
                                    is not None, CONFIRM_SEEDS)
                if ev.runs == before:
                    break
            open_ = [(i, o) for i, o in brackets if self.left(i, o, CHECK_SHARE)]
            if not open_:
                return
            inside, outside = open_[0]
            rest = frozenset(self.knobs) - found
            knob = self.locate(rest, inside, outside) if rest and attempt < MORE_LOCATES else None
            if knob is None:
                break
            self.single_out(knob)
        self.notes.append(f"{', '.join(sorted(found)) or 'nothing'} found by bisection does not explain the gap "
                          f"in both directions: a design over all knobs")
        self.partition, self.active, self.bisected = [frozenset(self.knobs)], [frozenset(self.knobs)], False
        self.stage([frozenset({k}) for k in self.knobs])

    def closure_cells(self, culprits: set[str]) -> list[frozenset[str]]:
        """The runs `close` starts from: each cell of the culprits' brackets once per missing seed (of
        `close_start`), to be asked for in a round that runs anyway."""
        found = frozenset(culprits)
        if self.bisected or not found or found == self.ev.start:
            return []
        cells = dict.fromkeys(h for bracket in self.brackets(found) for h in bracket)
        return [h for h in cells for _ in range(max(0, self.close_start() - self.ev.attempts(h)))]

    def close_start(self) -> int:
        """Seeds of each side the check of a design's culprits starts from."""
        return 1 if self.ev.jobs >= MANY_GPUS else CLOSE_START

    def close(self, culprits: set[str]) -> str | None:
        """After the verdicts of a design: the culprits must explain the gap in both brackets too. A knob that
        acts only with a culprit (a masking partner, whose average effect the design shows as noise and whose
        pair was never a candidate) leaves its part of the gap in one bracket. The brackets' cells start from
        `close_start` seeds (`closure_cells`, asked for with the follow-ups where a round has room) and, with few
        GPUs, get more in doubling steps up to CLOSE_SEEDS while unclear ("little is left" below CLOSE_SHARE of
        the gap, not CHECK_SHARE: a masked knob leaves less than a missing partner; beyond FLAG_Z standard errors
        at the end counts as open); with many GPUs the check takes no round of its own (only what the follow-ups
        brought, only a significant remainder). An open bracket's knob is located in the rest (`locate`) and
        becomes a single factor whose pairs with the culprits are candidates. None when the culprits explain the
        gap, it stays unclear (a note says so), or nothing is located."""
        found = frozenset(culprits)
        rest = frozenset(self.knobs) - found - frozenset().union(*self.located)
        if self.bisected or not found or not rest:
            return None
        ev, brackets = self.ev, self.brackets(found)
        cells = [h for bracket in brackets for h in bracket]
        merged_only = ev.jobs >= MANY_GPUS  # many GPUs: the calendar allows no round for the check alone
        seeds = self.close_start()
        if any(ev.attempts(h) < seeds for h in cells):
            if merged_only:
                return None
            ev.ensure(cells, seeds)
        while True:
            states = [self.left(i, o, CLOSE_SHARE, bounded=True) for i, o in brackets]
            if True in states or None not in states or seeds >= CLOSE_SEEDS or merged_only:
                break
            seeds = min(2 * seeds, CLOSE_SEEDS)
            ev.ensure(cells, seeds)
        promising = [state or (state is None and not merged_only and abs(ev.effect(*b)) > FLAG_Z * ev.se(*b))
                     for state, b in zip(states, brackets, strict=True)]
        if not any(promising):
            if None in states:
                self.notes.append(f"whether {', '.join(sorted(found))} explain the whole gap stays unclear "
                                  f"after {seeds} seeds of each side")
            return None
        knob = self.locate(rest, *brackets[promising.index(True)])
        self.notes.append(f"{', '.join(sorted(found))} did not explain the gap in both directions: "
                          + (f"{knob} located in the rest" if knob else "no single knob of the rest located"))
        return knob
