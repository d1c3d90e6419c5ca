"""Strategies that choose which hybrids to train, as pure functions over a "train and score" callback.

A hybrid is the set of knobs that have *start's* value: frozenset() is orig, all knobs is start. The callback
`evaluate(hybrid, seeds)` trains and scores it `seeds` times and returns runs with a `.wer`; every seed is
one training. Each strategy returns a `Finding`: the culprit set (empty = the gap is noise), runs used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy import stats

from attribution.scenario import CULPRIT_SHARE
from attribution.statistics import pooled_std

Evaluate = Callable[[frozenset[str], int], list]
STOP_Z = 2.0  # sequential sampling stops once an estimate is this many standard errors from its boundary
MAX_WRONG_TURNS = 2  # adaptive: bisections that may end on a knob without effect before it gives up


@dataclass
class Finding:
    strategy: str
    culprits: frozenset[str]
    runs: int
    effects: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Evaluator:
    """Caches runs per hybrid; adds seeds only when asked for more than it has."""

    def __init__(self, knobs: list[str], evaluate: Evaluate):
        self.knobs = tuple(knobs)
        self.evaluate = evaluate
        self.wers: dict[frozenset[str], list[float]] = {}
        self.orig, self.start = frozenset(), frozenset(knobs)

    def ensure(self, hybrid: frozenset[str], seeds: int) -> list[float]:
        have = self.wers.setdefault(hybrid, [])
        if seeds > len(have):
            have.extend(run.wer for run in self.evaluate(hybrid, seeds - len(have)))
        return have

    def mean(self, hybrid: frozenset[str]) -> float:
        return float(np.mean(self.wers[hybrid]))

    def sigma(self) -> float:
        sigma, df = pooled_std(list(self.wers.values()))
        return sigma if df else math.inf

    def critical(self, tests: int = 1) -> float:
        """Two-sided 95 % t quantile for the pooled seed noise, Bonferroni-corrected over `tests` decisions."""
        _, df = pooled_std(list(self.wers.values()))
        return float(stats.t.ppf(1 - 0.025 / tests, df)) if df else math.inf

    @property
    def runs(self) -> int:
        return sum(len(v) for v in self.wers.values())

    def gap(self, seeds: int) -> tuple[float, float]:
        """(gap, its standard error) from `seeds` runs of orig and start."""
        self.ensure(self.orig, seeds)
        self.ensure(self.start, seeds)
        gap = self.mean(self.start) - self.mean(self.orig)
        se = self.sigma() * math.sqrt(1 / len(self.wers[self.orig]) + 1 / len(self.wers[self.start]))
        return gap, se


def _noise(strategy: str, ev: Evaluator, gap: float, se: float) -> Finding | None:
    if abs(gap) <= ev.critical() * se:
        return Finding(strategy, frozenset(), ev.runs, notes=[f"gap {gap:.2f} within 2 standard errors "
                                                               f"({se:.2f}): not distinguishable from noise"])
    return None


def one_at_a_time(knobs: list[str], evaluate: Evaluate, seeds: int = 3) -> Finding:
    """Every knob alone, both directions: knock-in (start with the knob from orig) and knock-out."""
    ev = Evaluator(knobs, evaluate)
    gap, se = ev.gap(seeds)
    if (noise := _noise("one-at-a-time", ev, gap, se)) is not None:
        return noise
    effects, notes, culprits = {}, [], set()
    for k in knobs:
        knock_in = ev.mean(ev.start) - float(np.mean(ev.ensure(ev.start - {k}, seeds)))
        knock_out = float(np.mean(ev.ensure(frozenset({k}), seeds))) - ev.mean(ev.orig)
        effects[k] = max(knock_in, knock_out, key=abs)
        se_k = ev.sigma() * math.sqrt(2 / seeds)
        if abs(effects[k]) >= CULPRIT_SHARE * abs(gap) and abs(effects[k]) > ev.critical(2 * len(knobs)) * se_k:
            culprits.add(k)
        if abs(knock_in - knock_out) > ev.critical(len(knobs)) * se_k * math.sqrt(2):
            notes.append(f"{k}: knock-in {knock_in:+.2f} vs knock-out {knock_out:+.2f}: an interaction")
    return Finding("one-at-a-time", frozenset(culprits), ev.runs, effects, notes)


def _closes(ev: Evaluator, switched_to_orig: frozenset[str], gap: float, max_seeds: int) -> bool:
    """Noise-aware: does switching these knobs from start to orig leave less than 20 % of the gap?
    Seeds are added (up to max_seeds) while the answer is within two standard errors of the boundary."""
    hybrid = ev.start - switched_to_orig
    boundary = ev.mean(ev.orig) + CULPRIT_SHARE * gap
    for n in range(1, max_seeds + 1):
        values = ev.ensure(hybrid, n)
        se = ev.sigma() * math.sqrt(1 / len(values) + 1 / len(ev.wers[ev.orig]))
        if abs(float(np.mean(values)) - boundary) > ev.critical() * se:
            break
    return float(np.mean(ev.wers[hybrid])) < boundary


def ddmin(knobs: list[str], evaluate: Evaluate, seeds: int = 2, max_seeds: int = 4) -> Finding:
    """Delta debugging (Zeller): a 1-minimal knob set whose switch to orig closes the gap."""
    ev = Evaluator(knobs, evaluate)
    gap, se = ev.gap(seeds)
    if (noise := _noise("ddmin", ev, gap, se)) is not None:
        return noise
    current, n = list(knobs), 2
    while len(current) >= 2:
        chunks = [current[i * len(current) // n:(i + 1) * len(current) // n] for i in range(n)]
        for chunk in chunks:
            if _closes(ev, frozenset(chunk), gap, max_seeds):
                current, n = chunk, 2
                break
        else:
            for chunk in chunks:
                complement = [k for k in current if k not in chunk]
                if _closes(ev, frozenset(complement), gap, max_seeds):
                    current, n = complement, max(n - 1, 2)
                    break
            else:
                if n >= len(current):
                    break
                n = min(len(current), 2 * n)
    return Finding("ddmin", frozenset(current), ev.runs)


def greedy(knobs: list[str], evaluate: Evaluate, seeds: int = 2) -> Finding:
    """From start, switch the knob that helps most, until the gap is closed."""
    ev = Evaluator(knobs, evaluate)
    gap, se = ev.gap(seeds)
    if (noise := _noise("greedy", ev, gap, se)) is not None:
        return noise
    chosen: list[str] = []
    current = ev.start
    while current and ev.mean(current) - ev.mean(ev.orig) >= CULPRIT_SHARE * gap:
        best = min(current, key=lambda k: float(np.mean(ev.ensure(current - {k}, seeds))))
        chosen.append(best)
        current = current - {best}
    return Finding("greedy", frozenset(chosen), ev.runs, notes=[f"path: {' -> '.join(chosen)}"])


def screening(knobs: list[str], evaluate: Evaluate, seeds: int = 1, baseline_seeds: int = 2) -> Finding:
    """Two-level screening with a Hadamard (Plackett-Burman type, resolution III) design: main effects
    from N >= k+1 runs. Main effects are aliased with two-knob interactions: for Sylvester-Hadamard
    columns, column a times column b is column a XOR b."""
    ev = Evaluator(knobs, evaluate)
    gap, se = ev.gap(baseline_seeds)
    if (noise := _noise("screening", ev, gap, se)) is not None:
        return noise
    size = 2 ** math.ceil(math.log2(len(knobs) + 1))
    design = scipy.linalg.hadamard(size)[:, 1:len(knobs) + 1]
    rows = [frozenset(k for k, level in zip(knobs, row, strict=True) if level == 1) for row in design]
    means = np.array([np.mean(ev.ensure(row, seeds)) for row in rows])
    effects = {k: float(means[design[:, j] == 1].mean() - means[design[:, j] == -1].mean())
               for j, k in enumerate(knobs)}
    se_effect = ev.sigma() * 2 / math.sqrt(size * seeds)
    crit = ev.critical(len(knobs))
    culprits = {k for k, e in effects.items() if abs(e) >= CULPRIT_SHARE * abs(gap) and abs(e) > crit * se_effect}
    columns = {k: j + 1 for j, k in enumerate(knobs)}
    notes = []
    for k in sorted(culprits):
        partners = [f"{a}x{b}" for i, a in enumerate(knobs) for b in knobs[i + 1:]
                    if columns[a] ^ columns[b] == columns[k]]
        if partners:
            notes.append(f"{k}'s main effect is aliased with the interactions {', '.join(partners)}")
    return Finding("screening", frozenset(culprits), ev.runs, effects, notes)


def adaptive(knobs: list[str], evaluate: Evaluate, baseline_seeds: int = 2, max_seeds: int = 4) -> Finding:
    """Sequential binary search with seeds only where a decision is still uncertain.

    While the remaining gap (start with the culprits found so far switched to orig, against orig) is
    significant and at least 20 % of the whole gap: halve the candidate knobs, switch one half and ask
    "does it hold more than half of the remaining effect?" -- adding seeds only while the answer is within
    the t interval of that midpoint -- and follow the half that does, down to one knob. A found knob whose
    knock-out effect (orig with only it from start) is much smaller than its knock-in effect acts through
    an interaction: its partner is searched the same way, from orig with that knob switched to start."""
    ev = Evaluator(knobs, evaluate)
    gap, se = ev.gap(baseline_seeds)
    looks = 1
    for n in range(baseline_seeds + 1, max_seeds + 1):  # more baseline seeds only while the gap is unclear
        if abs(gap) > ev.critical(looks) * se:
            break
        gap, se = ev.gap(n)
        looks += 1
    if abs(gap) <= ev.critical(looks) * se:  # Bonferroni over the looks keeps the false alarms at 5 %
        return Finding("adaptive", frozenset(), ev.runs, notes=[f"gap {gap:.2f} within the noise ({se:.2f})"])
    threshold = CULPRIT_SHARE * abs(gap)
    sign = 1.0 if gap > 0 else -1.0

    def measure(hybrid: frozenset[str], reference: frozenset[str], boundary: float, down: bool = True) -> float:
        """The effect sign * (WER(reference) - WER(hybrid)) (or WER(hybrid) - WER(reference) when not `down`),
        with seeds added to `hybrid` until the estimate is clear of `boundary`."""
        direction = sign if down else -sign
        for n in range(1, max_seeds + 1):
            values = ev.ensure(hybrid, n)
            est = direction * (ev.mean(reference) - float(np.mean(values)))
            se_h = ev.sigma() * math.sqrt(1 / len(values) + 1 / len(ev.wers[reference]))
            if abs(est - boundary) > STOP_Z * se_h:
                break
        return direction * (ev.mean(reference) - ev.mean(hybrid))

    def bisect(candidates: list[str], effect_of: Callable[[frozenset[str], float], float], total: float) -> str:
        group, effect = candidates, total
        while len(group) > 1:
            half, other = group[: len(group) // 2], group[len(group) // 2:]
            e_half = effect_of(frozenset(half), effect / 2)
            group, effect = (half, e_half) if e_half > effect / 2 else (other, effect - e_half)
        return group[0]

    found: dict[str, float] = {}
    notes: list[str] = []
    base, remaining = ev.start, abs(gap)
    cleared: set[str] = set()  # leaves a wrong turn of the bisection ended on
    while remaining >= threshold and len(found) < len(knobs):
        ref = base
        candidates = [k for k in knobs if k not in found and k not in cleared]
        if not candidates:
            break
        culprit = bisect(candidates, lambda g, boundary, ref=ref: measure(ref - g, ref, boundary), remaining)
        e_in = measure(base - {culprit}, base, threshold / 2)
        if e_in < threshold:
            cleared.add(culprit)
            if len(cleared) > MAX_WRONG_TURNS:
                break
            continue
        found[culprit] = e_in
        base = ev.start - frozenset(found)
        ev.ensure(base, baseline_seeds)
        remaining = sign * (ev.mean(base) - ev.mean(ev.orig))
        se_r = ev.sigma() * math.sqrt(1 / len(ev.wers[base]) + 1 / len(ev.wers[ev.orig]))
        if remaining <= ev.critical(2) * se_r:
            break
    # a culprit that acts only together with another knob: its knock-out effect is much smaller
    for culprit, e_in in list(found.items()):
        single = frozenset({culprit})
        e_out = measure(single, ev.orig, e_in / 2, down=False)
        se_d = ev.sigma() * math.sqrt(1 / len(ev.wers[single]) + 1 / len(ev.wers[ev.orig]))
        candidates = [k for k in knobs if k not in found]
        if e_in - e_out < threshold or e_in - e_out <= ev.critical(len(found)) * se_d * math.sqrt(2) \
                or not candidates:
            continue
        notes.append(f"{culprit}: knock-in {e_in:.2f} vs knock-out {e_out:.2f}: an interaction")
        ref = ev.start - (frozenset(found) - single)  # the culprit at start's value, the others at orig's
        ev.ensure(ref, baseline_seeds)
        partner = bisect(candidates, lambda g, boundary, ref=ref: measure(ref - g, ref, boundary), e_in - e_out)
        if measure(ref - {partner}, ref, threshold / 2) >= threshold:
            found[partner] = e_in - e_out
    return Finding("adaptive", frozenset(found), ev.runs, found, notes)


STRATEGIES: dict[str, Callable[..., Finding]] = {
    "one-at-a-time": one_at_a_time, "ddmin": ddmin, "greedy": greedy, "screening": screening,
    "adaptive": adaptive,
}
