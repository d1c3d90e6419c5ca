"""Ground truth from a full factorial: main effects and two-way interactions of the knobs, with intervals.

Every subset of the knobs is trained (the hybrid with those knobs at start's value, the others at orig's),
each with a few seeds. The WER is fitted by least squares over every run with the model the simulator uses
(`attribution.scenario.Scenario.wer`): orig's WER, plus each knob's effect when it has start's value, plus
each pair's interaction when both have start's value; three-way and higher terms are left in the residual, and
the lack-of-fit F test (residual beyond the seed noise within cells) says when they matter: then the two-way
terms are averages over the higher-order effects, and the culprit set is still right but the effect sizes are not.
A knob is a culprit when its effect, or an interaction it is part of, is at least CULPRIT_SHARE of the gap
and its 95 % interval (Bonferroni over all terms) excludes zero — the same rule as `Scenario.culprits`, with
the noise taken into account.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from attribution.scenario import CULPRIT_SHARE
from attribution.statistics import pooled_std


@dataclass(frozen=True)
class Term:
    """A main effect (one knob) or a two-way interaction (two knobs), with its 95 % intervals."""

    knobs: tuple[str, ...]
    estimate: float
    se: float
    low: float  # 95 % interval of this term alone
    high: float
    low_adjusted: float  # Bonferroni over every term of the fit
    high_adjusted: float

    def significant(self) -> bool:
        return self.low_adjusted > 0 or self.high_adjusted < 0

    def to_json(self) -> dict:
        return {"knobs": list(self.knobs), "estimate": self.estimate, "se": self.se,
                "interval": [self.low, self.high], "adjusted_interval": [self.low_adjusted, self.high_adjusted],
                "significant": self.significant()}


@dataclass(frozen=True)
class FactorialFit:
    knobs: tuple[str, ...]
    orig_wer: float  # fitted intercept: every knob at orig's value
    gap: float  # mean WER of start's cell - mean WER of orig's cell
    terms: tuple[Term, ...]
    residual_std: float
    residual_df: int
    seed_std: float  # pooled within-cell standard deviation
    seed_df: int
    runs: int
    lack_of_fit_p: float | None  # F test of the higher-order terms against the seed noise; None: no df for it

    def culprit_sets(self) -> list[tuple[str, ...]]:
        """The terms that are culprits: significant and at least CULPRIT_SHARE of the gap."""
        return [t.knobs for t in self.terms
                if t.significant() and abs(t.estimate) >= CULPRIT_SHARE * abs(self.gap)]

    def culprits(self) -> frozenset[str]:
        return frozenset(k for knobs in self.culprit_sets() for k in knobs)

    def to_json(self) -> dict:
        return {"knobs": list(self.knobs), "orig_wer": self.orig_wer, "gap": self.gap,
                "culprits": sorted(self.culprits()), "culprit_sets": [list(s) for s in self.culprit_sets()],
                "culprit_share": CULPRIT_SHARE, "runs": self.runs,
                "residual_std": self.residual_std, "residual_df": self.residual_df,
                "seed_std": self.seed_std, "seed_df": self.seed_df, "lack_of_fit_p": self.lack_of_fit_p,
                "main_effects": [t.to_json() for t in self.terms if len(t.knobs) == 1],
                "interactions": [t.to_json() for t in self.terms if len(t.knobs) == 2]}


def design_terms(knobs: Sequence[str]) -> list[tuple[str, ...]]:
    """The fitted terms: every knob, then every pair."""
    return [(k,) for k in knobs] + list(itertools.combinations(knobs, 2))


def fit_factorial(knobs: Sequence[str], cells: Mapping[frozenset[str], Sequence[float]]) -> FactorialFit:
    """Least-squares fit over every run of `cells` (the knobs at start's value -> WERs of its seeds).
    Needs orig's and start's cells and more runs than terms."""
    knobs = tuple(knobs)
    terms = design_terms(knobs)
    orig, start = frozenset(), frozenset(knobs)
    if not cells.get(orig) or not cells.get(start):
        raise ValueError("the factorial needs runs of orig (no knob switched) and of start (every knob)")
    rows, ys = [], []
    for hybrid, wers in cells.items():
        row = [1.0] + [float(set(t) <= hybrid) for t in terms]
        rows += [row] * len(wers)
        ys += [float(w) for w in wers]
    x, y = np.array(rows), np.array(ys)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    df = len(y) - int(rank)
    if rank < x.shape[1] or df < 1:
        raise ValueError(f"{len(y)} runs over {len(cells)} cells cannot fit {x.shape[1]} terms with a residual")
    resid = y - x @ coef
    sigma = math.sqrt(float(resid @ resid) / df)
    se = sigma * np.sqrt(np.diag(np.linalg.inv(x.T @ x)))
    q = float(stats.t.ppf(0.975, df))
    q_adj = float(stats.t.ppf(1 - 0.025 / len(terms), df))
    fitted = tuple(Term(t, float(c), float(s), float(c - q * s), float(c + q * s), float(c - q_adj * s),
                        float(c + q_adj * s)) for t, c, s in zip(terms, coef[1:], se[1:], strict=True))
    seed_std, seed_df = pooled_std([list(w) for w in cells.values()])
    gap = float(np.mean(cells[start]) - np.mean(cells[orig]))
    return FactorialFit(knobs, float(coef[0]), gap, fitted, sigma, df, seed_std, seed_df, len(y),
                        lack_of_fit(float(resid @ resid), df, seed_std, seed_df))


def lack_of_fit(rss: float, df: int, seed_std: float, seed_df: int) -> float | None:
    """p value of the F test: is the residual (df) larger than the pure seed noise within cells (seed_df)?"""
    lof_df = df - seed_df
    if lof_df < 1 or seed_df < 1 or not seed_std > 0:
        return None
    pure = seed_std ** 2 * seed_df
    return float(stats.f.sf(max(rss - pure, 0.0) / lof_df / seed_std ** 2, lof_df, seed_df))


def all_cells(knobs: Sequence[str]) -> list[frozenset[str]]:
    """Every subset of `knobs` (the knobs at start's value), orig's cell first, start's last."""
    return [frozenset(c) for n in range(len(knobs) + 1) for c in itertools.combinations(knobs, n)]
