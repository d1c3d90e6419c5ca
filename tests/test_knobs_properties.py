"""Invariants of the pure diff over snapshots (no subprocess): identity, symmetry, total categorization."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from knobs.diff import diff_configs
from knobs.loader import LoadedConfig
from knobs.rules import CATEGORIES, load_rules

RULES = load_rules()
KEYS = ["adam", "nadam", "optimizer_epsilon", "batch_size", "max_seqs", "accum_grad_multiple_step",
        "learning_rate", "num_epochs", "random_seed", "gradient_clip", "my_helper", "log_verbosity", "max_seq_length"]
scalars = st.one_of(st.booleans(), st.integers(-100, 100000), st.floats(1e-6, 10.0), st.sampled_from(["a", "b"]))
layers = st.fixed_dictionaries(
    {"class": st.sampled_from(["linear", "rec", "softmax"])},
    optional={"n_out": st.integers(1, 64), "dropout": st.floats(0, 0.5), "L2": st.floats(0, 1e-3),
              "loss": st.just("ce"), "from": st.sampled_from(["data", "l0"])})
configs = st.fixed_dictionaries({}, optional={
    **{k: scalars for k in KEYS},
    "network": st.dictionaries(st.sampled_from(["l0", "l1", "output"]), layers, max_size=3),
})


def snapshot(values: dict) -> LoadedConfig:
    return LoadedConfig(path="x", sha256="0", values={k: {"value": v} for k, v in values.items()},
                        unresolved=[], warnings=[], per_epoch=None)


@settings(max_examples=150, deadline=None)
@given(configs)
def test_a_config_does_not_differ_from_itself(values):
    assert diff_configs(snapshot(values), snapshot(values), RULES).knobs == []


@settings(max_examples=150, deadline=None)
@given(configs, configs)
# regression: DeepDiff reported the whole root as one change when many keys differed
@example({}, {"nadam": False, "adam": False, "learning_rate": False, "log_verbosity": False, "network": {}})
# regression: DeepDiff compared False with 1e-16 differently in the two directions
@example({"adam": True}, {"adam": True, "optimizer_epsilon": False})
def test_diff_is_symmetric_and_every_change_has_one_known_category(a, b):
    ab, ba = diff_configs(snapshot(a), snapshot(b), RULES), diff_configs(snapshot(b), snapshot(a), RULES)
    assert [k.name for k in ab.knobs] == [k.name for k in ba.knobs]
    for knob in ab.knobs:
        assert knob.category in CATEGORIES
        assert all(change.category == knob.category for change in knob.changes)
    paths_ab = sorted(c.path for k in ab.knobs for c in k.changes)
    assert paths_ab == sorted(c.path for k in ba.knobs for c in k.changes)
