"""Benchmark families: the shapes of a gap a bisection meets, each at several knob counts.

Effects are in WER points on an orig WER of 17.5; the culprits sit on the first knobs (the benchmark shows
each trial's strategy the knobs in a shuffled order, so no position is special). The seed noise is a share of
the smallest culprit (0.25 x, the single-culprit goal of issue 6; heavy noise 0.6 x).

- single_culprit: one knob holds the gap (2.0, seed std 0.5).
- pure_pair: two knobs that act only together: 1.0 when both have start's value, no main effect of either.
- pair_and_culprits: the issue's 12-knob case: two main culprits (1.2, 1.0) plus a pure pair (1.0).
- masking: k00's main effect 0.8 is cancelled by an interaction with k01 (1.2): k00 acts only while k01 has
  orig's value, so switching k00 alone in start shows nothing.
- two_culprits: 2.4 and 0.8 (largest 3x the smallest).
- three_culprits: 1.8, 0.6, 0.6 (largest 3x the smallest). Three additive culprits with the largest >= 3x the
  smallest leave the smallest at most 1 / (3 + 1 + 1) = 20 % of the gap; hence CULPRIT_SHARE is 15 %.
- heavy_noise: one culprit of 1.0 with seed std 0.6.
- noise_only: no effect, seed std 0.3; the answer is "no culprit".
- many_small: no culprit: six knobs at 10 % of the gap each and the other 40 % spread evenly over the remaining
  knobs (seed std 0.25 x a 10 % knob). It needs at least 12 knobs: with 8, the two others would hold 20 % each
  and be culprits.
"""

from __future__ import annotations

from attribution.scenario import Scenario, parse_scenario

ORIG_WER = 17.5
COST_PER_RUN = 80.0  # GPU-hours of one Switchboard training
KNOB_COUNTS = (8, 16, 32)


def knob_names(count: int) -> list[str]:
    return [f"k{i:02d}" for i in range(count)]


def _scenario(name: str, count: int, seed_std: float, effects: dict[int, float],
              interactions: tuple[tuple[int, int, float], ...] = ()) -> Scenario:
    knobs = knob_names(count)
    return parse_scenario({"name": f"{name}_{count}", "knobs": knobs, "orig_wer": ORIG_WER, "seed_std": seed_std,
                           "effects": {knobs[i]: e for i, e in effects.items()},
                           "interactions": [{"knobs": [knobs[a], knobs[b]], "effect": e} for a, b, e in interactions],
                           "cost_per_run": COST_PER_RUN})


def many_small(count: int) -> Scenario:
    gap = 3.0
    rest = 0.4 * gap / (count - 6)
    return _scenario("many_small", count, 0.25 * 0.1 * gap,
                     {i: 0.1 * gap if i < 6 else rest for i in range(count)})


FAMILIES = {  # name -> (knob count -> scenario), and the knob counts it is benchmarked at
    "single_culprit": (lambda n: _scenario("single_culprit", n, 0.5, {0: 2.0}), KNOB_COUNTS),
    "pure_pair": (lambda n: _scenario("pure_pair", n, 0.25, {}, ((0, 1, 1.0),)), KNOB_COUNTS),
    "pair_and_culprits": (lambda n: _scenario("pair_and_culprits", n, 0.25, {0: 1.2, 1: 1.0}, ((2, 3, 1.0),)),
                          (12, 24)),
    "masking": (lambda n: _scenario("masking", n, 0.2, {0: 0.8, 1: 1.2}, ((0, 1, -0.8),)), KNOB_COUNTS),
    "two_culprits": (lambda n: _scenario("two_culprits", n, 0.2, {0: 2.4, 1: 0.8}), KNOB_COUNTS),
    "three_culprits": (lambda n: _scenario("three_culprits", n, 0.15, {0: 1.8, 1: 0.6, 2: 0.6}), KNOB_COUNTS),
    "heavy_noise": (lambda n: _scenario("heavy_noise", n, 0.6, {0: 1.0}), KNOB_COUNTS),
    "noise_only": (lambda n: _scenario("noise_only", n, 0.3, {}), KNOB_COUNTS),
    "many_small": (many_small, (12, 16, 32)),
}
SINGLE_CULPRIT = {"single_culprit", "heavy_noise"}  # goal: >= 95 % success (the others >= 90 %)
NO_CULPRIT = {"noise_only", "many_small"}  # goal: "no culprit" in >= 95 %
WITH_PAIRS = {"pure_pair", "pair_and_culprits", "masking"}  # the pair must be reported as a pair


def family(name: str, count: int) -> Scenario:
    return FAMILIES[name][0](count)


def all_scenarios() -> list[tuple[str, Scenario]]:
    """(family, scenario) for every family at each of its knob counts."""
    return [(name, make(n)) for name, (make, counts) in FAMILIES.items() for n in counts]


def planning_cases(knobs: list[str], noise: float, cost_per_run: float = 1.0) -> list[Scenario]:
    """What `plan` simulates on a pair's own knobs (units): the gap (1.0) held by one knob, shared by two, or held
    by a pure pair, with seed std `noise` x the gap; the benchmark shuffles which knobs they are."""
    cases = [("one culprit", {knobs[0]: 1.0}, [])]
    if len(knobs) > 1:
        cases += [("two culprits", {knobs[0]: 0.5, knobs[1]: 0.5}, []),
                  ("a pure pair", {}, [{"knobs": knobs[:2], "effect": 1.0}])]
    return [parse_scenario({"name": name, "knobs": knobs, "orig_wer": ORIG_WER, "effects": effects,
                            "interactions": interactions, "seed_std": noise, "cost_per_run": cost_per_run})
            for name, effects, interactions in cases]
