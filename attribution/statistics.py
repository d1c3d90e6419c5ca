"""Statistics of WER differences: seed noise, bootstrap over test segments, effect intervals, the verdict rule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def pooled_std(groups: list[list[float]]) -> tuple[float, int]:
    """Pooled seed standard deviation over replicate groups, and its degrees of freedom."""
    ss = sum(float(np.sum((np.asarray(g) - np.mean(g)) ** 2)) for g in groups if len(g) > 1)
    df = sum(len(g) - 1 for g in groups if len(g) > 1)
    return (math.sqrt(ss / df), df) if df else (float("nan"), 0)


def difference_interval(a: list[float], b: list[float], sigma: float | None = None, df: int | None = None,
                        confidence: float = 0.95) -> Interval:
    """mean(b) - mean(a) with a t interval; `sigma`/`df` from pooled replicates when a side has one run."""
    mean = float(np.mean(b) - np.mean(a))
    if sigma is None:
        sigma, df = pooled_std([a, b])
    if not df or not math.isfinite(sigma):
        return Interval(mean, -math.inf, math.inf)
    se = sigma * math.sqrt(1 / len(a) + 1 / len(b))
    q = stats.t.ppf(0.5 + confidence / 2, df)
    return Interval(mean, mean - q * se, mean + q * se)


def bootstrap_wer_difference(errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray, seed_var: float = 0.0,
                             n_boot: int = 2000, confidence: float = 0.95,
                             rng: np.random.Generator | None = None) -> Interval:
    """WER(b) - WER(a) in % with a bootstrap over test segments (Bisani & Ney, ICASSP 2004: segments are
    resampled jointly for both systems), widened by the seed variance of the difference (`seed_var`, %^2):
    the bootstrap covers which sentences were tested, the seeds cover which model was trained."""
    rng = rng or np.random.default_rng(0)
    errors_a, errors_b, words = (np.asarray(x, dtype=float) for x in (errors_a, errors_b, words))
    observed = 100 * (errors_b.sum() - errors_a.sum()) / words.sum()
    idx = rng.integers(0, len(words), size=(n_boot, len(words)))
    boot = 100 * (errors_b[idx].sum(axis=1) - errors_a[idx].sum(axis=1)) / words[idx].sum(axis=1)
    total_sd = math.sqrt(float(np.var(boot, ddof=1)) + seed_var)
    z = stats.norm.ppf(0.5 + confidence / 2)
    return Interval(float(observed), float(observed - z * total_sd), float(observed + z * total_sd))


def runs_to_decide(effect: float, sigma: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Runs per side for a two-sided test at `alpha` to detect `effect` with `power` (normal approximation)."""
    if effect == 0 or not math.isfinite(sigma):
        return 0
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return max(2, math.ceil(2 * (z * sigma / abs(effect)) ** 2))


def classify(effect: Interval, gap: Interval) -> str:
    """The verdict rule: "noise" when the effect's interval contains zero, else "explains" when it has the sign of
    the gap, else "against" (also for a gap of exactly zero: there is nothing to explain)."""
    if not effect.excludes_zero():
        return "noise"
    return "explains" if effect.estimate * gap.estimate > 0 else "against"


def verdict(name: str, effect: Interval, gap: Interval, sigma: float) -> str:
    """One sentence: what the knob explains, or that it is not distinguishable from noise (see `classify`)."""
    kind = classify(effect, gap)
    if kind == "noise":
        more = runs_to_decide(effect.estimate, sigma)
        return (f"{name}: {effect.estimate:+.2f} ± {effect.half_width:.2f} is not distinguishable from noise"
                + (f"; about {more} runs per side would decide an effect of this size" if more else ""))
    if kind == "against":
        return (f"{name} works against the gap: {effect.estimate:+.2f} ± {effect.half_width:.2f} "
                f"(the gap is {gap.estimate:.2f})")
    share = f" ({100 * effect.estimate / gap.estimate:.0f} %)" if gap.estimate else ""
    return f"{name} explains {effect.estimate:.2f} ± {effect.half_width:.2f} of the {gap.estimate:.2f} gap{share}"
