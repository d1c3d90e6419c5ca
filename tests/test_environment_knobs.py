"""Environment knobs from two probed environments (pure): one `environment` knob, or one knob per facet when the
facets can be switched separately; which side each field of a hybrid's environment comes from; the facts
section (promised vs recorded, original logs) and the compatibility check."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from knobs.environment import (
    FACETS,
    SideEnvironment,
    config_only,
    environment_fields,
    environment_knobs,
    switched_sides,
    with_environment_knobs,
)
from knobs.requirements import Requirements
from runner.environment_facts import environments_section, original_sentences, promise_warnings
from runner.probe import Probe, compatibility_problems
from tests.test_knobs_diff import pair

FACTS = {"returnn_version": "1.20261022.211313", "returnn_git": "a6e5adc", "tensorflow": "2.15.1",
         "python_version": "3.11", "numpy": "1.26.4"}
SPEC = {"python": "/v/bin/python", "returnn_root": None, "env": {}, "engine_rqmt": {}}


def side(spec: dict | None = None, **facts) -> SideEnvironment:
    return SideEnvironment({**SPEC, **(spec or {})}, {**FACTS, **facts})


def test_one_differing_facet_is_the_environment_knob():
    knobs, equivalent = environment_knobs(side({"returnn_root": "/r/old"}, returnn_version="1.20240105.013626",
                                               returnn_git="1789232"), side())
    assert [(k.name, k.category, k.fields) for k in knobs] == [("environment", "environment", ["returnn_root"])]
    assert {c.path for c in knobs[0].changes} == {"environment.facts.returnn_version", "environment.facts.returnn_git",
                                                  "environment.returnn_root"}
    assert "1.20240105.013626" in knobs[0].summary and not equivalent


def test_separable_facets_are_knobs_of_their_own():
    orig = side({"returnn_root": "/r/old", "env": {"TF_DETERMINISTIC_OPS": "1"}, "engine_rqmt": {"gpu_name": "a100"}},
                returnn_version="1.2024")
    knobs, _ = environment_knobs(orig, side())
    assert {k.name: k.fields for k in knobs} == {"returnn-version": ["returnn_root"], "env-vars": ["env"],
                                                 "hardware": ["engine_rqmt"]}
    local, _ = environment_knobs(orig, side(), compare_hardware=False)
    assert [k.name for k in local] == ["returnn-version", "env-vars"]


def test_returnn_installed_in_another_python_cannot_be_switched_apart_from_it():
    """Two venvs, each with its own RETURNN and TF: RETURNN comes with the Python, so it is one knob with the
    TF version (env vars still switch on their own)."""
    orig = side({"python": "/old/bin/python", "env": {"A": "1"}}, returnn_version="1.2024", tensorflow="2.14.1")
    knobs, _ = environment_knobs(orig, side())
    assert {k.name: k.fields for k in knobs} == {"environment": ["python", "returnn_root"], "env-vars": ["env"]}


def test_two_venvs_with_the_same_versions_are_equivalent_not_a_knob():
    knobs, equivalent = environment_knobs(side({"python": "/copy/bin/python"}), side())
    assert knobs == [] and equivalent[0]["what"] == "environment" and "/copy/bin/python" in equivalent[0]["orig"]


@given(st.sets(st.sampled_from(["returnn", "tf", "env", "hw"])), st.booleans(), st.booleans())
def test_every_difference_is_in_exactly_one_knob_and_knobs_switch_disjoint_fields(differ, root_o, same_python):
    spec_o = {"returnn_root": "/r/o" if root_o else None, "python": SPEC["python"] if same_python else "/o/python"}
    facts_o = {}
    if "returnn" in differ:
        facts_o["returnn_version"] = "1.2024"
    if "tf" in differ:
        facts_o["tensorflow"] = "2.14.1"
    if "env" in differ:
        spec_o["env"] = {"A": "1"}
    if "hw" in differ:
        spec_o["engine_rqmt"] = {"gpu": 1}
    orig = side(spec_o, **facts_o)
    knobs, _ = environment_knobs(orig, side())
    fields = [f for k in knobs for f in k.fields]
    assert len(fields) == len(set(fields))
    paths = [c.path for k in knobs for c in k.changes]
    assert len(paths) == len(set(paths))
    expected = {"environment.facts.returnn_version"} if "returnn" in differ else set()
    expected |= {"environment.facts.tensorflow"} if "tf" in differ else set()
    expected |= {"environment.env"} if "env" in differ else set()
    expected |= {"environment.engine_rqmt"} if "hw" in differ else set()
    assert expected <= set(paths)
    assert (len(knobs) == 1 and knobs[0].name == "environment") or all(k.name in (*FACETS, "environment")
                                                                       for k in knobs)
    assert bool(knobs) == bool(differ)


def test_switched_sides_take_the_knobs_fields_from_the_donor():
    fields = {"returnn-version": ["returnn_root"], "env-vars": ["env"]}
    assert switched_sides(frozenset({"returnn-version"}), "knock-in", fields) == {
        "python": "start", "returnn_root": "orig", "env": "start", "engine_rqmt": "start"}
    assert switched_sides(frozenset(), "knock-out", fields) == dict.fromkeys(
        ("python", "returnn_root", "env", "engine_rqmt"), "orig")


def test_environment_knobs_join_a_real_diff_without_changing_it(write_config):
    diff = pair(write_config, "learning_rate = 0.1\n", "learning_rate = 0.2\n")
    knobs, equivalent = environment_knobs(side({"returnn_root": "/r"}, returnn_version="1.2024"), side())
    joined = with_environment_knobs(diff, knobs, equivalent)
    assert [k.name for k in joined.knobs] == [k.name for k in diff.knobs] + ["environment"]
    assert environment_fields(joined) == {"environment": ["returnn_root"]}
    assert config_only(joined).knobs == diff.knobs and "environment" not in [k.name for k in diff.knobs]
    assert joined.to_json()["knobs"][-1]["fields"] == ["returnn_root"]


# ---------------------------------------------------------------- facts

def test_a_run_under_other_facts_than_promised_is_warned_about():
    promised = {"returnn_version": "1.2024", "returnn_git": "abc", "tensorflow": "2.15.1", "python_version": "3.11"}
    runs = [{"label": "knock-in:environment", "seed": 1, "environment": "orig's (old.json)", "promised": promised,
             "recorded": {**promised, "returnn_version": "1.2026"}},
            {"label": "orig", "seed": 1, "environment": "orig's (old.json)", "promised": promised,
             "recorded": dict(promised)}]
    assert promise_warnings(runs) == ["knock-in:environment seed 1 ran under returnn_version 1.2026 (its log), but its "
                                      "environment (orig's (old.json)) promised returnn_version 1.2024"]


def test_original_logs_are_compared_with_the_bisections_environments():
    ours = {"returnn_version": "1.2026", "tensorflow": "2.15.1", "gpu": "none (CPU)"}
    theirs = {"returnn_version": "1.2020", "tensorflow": "2.3.0", "gpu": "GeForce GTX 1080 Ti", "log": "orig.log"}
    logs = {"orig": theirs, "start": {**theirs, "tensorflow": "2.4"}}
    lines = original_sentences({"orig": ours, "start": ours}, logs, [])
    assert "did not reproduce that environment" in lines[0] and "gpu GeForce GTX 1080 Ti" in lines[0]
    assert "the original trainings differ in tensorflow" in lines[2] and "give --orig-env/--start-env" in lines[2]
    switched = original_sentences({}, logs, ["environment"])
    assert switched == ["the original trainings differ in tensorflow; the bisection switched it as the knob "
                        "environment"]


def test_section_keeps_per_side_facts_and_the_first_training():
    pair = {s: {"file": f"{s}.json", "spec": SPEC, "probe": FACTS} for s in ("orig", "start")}
    runs = [{"label": "orig", "seed": 1, "environment": "orig's", "promised": FACTS, "recorded": {"gpu": "none"}}]
    section = environments_section(pair, [{"name": "environment", "fields": ["python"], "summary": "x"}], runs,
                                   {"orig": None, "start": None})
    assert section["sides"]["orig"]["trained"] == {"gpu": "none"} and section["sides"]["start"]["trained"] is None
    assert section["warnings"] == [] and section["original"] == []


def test_compatibility_problems_name_what_is_missing():
    found = Probe("/p", "3.11", "3.11.7", "1.20240105.013626", "1789232", "/r", "2.15.1", "1.26.4",
                  latest_behavior_version=20, layer_classes=["rec", "softmax"], optimizer_classes=["adam", "nadam"])
    assert compatibility_problems(Requirements(("rec", "softmax"), "Nadam", 12), found) == []
    assert compatibility_problems(Requirements(("rec", "conformer_block"), "lion", 21), found) == [
        "layer class 'conformer_block' does not exist in RETURNN 1.20240105.013626",
        "optimizer class 'lion' does not exist in RETURNN 1.20240105.013626",
        "behavior_version 21 is newer than RETURNN 1.20240105.013626 knows (20)"]
