"""`config-bisect simulate` (JSON schema, rounds of at most --jobs, plain table, exit 2 for bad scenarios) and
`plan` (the decision table over strategies and GPU counts on the pair's own units)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.benchmark import run_trials, score_strategy
from attribution.plan_table import load_plan_table
from attribution.scenario import parse_scenario
from attribution.strategies import STRATEGIES, Finding, strategy_options
from bisect_cli.main import cli
from bisect_cli.plan_cmd import PlanRow, gpu_counts, recommend
from bisect_cli.plan_inputs import strategy_units
from knobs import LoadContext
from tests.conftest import PROJECT_ROOT

KNOBS = [f"k{i}" for i in range(8)]
GOOD = {"knobs": KNOBS, "orig_wer": 17.5, "effects": {"k3": 2.0}, "seed_std": 0.05, "cost_per_run": 80}
DEMO = [str(PROJECT_ROOT / "configs" / side / "demo_ctc.config") for side in ("orig", "start")]


def test_simulate_json_schema(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GOOD))
    result = CliRunner().invoke(cli, ["simulate", str(path), "--trials", "5", "--json", "--jobs", "4"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["strategy"] for r in rows] == list(STRATEGIES)
    for r in rows:
        assert set(r) == {"strategy", "trials", "success_rate", "mean_runs", "p95_runs", "mean_cost", "mean_rounds",
                          "p95_rounds"}
        assert r["trials"] == 5 and r["p95_runs"] >= 1
        assert r["success_rate"] == 1.0  # one culprit of 2.0 against a seed noise of 0.05: none may miss it
        assert r["mean_cost"] == pytest.approx(80 * r["mean_runs"])
        assert r["mean_rounds"] >= r["mean_runs"] / 4 and r["p95_rounds"] >= 1  # at most 4 trainings a round
    screen = next(r for r in rows if r["strategy"] == "screening")
    assert screen["mean_runs"] == 17 and screen["mean_rounds"] == screen["p95_rounds"] == 5  # 17 trainings, 4 a round
    one = json.loads(CliRunner().invoke(cli, ["simulate", str(path), "--trials", "3", "--strategy", "ddmin",
                                              "--json"]).output)
    assert [r["strategy"] for r in one] == ["ddmin"] and one[0]["success_rate"] == 1.0
    assert one[0]["mean_rounds"] == one[0]["mean_runs"]  # --jobs 1: every training is a round


def test_simulate_plain_table_and_same_seed_same_numbers(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(GOOD))
    args = ["simulate", str(path), "--trials", "4", "--strategy", "adaptive", "--seed", "3", "--jobs", "8"]
    first, second = (CliRunner().invoke(cli, args) for _ in range(2))
    assert first.exit_code == 0 and first.output == second.output
    assert "culprits k3" in first.output and "jobs 8" in first.output.splitlines()[0]
    assert first.output.splitlines()[1].split()[:3] == ["strategy", "jobs", "success"]


@pytest.mark.parametrize("jobs", [1, 4, 17, 64])
def test_a_round_is_one_call_of_at_most_jobs_trainings(jobs):
    """screening asks for its whole design (16 rows and orig) at once: ceil(17 / jobs) full rounds."""
    trials = run_trials(parse_scenario(GOOD), "screening", 2, seed=0, jobs=jobs)
    assert all(t.runs == 17 and t.rounds == math.ceil(17 / jobs) for t in trials)
    for name in STRATEGIES:  # run_trials refuses a round larger than jobs
        assert all(t.rounds >= t.runs / jobs for t in run_trials(parse_scenario(GOOD), name, 2, seed=1, jobs=jobs))


def test_more_gpus_mean_fewer_rounds_for_a_fixed_plan():
    scenario = parse_scenario(GOOD)
    one, many = (score_strategy(scenario, "one-at-a-time", 3, seed=0, jobs=j) for j in (1, 64))
    assert one.mean_runs == many.mean_runs == 54 and one.mean_rounds == 54 and many.mean_rounds == 2


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


def test_success_needs_the_culprit_pairs_named_as_pairs(monkeypatch):
    pair = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "interactions": [{"knobs": ["k1", "k2"], "effect": 1.0}],
                           "seed_std": 0.1})
    answers = {"knobs only": [], "pair": [{"knobs": ["k1", "k2"], "effect": 1.0, "low": 0.8, "high": 1.2}],
               "pair and more": [{"knobs": ["k1", "k2"], "effect": 1.0, "low": 0.8, "high": 1.2},
                                 {"knobs": ["k1", "k3"], "effect": 0.5, "low": 0.3, "high": 0.7}]}
    for answer, interactions in answers.items():
        def fake(knobs, evaluate, jobs=1, interactions=interactions):
            evaluate([(frozenset(knobs), 1)])
            return Finding("fake", frozenset({"k1", "k2"}), 1, interactions=interactions)

        monkeypatch.setitem(STRATEGIES, "fake", fake)
        (trial,) = run_trials(pair, "fake", 1, seed=0)
        assert (trial.success, trial.paired) == {"knobs only": (False, False), "pair": (True, True),
                                                 "pair and more": (False, True)}[answer]


def test_the_options_a_strategy_takes_are_decided_in_one_place():
    assert strategy_options("one-at-a-time", 2, 8) == {"jobs": 8, "seeds": 2}
    assert strategy_options("adaptive", 2, 8) == {"jobs": 8}  # adaptive chooses its seeds itself
    assert strategy_options("ddmin", None, 1) == {"jobs": 1}


@pytest.fixture(scope="module")
def demo_plan(tmp_path_factory):
    """(plan --json -o PLAN.json, plan, PLAN.json) of the demo pair."""
    saved = tmp_path_factory.mktemp("plan") / "plans" / "demo.json"
    args = ["plan", *DEMO, "--gpus", "4", "--hours-per-training", "48", "--trials", "2", "--noise", "0.1"]
    return CliRunner().invoke(cli, [*args, "--json", "-o", str(saved)]), CliRunner().invoke(cli, args), saved


def test_plan_json_is_the_decision_table_on_the_pairs_own_units(demo_plan, tmp_path):
    result, _, _ = demo_plan
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    units, _, _ = strategy_units(Path(DEMO[0]), Path(DEMO[1]), tmp_path, LoadContext())
    assert data["units"] == list(units)  # what run --strategy switches
    assert [(r["strategy"], r["gpus"]) for r in data["rows"]] == [(s, g) for g in (2, 4, 8) for s in STRATEGIES]
    for r in data["rows"]:
        assert r["mean_gpu_hours"] == pytest.approx(48 * r["mean_runs"])
        assert r["mean_days"] == pytest.approx(r["mean_rounds"] * 48 / 24)
        assert r["p95_days"] == pytest.approx(r["p95_rounds"] * 2)
    picked = [r for r in data["rows"] if r["recommended"]]
    assert len(picked) == 1 and picked[0]["gpus"] == 4
    assert data["recommended"]["strategy"] == picked[0]["strategy"] and data["recommended"]["why"]
    fixed = {r["gpus"]: r for r in data["rows"] if r["strategy"] == "one-at-a-time"}
    assert fixed[2]["mean_runs"] == fixed[8]["mean_runs"] and fixed[2]["mean_rounds"] > fixed[8]["mean_rounds"]


def test_plan_prints_the_table_and_marks_the_recommended_row(demo_plan):
    _, result, _ = demo_plan
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("5 units (")
    assert sum(line.endswith("<- recommended") for line in lines) == 1
    assert lines[-1].startswith("recommended: ") and " on 4 GPUs: " in lines[-1]


def row(strategy: str, gpus: int, success: float, days: float, gpu_hours: float) -> PlanRow:
    return PlanRow(strategy, gpus, success, gpu_hours, gpu_hours, gpu_hours, gpu_hours, days, days, days, days)


def test_recommend_takes_the_fastest_of_the_surest_at_the_users_gpus():
    rows = [row("one-at-a-time", 8, 0.96, 2.0, 900), row("adaptive", 8, 0.97, 3.0, 300),
            row("screening", 8, 0.50, 1.0, 100), row("adaptive", 16, 0.97, 2.5, 320)]
    pick, why = recommend(rows, 8)
    assert pick.strategy == "one-at-a-time" and pick.recommended  # as sure as adaptive, and faster
    assert "screening is less often right" in why and "adaptive needs fewer GPU-hours (300)" in why
    rows[0].success_rate = 0.80
    pick, why = recommend(rows, 8)
    assert pick.strategy == "adaptive" and "with 16 GPUs it would take 2.5 days" in why
    assert gpu_counts(1) == [1, 2] and gpu_counts(16) == [8, 16, 32]


def test_plan_o_saves_the_table_and_what_it_was_computed_for(demo_plan):
    result, _, saved = demo_plan
    assert result.exit_code == 0, result.output
    assert result.stderr == f"saved: {saved} (give it to run or submit as --plan)\n"  # stdout stays pure JSON
    data = json.loads(saved.read_text())
    assert data == json.loads(result.stdout)
    assert {k: data[k] for k in ("orig", "start", "gpus", "hours_per_training", "noise", "trials_per_case",
                                 "seed")} == {"orig": DEMO[0], "start": DEMO[1], "gpus": 4, "hours_per_training": 48,
                                              "noise": 0.1, "trials_per_case": 2, "seed": 0}
    table = load_plan_table(saved)
    assert table.units == data["units"] and table.recommended_row.strategy == data["recommended"]["strategy"]
    assert [p.name for p in saved.parent.iterdir()] == ["demo.json"]  # no temporary file left beside it


def bad_plans(folder: Path, saved: Path) -> list[tuple[Path, str]]:
    """(file, the cause the one-line error names) for each way a --plan file can be wrong."""
    table = json.loads(saved.read_text())
    pair_units = ", ".join(table["units"])
    other_units = {**table, "units": ["batching", "lr"]}
    cases = {"missing.json": (None, "cannot read the plan table: No such file or directory"),
             "garbled.json": ("{", "not a plan table (not valid JSON"),
             "results.json": (json.dumps({"orig": "o", "start": "s", "hybrids": []}), "not a plan table (no `units`)"),
             "other.json": (json.dumps(other_units), f"the plan table was computed for other units (batching, lr) "
                                                     f"than this pair's ({pair_units})")}
    plans = []
    for name, (text, cause) in cases.items():
        if text is not None:
            (folder / name).write_text(text)
        plans.append((folder / name, cause))
    return plans


@pytest.mark.parametrize("command", ["run", "submit"])
def test_run_and_submit_refuse_a_bad_plan_in_one_line_before_anything_is_written(command, demo_plan, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    # should the check let a bad plan through: a dry run, or the smallest run (3 trainings of one epoch)
    extra = ["--dry-run", "--strategy", "adaptive"] if command == "submit" else [
        "--knobs", "batching", "--direction", "knock-in", "--baseline-seeds", "1", "--epochs", "1"]
    for plan_file, cause in bad_plans(tmp_path, demo_plan[2]):
        out = tmp_path / f"{command}-{plan_file.stem}"
        result = CliRunner().invoke(cli, [command, *DEMO, "-o", str(out), "--plan", str(plan_file), *extra])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"config-bisect: error: {plan_file}: {cause}"), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert not out.exists()
