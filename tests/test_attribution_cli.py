"""`config-bisect simulate` (JSON schema, plain table, exit 2 for bad scenarios) and `plan`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from attribution.benchmark import score_strategy
from attribution.scenario import parse_scenario
from attribution.strategies import STRATEGIES
from bisect_cli.main import cli
from tests.conftest import PROJECT_ROOT

KNOBS = [f"k{i}" for i in range(8)]
GOOD = {"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0}, "seed_std": 0.05, "cost_per_run": 80}


def test_simulate_json_schema(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GOOD))
    result = CliRunner().invoke(cli, ["simulate", str(path), "--trials", "5", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["strategy"] for r in rows] == list(STRATEGIES)
    for r in rows:
        assert set(r) == {"strategy", "trials", "success_rate", "mean_runs", "p95_runs", "mean_cost"}
        assert r["trials"] == 5 and r["p95_runs"] >= 1
        assert r["success_rate"] == 1.0  # one culprit of 2.0 against a seed noise of 0.05: none may miss it
        assert r["mean_cost"] == pytest.approx(80 * r["mean_runs"])
    one = json.loads(CliRunner().invoke(cli, ["simulate", str(path), "--trials", "3", "--strategy", "ddmin",
                                              "--json"]).output)
    assert [r["strategy"] for r in one] == ["ddmin"] and one[0]["success_rate"] == 1.0


def test_simulate_plain_table_and_same_seed_same_numbers(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GOOD))
    args = ["simulate", str(path), "--trials", "4", "--strategy", "adaptive", "--seed", "3"]
    first, second = (CliRunner().invoke(cli, args) for _ in range(2))
    assert first.exit_code == 0 and first.output == second.output
    assert "culprits k3" in first.output and first.output.splitlines()[1].split()[:2] == ["strategy", "success"]
    assert first.output.splitlines()[1].endswith("mean rounds")


def test_rounds_count_the_batches_that_wait_for_each_other(tmp_path):
    scenario = parse_scenario(GOOD)
    screen = score_strategy(scenario, "screening", 3, seed=0)
    assert screen.mean_rounds == 1.0  # the whole design in one batch
    assert score_strategy(scenario, "adaptive", 3, seed=0).mean_rounds > 2  # baselines, then question by question


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"knobs": ["a"], "orig_wer": 1, "effects": {"b": 1}}), "unknown knobs: b"),
])
def test_simulate_bad_scenario_exits_2_with_one_line(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = CliRunner().invoke(cli, ["simulate", str(bad)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "bad.json: " in result.output and message in result.output


def test_plan_lists_first_hybrids_and_expected_cost():
    orig, start = (PROJECT_ROOT / "configs" / side / "demo_ctc.config" for side in ("orig", "start"))
    result = CliRunner().invoke(cli, ["plan", str(orig), str(start), "--strategy", "one-at-a-time", "--seeds", "2",
                                      "--cost-per-run", "10", "--trials", "5", "--noise", "0.05"])
    assert result.exit_code == 0, result.output
    assert "one-at-a-time on 5 knobs" in result.output and "  orig\n  start\n" in result.output
    # one-at-a-time, both directions, 2 seeds: 2 baselines + 2 hybrids per knob, all x 2 seeds = 24 trainings
    assert "expected trainings: 24.0" in result.output and "GPU-hours: 240" in result.output
    assert "expected rounds (batches that wait for the one before; wall time in trainings): 2.0" in result.output


@pytest.mark.parametrize(("strategy", "first", "trainings", "rounds"), [
    # screening: the 8 rows of a 2^(5-2) design (the first is start) and orig, all in one batch
    ("screening", ["start", "orig with batching, l2 from start (knock-out)"], "9.0 (95th percentile 9)", "1.0"),
    # greedy: 3 seeds of each baseline, then every knob alone with 2 seeds; a culprit of the whole gap ends it
    ("greedy", ["orig", "start", "start with batching from orig (knock-in)"], "16.0 (95th percentile 16)", "2.0"),
    # ddmin and adaptive ask one question at a time after the baselines
    ("ddmin", ["orig", "start", "start with optimizer, batching from orig (knock-in)"], None, None),
    ("adaptive", ["orig", "start", "start with optimizer, batching from orig (knock-in)"], None, None),
])
def test_plan_simulates_each_strategy(strategy, first, trainings, rounds):
    orig, start = (PROJECT_ROOT / "configs" / side / "demo_ctc.config" for side in ("orig", "start"))
    result = CliRunner().invoke(cli, ["plan", str(orig), str(start), "--strategy", strategy, "--trials", "5",
                                      "--noise", "0.05"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    listed = lines[lines.index("first hybrids to train:") + 1:]
    assert [line.strip() for line in listed[:len(first)]] == first
    expected = next(line for line in lines if line.startswith("expected trainings: "))
    waits = float(lines[-1].rpartition(": ")[2])
    if trainings:
        assert expected.startswith(f"expected trainings: {trainings};") and waits == float(rounds)
    else:
        assert waits > 2  # sequential questions: more rounds than one-at-a-time's 2
