"""Least squares over every run so far: WER = mu + sum of main effects (a factor with start's value) + sum of
pair interactions (both factors with start's value), with the noise from the residuals.

A factor is a group of knobs that has moved together in every run so far (a single knob once it has been
split off). Terms are tuples of factors: one factor is a main effect, two a pair. Rank-deficient fits are
allowed: only estimable contrasts (in the row space of the runs) are reported. Pairs enter by forward
selection (the most significant pair first, Bonferroni over the candidates); two candidates whose columns
the runs cannot tell apart (the same alias chain) are reported as aliased instead of one of them being
picked.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from attribution.strategies.common import Evaluator

Factor = frozenset[str]
Term = tuple[Factor, ...]
RIVAL_COSINE = 0.5  # a significant candidate this parallel to the best (after the model) must be told apart ...
RIVAL_ODDS = 19.0  # ... by these posterior odds, else both are reported as aliased


def columns_of(hybrids: Sequence[frozenset[str]], terms: Sequence[Term]) -> np.ndarray:
    """0/1 matrix: one row per hybrid, one column per term (1 when every factor of the term has start's value)."""
    needs = [frozenset().union(*term) for term in terms]  # every factor of a term has start's value
    return np.array([[float(need <= h) for need in needs] for h in hybrids]).reshape(len(hybrids), len(terms))


@dataclass
class Fit:
    """A least-squares fit; `coef`/`unscaled` index 0 is the intercept, then the terms in order."""

    terms: list[Term]
    coef: np.ndarray
    unscaled: np.ndarray  # pinv(X'X)
    projector: np.ndarray  # pinv(X) X: a contrast c is estimable when projector @ c == c
    sigma: float
    df: int

    def vector(self, weights: dict[Term, float]) -> np.ndarray:
        c = np.zeros(len(self.terms) + 1)
        for term, w in weights.items():
            c[self.terms.index(term) + 1] += w
        return c

    def estimable(self, c: np.ndarray) -> bool:
        return bool(np.all(np.abs(self.projector @ c - c) <= 1e-7 + 1e-5 * np.abs(c)))  # np.allclose, faster

    def estimate(self, c: np.ndarray) -> tuple[float, float]:
        """(estimate, standard error); (nan, inf) when the runs cannot estimate it."""
        if not self.estimable(c):
            return math.nan, math.inf
        se = self.sigma * math.sqrt(max(float(c @ self.unscaled @ c), 0.0)) if self.df else math.inf
        return float(c @ self.coef), se

    def evidence(self, contrasts: list[np.ndarray]) -> float:
        """How far the contrasts are jointly from zero, as a two-sided normal z: the F test of the hypothesis
        that all are zero (a t test for one), its p value turned into a z (inf: exact, no noise; 0: cannot
        estimate them)."""
        usable = [c for c in contrasts if self.estimable(c)]
        if not usable or not self.df or not math.isfinite(self.sigma):
            return 0.0
        c = np.array(usable)
        est = c @ self.coef
        cov = c @ self.unscaled @ c.T
        if self.sigma == 0:
            return math.inf if np.abs(est).max() > 1e-12 else 0.0
        wald = float(est @ np.linalg.pinv(cov) @ est) / self.sigma ** 2
        rank = max(int(np.linalg.matrix_rank(cov)), 1)
        p = float(stats.f.sf(wald / rank, rank, self.df))
        return float(stats.norm.isf(p / 2)) if p > 0 else math.inf

    def term(self, term: Term) -> tuple[float, float]:
        return self.estimate(self.vector({term: 1.0}))

    def gap(self) -> tuple[float, float]:
        """Predicted WER(start) - WER(orig): the sum of every term."""
        return self.estimate(self.vector(dict.fromkeys(self.terms, 1.0)))

    def quantile(self, tests: int = 1, level: float = 0.05) -> float:
        """Two-sided t quantile with the residual degrees of freedom, Bonferroni over `tests`."""
        return float(stats.t.ppf(1 - level / 2 / max(tests, 1), self.df)) if self.df else math.inf


def observations(ev: Evaluator, only: Collection[frozenset[str]] | None = None
                 ) -> tuple[list[frozenset[str]], np.ndarray]:
    runs = [(h, w) for h, wers in ev.wers.items() if only is None or h in only for w in wers]
    return [h for h, _ in runs], np.array([w for _, w in runs])


def pure_error(ev: Evaluator, only: Collection[frozenset[str]] | None) -> tuple[float, int]:
    """(sum of squares, degrees of freedom) of the replicates of the hybrids outside `only` (none: 0, 0)."""
    if only is None:
        return 0.0, 0
    others = [np.array(w) for h, w in ev.wers.items() if h not in only and len(w) > 1]
    return sum(float(np.sum((w - w.mean()) ** 2)) for w in others), sum(len(w) - 1 for w in others)


def fit(ev: Evaluator, terms: Sequence[Term], only: Collection[frozenset[str]] | None = None) -> Fit:
    """Least squares over every run, or over the runs of the hybrids in `only` (a design's rows: a balanced
    analysis) with the seed noise pooled from their residuals and the replicates of every other hybrid."""
    hybrids, y = observations(ev, only)
    x = np.hstack([np.ones((len(y), 1)), columns_of(hybrids, terms)])
    pinv = np.linalg.pinv(x)
    coef = pinv @ y
    rank = int(np.linalg.matrix_rank(x)) if len(y) else 0
    df = len(y) - rank
    resid = y - x @ coef
    extra_ss, extra_df = pure_error(ev, only)
    ss, df = float(resid @ resid) + extra_ss, df + extra_df
    sigma = math.sqrt(ss / df) if df else math.nan
    return Fit(list(terms), coef, pinv @ pinv.T, pinv @ x, sigma, df)


def select_pairs(ev: Evaluator, mains: Sequence[Term], candidates: Sequence[Term], level: float = 0.05,
                 only: Collection[frozenset[str]] | None = None) -> tuple[list[Term], list[list[Term]]]:
    """(pairs chosen, groups of aliased candidates): forward selection of pair terms onto `mains`. Each step
    adds the candidate with the largest |t| if it beats the Bonferroni quantile over the candidates. Another
    significant candidate whose column is close to it (given the model) and that the runs cannot tell from
    it (posterior odds of the best against it below RIVAL_ODDS: one alias chain, or too few runs off the
    chain) makes an aliased group: the best enters the model (so the noise estimate stays clean) and the
    group is reported. `only` as in `fit`."""
    hybrids, y = observations(ev, only)
    extra_ss, extra_df = pure_error(ev, only)
    model = list(mains)
    chosen: list[Term] = []
    aliased: list[list[Term]] = []
    left = list(candidates)
    tests = max(len(candidates), 1)
    while left:
        x = np.hstack([np.ones((len(y), 1)), columns_of(hybrids, model)])
        q, r = np.linalg.qr(x)
        q = q[:, np.abs(np.diag(r)) > 1e-9 * max(1.0, float(np.abs(r).max()))]
        resid = y - q @ (q.T @ y)
        cand = columns_of(hybrids, left)
        rc = cand - q @ (q.T @ cand)
        norms = np.linalg.norm(rc, axis=0)
        df = len(y) - q.shape[1] - 1 + extra_df
        usable = norms > 1e-7
        if df < 1 or not usable.any():
            break
        proj = np.where(usable, rc.T @ resid / np.where(usable, norms, 1.0), 0.0)
        rss = float(resid @ resid) + extra_ss - proj ** 2
        t = np.where(usable, np.abs(proj) / np.sqrt(np.maximum(rss, 1e-300) / df), 0.0)
        best = int(np.argmax(t))
        critical = stats.t.ppf(1 - level / 2 / tests, df)
        if t[best] <= critical:
            break
        cosine = np.abs(rc.T @ rc[:, best]) / np.maximum(norms * norms[best], 1e-300)
        # a rival that alone fits the runs almost as well: the posterior odds of the best against it (equal
        # priors, the same number of terms) are exp(difference of the residual sums of squares / 2 sigma^2)
        odds = (proj[best] ** 2 - proj ** 2) / (2 * rss[best] / df)
        group = [best] + [i for i in range(len(left)) if i != best and usable[i] and t[i] > critical
                          and cosine[i] > RIVAL_COSINE and odds[i] < math.log(RIVAL_ODDS)]
        if len(group) > 1:
            aliased.append([left[i] for i in group])
        chosen.append(left[best])
        model.append(left[best])
        left = [c for i, c in enumerate(left) if i not in group]
    return chosen, aliased

