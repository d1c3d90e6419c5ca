"""The subtle embedded pair (configs/*/demo_subtle.config): the demo task where the gap is a few seed standard
deviations and several knobs share it (its ground truth: configs/demo_subtle.truth.json)."""

from __future__ import annotations

from conftest import PROJECT_ROOT

from bisect_cli.plan_inputs import recognition_setup
from knobs import LoadContext, diff_configs, load_pair, load_rules

ORIG, START = (PROJECT_ROOT / "configs" / side / "demo_subtle.config" for side in ("orig", "start"))


def test_the_subtle_pair_splits_into_five_knobs_each_in_its_own_category():
    env, recognition = recognition_setup(ORIG, START, None, None)  # exports CONFIG_BISECT_SUBTLE_DATA
    assert list(env) == ["CONFIG_BISECT_SUBTLE_DATA"] and recognition is not None
    diff = diff_configs(*load_pair(ORIG, START, LoadContext()), load_rules())
    assert {k.name: k.category for k in diff.knobs} == {
        "optimizer": "optimizer", "lr": "lr", "batching": "batching", "pretrain": "pretrain", "l2": "l2"}
