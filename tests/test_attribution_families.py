"""Benchmark families: each is what its name says at every knob count, the scenario files are the families, and
plan's cases fit any unit count."""

from __future__ import annotations

from pathlib import Path

import pytest

from attribution.families import FAMILIES, NO_CULPRIT, WITH_PAIRS, family, many_small, planning_cases
from attribution.scenario import CULPRIT_SHARE, load_scenario

SUITE = Path(__file__).resolve().parents[1] / "benchmarks" / "scenarios"
MEMBERS = [(name, count) for name, (_, counts) in FAMILIES.items() for count in counts]


def main_culprits(name: str, count: int) -> list[float]:
    s = family(name, count)
    return sorted((abs(e) for e in s.effects.values() if abs(e) >= CULPRIT_SHARE * abs(s.gap)), reverse=True)


@pytest.mark.parametrize(("name", "count"), MEMBERS)
def test_every_family_member_is_valid_and_names_its_truth(name, count):
    s = family(name, count)
    assert len(s.knobs) == count and s.name == f"{name}_{count}" and s.seed_std > 0
    assert 8 <= count <= 32
    assert (s.culprits() == frozenset()) == (name in NO_CULPRIT)
    assert bool(s.culprit_interactions()) == (name in WITH_PAIRS)


@pytest.mark.parametrize("count", FAMILIES["single_culprit"][1])
def test_single_culprit_and_heavy_noise_are_one_knob_with_their_seed_noise(count):
    single, heavy = family("single_culprit", count), family("heavy_noise", count)
    assert len(single.culprits()) == len(heavy.culprits()) == 1
    assert single.seed_std == pytest.approx(0.25 * single.gap) and heavy.seed_std == pytest.approx(0.6 * heavy.gap)


@pytest.mark.parametrize(("name", "culprits"), [("two_culprits", 2), ("three_culprits", 3)])
def test_unequal_culprits_have_the_largest_at_least_three_times_the_smallest(name, culprits):
    for count in FAMILIES[name][1]:
        sizes = main_culprits(name, count)
        assert len(sizes) == culprits and sizes[0] >= 3 * sizes[-1] - 1e-9
        assert family(name, count).seed_std == pytest.approx(0.25 * sizes[-1])


def test_a_pure_pair_acts_only_together_and_masking_hides_a_knob_from_start():
    pair = family("pure_pair", 16)
    (knobs,) = pair.culprit_interactions()
    a, b = sorted(knobs)
    assert not pair.effects and pair.wer(frozenset({a})) == pair.wer(frozenset({b})) == pair.orig_wer
    assert pair.wer(frozenset({a, b})) - pair.orig_wer == pytest.approx(pair.gap)
    mask = family("masking", 16)
    (interaction,) = mask.interactions
    (masked,) = [k for k in interaction.knobs if mask.effects.get(k, 0) + interaction.effect == pytest.approx(0)]
    (partner,) = interaction.knobs - {masked}
    start = frozenset(mask.knobs)
    assert mask.wer(start) == pytest.approx(mask.wer(start - {masked}))  # switching it alone in start: nothing
    assert mask.wer(frozenset({masked})) - mask.orig_wer == pytest.approx(mask.effects[masked])  # alone in orig
    assert mask.culprits() == {masked, partner}


@pytest.mark.parametrize("count", FAMILIES["many_small"][1])
def test_many_small_is_six_knobs_at_ten_percent_and_the_rest_smaller(count):
    s = family("many_small", count)
    shares = sorted((e / s.gap for e in s.effects.values()), reverse=True)
    assert shares[:6] == pytest.approx([0.1] * 6) and max(shares[6:]) < 0.1 and sum(shares) == pytest.approx(1)
    assert many_small(8).culprits()  # why it starts at 12 knobs: with 8, the other two hold 20 % each


def test_noise_only_has_no_gap():
    assert family("noise_only", 16).gap == 0


@pytest.mark.parametrize("path", sorted(SUITE.glob("*.json")), ids=lambda p: p.stem)
def test_the_scenario_files_are_the_families(path):
    loaded = load_scenario(path)
    name, count = path.stem.rsplit("_", 1)
    assert loaded == family(name, int(count))


@pytest.mark.parametrize("units", [["a"], ["a", "b"], [f"u{i}" for i in range(9)]])
def test_plan_cases_fit_any_unit_count(units):
    cases = planning_cases(units, 0.25, 80.0)
    assert len(cases) == (1 if len(units) == 1 else 3)
    for case in cases:
        assert case.gap == pytest.approx(1.0) and case.seed_std == 0.25 and case.cost_per_run == 80.0
        assert case.culprits() and list(case.knobs) == units
