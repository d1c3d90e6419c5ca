"""Attribution on the simulator: scenarios, strategies, statistics, the simulate command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.scenario import parse_scenario
from attribution.simulator import SEGMENT_WORDS, Simulator
from attribution.statistics import bootstrap_wer_difference, difference_interval, runs_to_decide, verdict
from attribution.strategies import STRATEGIES, ddmin, screening
from bisect_cli.main import cli
from common.errors import UserError

KNOBS = [f"k{i}" for i in range(8)]
EASY = parse_scenario({"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0}, "seed_std": 0.05})


def test_scenario_validation_and_culprits():
    with pytest.raises(UserError, match="unknown knobs: zz"):
        parse_scenario({"knobs": ["a"], "orig_wer": 1, "effects": {"zz": 1}})
    with pytest.raises(UserError, match="missing field 'orig_wer'"):
        parse_scenario({"knobs": ["a"]})
    s = parse_scenario({"knobs": ["a", "b", "c", "d"], "orig_wer": 10, "effects": {"a": 3.0, "b": 0.1},
                        "interactions": [{"knobs": ["c", "d"], "effect": 1.0}]})
    assert s.gap == pytest.approx(4.1) and s.culprits() == {"a", "c", "d"}
    assert parse_scenario({"knobs": ["a"], "orig_wer": 10}).culprits() == frozenset()


def test_simulator_is_deterministic_and_counts_runs():
    runs = [Simulator(EASY, np.random.default_rng(5))(frozenset(KNOBS), 3) for _ in range(2)]
    assert [r.wer for r in runs[0]] == [r.wer for r in runs[1]]
    sim = Simulator(EASY, np.random.default_rng(5))
    sim(frozenset(), 2)
    sim(frozenset({"k3"}), 1)
    assert sim.runs == 3


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_finds_a_planted_culprit_in_an_easy_scenario(name):
    finding = STRATEGIES[name](KNOBS, Simulator(EASY, np.random.default_rng(1)))
    assert finding.culprits == {"k3"}, finding


def test_screening_states_aliasing():
    finding = screening(KNOBS, Simulator(EASY, np.random.default_rng(2)))
    assert any(note.startswith("k3's main effect is aliased with the interactions") for note in finding.notes)


@settings(max_examples=40, deadline=None)
@given(st.sets(st.sampled_from(KNOBS), min_size=1, max_size=3), st.integers(0, 10**6))
def test_ddmin_result_closes_the_gap_without_noise(culprits, seed):
    # (practically) noise-free: a tiny seed spread keeps the statistics finite
    scenario = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": {k: 1.0 for k in culprits},
                               "seed_std": 1e-6})
    finding = ddmin(KNOBS, Simulator(scenario, np.random.default_rng(seed)))
    remaining = scenario.wer(frozenset(KNOBS) - finding.culprits) - scenario.orig_wer
    assert remaining < 0.2 * scenario.gap
    assert finding.culprits == culprits  # with additive, equal effects the minimal set is the culprit set


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(0)
    words = np.full(300, SEGMENT_WORDS)
    covered = 0
    for _ in range(100):
        a = rng.binomial(SEGMENT_WORDS, 0.18, size=300)
        b = rng.binomial(SEGMENT_WORDS, 0.20, size=300)
        interval = bootstrap_wer_difference(a, b, words, n_boot=400, rng=rng)
        covered += interval.low <= 2.0 <= interval.high
    assert 88 <= covered <= 100  # nominal 95 %


def test_noise_verdict_and_runs_to_decide():
    interval = difference_interval([17.4, 17.6, 17.5], [17.5, 17.7, 17.4])
    text = verdict("pretrain", interval, interval, sigma=0.1)
    assert "not distinguishable from noise" in text
    assert runs_to_decide(0.1, 0.1) == 16
    strong = difference_interval([17.5, 17.4, 17.6], [21.5, 21.6, 21.4])
    assert verdict("pretrain", strong, strong, 0.1).startswith("pretrain explains 4.00 ±")


def test_simulate_cli_json_and_bad_scenario(tmp_path):
    good = tmp_path / "s.json"
    good.write_text(json.dumps({"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0}, "seed_std": 0.05,
                                "cost_per_run": 80}))
    result = CliRunner().invoke(cli, ["simulate", str(good), "--trials", "5", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["strategy"] for r in rows} == set(STRATEGIES)
    for r in rows:
        assert set(r) == {"strategy", "trials", "success_rate", "mean_runs", "p95_runs", "mean_cost"}
        assert r["mean_cost"] == pytest.approx(80 * r["mean_runs"])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(cli, ["simulate", str(bad)])
    assert result.exit_code == 2 and "bad.json: not valid JSON" in result.output


def test_report_files_are_written_and_the_html_is_self_contained(tmp_path):
    from artefacts.curves import Curve
    from attribution.report import LabelRuns, write_report

    rng = np.random.default_rng(3)
    words = np.full(50, SEGMENT_WORDS)

    def runs(label, knobs, direction, p, n):
        errors = [rng.binomial(SEGMENT_WORDS, p, size=50) for _ in range(n)]
        return LabelRuns(label, knobs, direction, [100 * e.sum() / words.sum() for e in errors], errors, words)

    labels = [runs("orig", [], None, 0.10, 3), runs("start", [], None, 0.30, 3),
              runs("knock-in:batching", ["batching"], "knock-in", 0.10, 1),
              runs("knock-in:l2", ["l2"], "knock-in", 0.30, 1)]
    curves = [Curve("orig seed 1", {1: 1.0, 2: 0.5}), Curve("start seed 1", {1: 1.0, 2: 0.9})]
    md, page = write_report(tmp_path, labels, curves, "demo")
    text = md.read_text()
    assert text.startswith("# demo") and "**batching (knock-in) explains" in text
    assert "l2 (knock-in)" in text and "not distinguishable from noise" in text
    assert (tmp_path / "report_effects.png").read_bytes()[:4] == b"\x89PNG"
    html_text = page.read_text()
    assert html_text.count("data:image/png;base64,") == 2
    assert "src=\"http" not in html_text and "<link" not in html_text


def test_plan_lists_first_hybrids_and_expected_cost():
    from tests.conftest import PROJECT_ROOT

    orig, start = (PROJECT_ROOT / "configs" / side / "demo_ctc.config" for side in ("orig", "start"))
    result = CliRunner().invoke(cli, ["plan", str(orig), str(start), "--strategy", "one-at-a-time", "--seeds", "2",
                                      "--cost-per-run", "10", "--trials", "5", "--noise", "0.05"])
    assert result.exit_code == 0, result.output
    assert "one-at-a-time on 5 knobs" in result.output and "  orig\n  start\n" in result.output
    # one-at-a-time, both directions, 2 seeds: 2 baselines + 2 hybrids per knob, all x 2 seeds = 24 trainings
    assert "expected trainings: 24.0" in result.output and "GPU-hours: 240" in result.output
