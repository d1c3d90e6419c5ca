"""Two-level designs over factors (groups of knobs that switch together) and the hybrids they ask for.

`foldover(f)`: a regular resolution IV design for f factors in 2 * 2^ceil(log2 f) runs (f >= 3; the full
2^2 for two factors, in and out for one). Its columns are the odd-weight columns of a Sylvester-Hadamard
matrix: the product of two of them is an even-weight column, never a factor's, so no main effect is aliased
with a two-factor interaction (Box & Hunter 1961, fold-over of a saturated resolution III design); two
interactions are aliased when their column indices XOR to the same value. In its first half every factor
column is a distinct Hadamard column (rows are asked for in order, `jobs` at a time); the design holds the
all-start and the all-orig rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg

Factor = frozenset[str]


def columns(f: int) -> list[int]:
    """Sylvester column indices of f factors: the odd-weight indices in increasing order."""
    size = 2 * 2 ** math.ceil(math.log2(max(f, 2)))
    return [c for c in range(size) if bin(c).count("1") % 2][:f]


def foldover(f: int) -> np.ndarray:
    """+-1 matrix (rows = runs, one column per factor; +1: start's value); row 0 is all +1."""
    if f == 1:
        return np.array([[1], [-1]])
    size = 2 * 2 ** math.ceil(math.log2(f))
    return scipy.linalg.hadamard(size)[:, columns(f)]


def full_factorial(f: int) -> np.ndarray:
    """+-1 matrix of all 2^f rows (every pair and higher interaction estimable); row 0 is all +1."""
    return np.array([[1 - 2 * ((r >> j) & 1) for j in range(f)] for r in range(2 ** f)]).reshape(2 ** f, f)


def runs_of(f: int) -> int:
    """Rows of `foldover(f)`."""
    return 2 if f == 1 else 2 * 2 ** math.ceil(math.log2(f))


def knob_order(knobs: Sequence[str], factors: list[Factor]) -> list[Factor]:
    """`factors` sorted by the first of their knobs in `knobs`."""
    index = {k: i for i, k in enumerate(knobs)}
    return sorted(factors, key=lambda f: min(index[k] for k in f))


def split(group: Sequence[str], parts: int) -> list[Factor]:
    """`group` (in knob order) cut into `parts` contiguous parts of nearly equal size."""
    parts = min(parts, len(group))
    return [frozenset(group[i * len(group) // parts:(i + 1) * len(group) // parts]) for i in range(parts)]


def hybrids(factors: Sequence[Factor], reference: frozenset[str], full: bool = False) -> list[frozenset[str]]:
    """The hybrids of `foldover(len(factors))` (`full`: of the full factorial): a factor at +1 has start's
    values, at -1 orig's; knobs outside every factor keep their value in `reference` (a hybrid: the knobs with
    start's value)."""
    moved = frozenset().union(*factors)
    base = reference - moved
    matrix = full_factorial(len(factors)) if full else foldover(len(factors))
    return [base.union(*(f for f, level in zip(factors, row, strict=True) if level > 0)) for row in matrix]


def aliased_pairs(f: int) -> dict[int, list[tuple[int, int]]]:
    """XOR value -> the factor index pairs whose interaction lies on that alias chain of `foldover(f)`."""
    cols = columns(f)
    chains: dict[int, list[tuple[int, int]]] = {}
    for i in range(f):
        for j in range(i + 1, f):
            chains.setdefault(cols[i] ^ cols[j], []).append((i, j))
    return chains


def chain_noise(effects: np.ndarray) -> tuple[float, int]:
    """(standard error of one contrast, degrees of freedom) from the contrasts of an unreplicated two-level
    design that no factor uses (the two-factor alias chains): their root mean square after leaving out those
    beyond 2.5 x 1.5 x their median |contrast| (Lenth 1989, Technometrics 31: a chain that holds a pair acting
    together would otherwise inflate it)."""
    size = np.abs(effects)
    kept = size[size < 2.5 * 1.5 * float(np.median(size))] if len(size) else size
    return (float(np.sqrt(np.mean(kept ** 2))), len(kept)) if len(kept) else (math.nan, 0)
