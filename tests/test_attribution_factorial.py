"""The full-factorial fit recovers the simulator's effects and culprit sets (the ground truth of real pairs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attribution.factorial import all_cells, fit_factorial
from attribution.scenario import CULPRIT_SHARE, Interaction, Scenario

KNOBS = ("a", "b", "c", "d")
effect = st.one_of(st.just(0.0), st.floats(1.0, 3.0), st.floats(-3.0, -1.0))


@settings(max_examples=60, deadline=None)
@given(effects=st.tuples(*[effect] * 4), pair=st.sampled_from([("a", "b"), ("b", "d"), ("c", "d")]),
       interaction=effect, seed=st.integers(0, 2**16))
def test_fit_recovers_effects_and_culprits(effects, pair, interaction, seed):
    scenario = Scenario(KNOBS, 10.0, dict(zip(KNOBS, effects, strict=True)),
                        (Interaction(frozenset(pair), interaction),))
    terms = [*effects, interaction]
    assume(abs(scenario.gap) > 0.5)
    # away from the 20 % boundary, so that the culprit set does not hinge on the noise
    assume(all(t == 0 or abs(abs(t) / abs(scenario.gap) - CULPRIT_SHARE) > 0.05 for t in terms))
    rng = np.random.default_rng(seed)
    cells = {cell: list(scenario.wer(cell) + rng.normal(0, 0.01, size=2)) for cell in all_cells(KNOBS)}
    fit = fit_factorial(KNOBS, cells)
    by_term = {t.knobs: t for t in fit.terms}
    for knob, value in zip(KNOBS, effects, strict=True):
        assert by_term[(knob,)].estimate == pytest.approx(value, abs=0.05)
    assert by_term[tuple(sorted(pair))].estimate == pytest.approx(interaction, abs=0.05)
    assert fit.culprits() == scenario.culprits()
    assert fit.residual_df == len(cells) * 2 - (1 + 4 + 6)


def test_noise_hides_a_small_effect():
    """An effect of 1 with seed noise 2 and two seeds per cell is not significant: not a culprit."""
    scenario = Scenario(KNOBS, 10.0, {"a": 1.0})
    rng = np.random.default_rng(0)
    cells = {cell: list(scenario.wer(cell) + rng.normal(0, 2.0, size=2)) for cell in all_cells(KNOBS)}
    fit = fit_factorial(KNOBS, cells)
    assert not next(t for t in fit.terms if t.knobs == ("a",)).significant()
    assert fit.culprits() == frozenset()


def test_needs_orig_start_and_a_residual():
    with pytest.raises(ValueError, match="orig"):
        fit_factorial(("a", "b"), {frozenset({"a"}): [1.0]})
    with pytest.raises(ValueError, match="residual"):
        fit_factorial(("a", "b"), {cell: [1.0] for cell in all_cells(("a", "b"))})


def test_a_three_way_interaction_shows_as_lack_of_fit_and_the_json_is_plain():
    """Regression (the subtle pair's first version): three knobs that act only all together leave a residual far
    above the seed noise; the fit says so, and its JSON has no numpy numbers."""
    rng = np.random.default_rng(3)
    three = {cell: list(10.0 + 6.0 * (len(cell & {"a", "b", "c"}) == 3) + rng.normal(0, 0.3, size=2))
             for cell in all_cells(KNOBS)}
    assert fit_factorial(KNOBS, three).lack_of_fit_p < 0.001
    additive = {cell: list(10.0 + 2.0 * ("a" in cell) + rng.normal(0, 0.3, size=2)) for cell in all_cells(KNOBS)}
    fit = fit_factorial(KNOBS, additive)
    assert fit.lack_of_fit_p > 0.001
    assert json.loads(json.dumps(fit.to_json()))["lack_of_fit_p"] == pytest.approx(fit.lack_of_fit_p)
