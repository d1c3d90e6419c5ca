"""Two-level screening: a regular fractional factorial from a Sylvester-Hadamard matrix (resolution III),
main effects from N runs of one seed each, the seed noise from the contrasts no knob uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg
from scipy import stats

from attribution.strategies.common import Evaluate, Evaluator, Finding

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


def screening(knobs: Sequence[str], evaluate: Evaluate, seeds: int = 1) -> Finding:
    """Main effect of each knob = mean WER where it has start's value - mean where it has orig's; a culprit
    when the effect is significant (t test over the spare contrasts, Bonferroni) and >= 20 % of the gap
    (start, the design's first row, against one run of orig). No significant effect: noise."""
    ev = Evaluator(knobs, evaluate)
    matrix, size = design(knobs)
    used = matrix[:, 1:len(knobs) + 1]
    rows = [frozenset(k for k, level in zip(knobs, row, strict=True) if level == 1) for row in used]
    ev.ensure([*rows, ev.orig], seeds)  # row 0 is start (every knob at +1)
    means = np.array([ev.mean(r) for r in rows])
    contrasts = matrix.T @ means * 2 / size  # effect of every column (column 0: twice the grand mean)
    effects = {k: float(contrasts[j + 1]) for j, k in enumerate(knobs)}
    spare = contrasts[len(knobs) + 1:]
    se_effect, df = float(np.sqrt(np.mean(spare ** 2))), len(spare)
    sigma = se_effect * math.sqrt(size) / 2  # one run's seed noise
    gap = ev.mean(ev.start) - ev.mean(ev.orig)
    ev.sign = 1.0 if gap >= 0 else -1.0
    notes = [f"resolution III: {size} runs; seed noise {sigma:.2f} from {df} unused contrasts (two-knob "
             f"interactions aliased with them inflate it)"]
    critical = stats.t.ppf(1 - 0.025 / len(knobs), df)
    significant = {k for k, e in effects.items() if abs(e) > critical * se_effect}
    if not significant:
        gap_se = sigma * math.sqrt(1 / ev.n(ev.start) + 1 / ev.n(ev.orig))
        finding = ev.noise_finding(NAME, gap, gap_se)
        finding.notes[:0] = [*notes, "no main effect is distinguishable from noise"]
        return finding
    threshold = ev.threshold()
    culprits = {k for k in significant if abs(effects[k]) >= threshold}
    for k, pairs in aliases(knobs).items():
        if k in culprits and pairs:
            notes.append(f"{k}'s main effect is aliased with the interactions "
                         f"{', '.join(f'{a}x{b}' for a, b in pairs)}")
    return Finding(NAME, frozenset(culprits), ev.runs, effects, notes)
