"""Two-level screening: a regular fractional factorial from a Sylvester-Hadamard matrix (resolution III),
main effects from N runs of one seed each, the seed noise from the contrasts no knob uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from attribution.scenario import CULPRIT_SHARE
from attribution.strategies.common import Evaluate, Evaluator, Finding
from attribution.strategies.linear_model import fit

NAME = "screening"
SPARE_COLUMNS = 4  # unused contrasts kept for the noise estimate (their degrees of freedom)


def design(knobs: Sequence[str]) -> tuple[np.ndarray, int]:
    """(+-1 matrix, one column per knob, rows = runs; the Sylvester index of knob j's column is j + 1) and
    the run count N = the smallest power of two with SPARE_COLUMNS unused columns."""
    size = 2 ** math.ceil(math.log2(len(knobs) + 1 + SPARE_COLUMNS))
    return scipy.linalg.hadamard(size), size


def aliases(knobs: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Knob -> the two-knob interactions its main effect is aliased with: in a Sylvester-Hadamard matrix,
    column a times column b is column a XOR b."""
    column = {k: j + 1 for j, k in enumerate(knobs)}
    out: dict[str, list[tuple[str, str]]] = {k: [] for k in knobs}
    by_column = {c: k for k, c in column.items()}
    for i, a in enumerate(knobs):
        for b in knobs[i + 1:]:
            target = by_column.get(column[a] ^ column[b])
            if target is not None:
                out[target].append((a, b))
    return out


def screening(knobs: Sequence[str], evaluate: Evaluate, seeds: int = 1, jobs: int = 1) -> Finding:
    """Main effect of each knob (mean WER where it has start's value - mean where it has orig's) by least
    squares over the design's runs and one of orig; a culprit when the effect is significant (t test on the
    residual, which the unused contrasts make up; Bonferroni) and >= CULPRIT_SHARE of the gap (the model's
    start - orig). No significant effect: noise. A failed run is left out of the fit."""
    ev = Evaluator(knobs, evaluate, jobs)
    matrix, size = design(knobs)
    used = matrix[:, 1:len(knobs) + 1]
    rows = [frozenset(k for k, level in zip(knobs, row, strict=True) if level == 1) for row in used]
    ev.ensure([*rows, ev.orig], seeds)  # row 0 is start (every knob at +1)
    terms = [(frozenset({k}),) for k in knobs]
    model = fit(ev, terms)
    effects = {k: est for k, (est, _) in zip(knobs, map(model.term, terms), strict=True) if math.isfinite(est)}
    gap, gap_se = model.gap()
    ev.sign = 1.0 if not gap < 0 else -1.0
    notes = [f"resolution III: {size} runs; seed noise {model.sigma:.2f} from {model.df} residual degrees of "
             f"freedom (two-knob interactions aliased with the unused contrasts inflate it)"]
    critical = model.quantile(len(knobs))
    significant = {k for k, t in zip(knobs, terms, strict=True)
                   if abs(model.term(t)[0]) > critical * model.term(t)[1]}
    if not significant:
        finding = ev.noise_finding(NAME, gap, gap_se)
        finding.notes[:0] = [*notes, "no main effect is distinguishable from noise"]
        return finding
    culprits = {k for k in significant if abs(effects[k]) >= CULPRIT_SHARE * abs(gap)}
    for k, pairs in aliases(knobs).items():
        if k in culprits and pairs:
            notes.append(f"{k}'s main effect is aliased with the interactions "
                         f"{', '.join(f'{a}x{b}' for a, b in pairs)}")
    return ev.finding(NAME, culprits, effects, notes)
