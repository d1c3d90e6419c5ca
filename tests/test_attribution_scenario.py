"""Scenario files: validation errors name the file and the cause; culprits by the 20 % rule."""

from __future__ import annotations

import pytest

from attribution.scenario import load_scenario, parse_scenario
from common.errors import UserError


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "a scenario is a JSON object"),
    ({"knobs": ["a"]}, "missing field 'orig_wer'"),
    ({"knobs": ["a"], "orig_wer": "x"}, "malformed field"),
    ({"knobs": [], "orig_wer": 1}, "non-empty list of distinct names"),
    ({"knobs": ["a", "a"], "orig_wer": 1}, "non-empty list of distinct names"),
    ({"knobs": ["a"], "orig_wer": 1, "effects": {"zz": 1}}, "unknown knobs: zz"),
    ({"knobs": ["a", "b"], "orig_wer": 1, "interactions": [{"knobs": ["a"], "effect": 1}]}, "at least two knobs"),
    ({"knobs": ["a"], "orig_wer": 1, "seed_std": -1}, "must be >= 0"),
    ({"knobs": ["a"], "orig_wer": 1, "segment_count": 0}, "positive integer"),
])
def test_invalid_scenarios_are_user_errors(data, message):
    with pytest.raises(UserError, match=message) as info:
        parse_scenario(data, "s.json")
    assert info.value.path == "s.json"


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        load_scenario(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON") as info:
        load_scenario(bad)
    assert info.value.path == str(bad)


def test_gap_and_culprits_by_the_culprit_share():
    s = parse_scenario({"knobs": ["a", "b", "c", "d", "e"], "orig_wer": 10, "effects": {"a": 3.0, "b": 0.1, "e": -0.1},
                        "interactions": [{"knobs": ["c", "d"], "effect": 1.0}]})
    assert s.gap == pytest.approx(4.0)
    assert s.wer(frozenset({"c"})) == 10 and s.wer(frozenset({"c", "d"})) == 11
    assert s.culprits() == {"a", "c", "d"}  # 1.0 of 4.0 is 25 %; 0.1 is not
    assert s.culprit_interactions() == [frozenset({"c", "d"})]
    assert parse_scenario({"knobs": ["a"], "orig_wer": 10}).culprits() == frozenset()
