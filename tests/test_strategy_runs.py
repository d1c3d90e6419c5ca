"""Strategies driving real trainings: units and hybrids, `run --strategy` (resumable), and the same strategy as
a Sisyphus asynchronous workflow (when RWTH Sisyphus is installed)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from attribution.strategies import SeedNumbers
from bisect_cli.main import cli
from bisect_cli.plan_inputs import recognition_setup, strategy_units
from bisect_cli.submit_cmd import sisyphus_available
from interpolate.units import merge_units, request_for
from knobs import LoadContext
from runner.local import JobResult
from runner.settings import RunSettings
from runner.strategy_run import LocalEvaluate
from tests.ff_pair import UNITS

NEEDS_SISYPHUS = pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not "
                                    "installed; install it from github.com/rwth-i6/sisyphus to run this test")
LR_UNITS = {"lr+pretrain": frozenset({"lr", "pretrain"}), "batching": frozenset({"batching"}),
         "l2": frozenset({"l2"}), "dropout": frozenset({"dropout"})}


def test_knob_groups_that_share_a_knob_are_one_unit():
    units = merge_units([frozenset({"lr", "pretrain"}), frozenset({"batching"}), frozenset({"pretrain", "model"})])
    assert units == {"batching": frozenset({"batching"}), "lr+model+pretrain": frozenset({"lr", "model", "pretrain"})}


def test_orig_and_start_need_no_hybrid_and_unknown_units_are_refused():
    assert request_for(frozenset(), LR_UNITS) is None and request_for(frozenset(LR_UNITS), LR_UNITS) is None
    with pytest.raises(ValueError, match="not a unit: lr"):
        request_for(frozenset({"lr"}), LR_UNITS)


@given(st.sets(st.sampled_from(sorted(LR_UNITS)), min_size=1, max_size=len(LR_UNITS) - 1))
def test_a_hybrid_request_puts_exactly_the_asked_units_at_start_s_value(at_start):
    request = request_for(frozenset(at_start), LR_UNITS)
    all_knobs = frozenset().union(*LR_UNITS.values())
    knobs_at_start = all_knobs - request.knobs if request.direction == "knock-in" else request.knobs
    assert knobs_at_start == frozenset().union(*(LR_UNITS[u] for u in at_start))
    switched = sum(knobs <= request.knobs for knobs in LR_UNITS.values())
    assert switched <= len(LR_UNITS) - switched  # the side that switches fewer units


@pytest.fixture(scope="module")
def local_strategy_run(ff_pair, tmp_path_factory):
    orig, start, vocab, refs = ff_pair
    work = tmp_path_factory.mktemp("local")
    plan = work.parent / f"{work.name}-plan.json"  # the decision table of this pair, for the report's plan row
    planned = CliRunner().invoke(cli, ["plan", str(orig), str(start), "--gpus", "2", "--hours-per-training", "24",
                                       "--trials", "2", "-o", str(plan)])
    assert planned.exit_code == 0, planned.output
    args = ["run", str(orig), str(start), "-o", str(work), "--strategy", "adaptive", "--vocab", str(vocab),
            "--refs", str(refs), "--plan", str(plan)]
    first = CliRunner().invoke(cli, args)
    first_results = json.loads((work / "results.json").read_text()) if first.exit_code == 0 else None
    second = CliRunner().invoke(cli, args)
    return work, first, first_results, second


def test_run_with_a_strategy_trains_hybrids_and_names_the_culprit(local_strategy_run):
    work, first, results, _ = local_strategy_run
    assert first.exit_code == 0, first.output
    assert f"adaptive over 3 units: {', '.join(UNITS)}" in first.output
    strategy = results["strategy"]
    assert strategy["strategy"] == "adaptive" and strategy["culprits"] == ["lr"]
    assert strategy["runs"] == len(results["jobs"]) == results["trainings"]["run"]
    hybrids = {j["label"] for j in results["jobs"]} - {"orig", "start"}
    assert "knock-in:lr" in hybrids  # a hybrid trained and scored through the command line
    assert all(j["status"] == "ok" and j["wer"] is not None and not j["reused"] for j in results["jobs"])
    rows = {h["label"]: h for h in results["hybrids"]}
    assert rows["knock-in:lr"]["verdict"] == "explains" and rows["knock-in:lr"]["gap_share"] > 0.8
    assert results["gap"]["low"] > 0  # start is worse than orig beyond the seed noise
    assert f"strategy adaptive: culprits lr ({strategy['runs']} trainings, " in " ".join(results["verdict"])
    assert results["headline"].startswith("lr (knock-in) explains")
    report = (work / "report.md").read_text()
    assert f"**{results['headline']} (gap start − orig " in report
    assert f"Strategy adaptive: culprits lr after {strategy['runs']} trainings." in report
    assert first.output.splitlines()[-1].endswith(f"{strategy['runs']} trainings run, 0 reused from earlier runs")


def test_the_report_shows_the_plans_row_of_the_strategy_and_jobs_the_run_used(local_strategy_run):
    work, first, results, _ = local_strategy_run
    assert first.exit_code == 0, first.output
    plan, strategy = results["plan"], results["strategy"]
    assert (plan["strategy"], plan["jobs"]) == ("adaptive", 2) and plan["table"]["units"] == list(UNITS)
    row = next(r for r in plan["table"]["rows"] if (r["strategy"], r["gpus"]) == ("adaptive", 2))
    report = (work / "report.md").read_text()
    section = report[report.index("### The plan's row"):]
    assert (f"| plan: adaptive on 2 GPUs (mean, 95th percentile) | {row['success_rate']:.0%} | "
            f"{row['mean_runs']:.1f} ({row['p95_runs']:.0f}) |") in section
    runs, rounds = strategy["runs"], strategy["rounds"]  # at 24 h per training a round is a day
    assert f"| this run | - | {runs} | {runs * 24} | {rounds} | {rounds:.1f} |" in section
    assert ("- The run used the plan's recommended row: adaptive on 2 GPUs." in section) == row["recommended"]
    assert f"GPU-hours at full size: {runs * 24} ({runs} × 24 per training" in report  # the plan's hours


def test_a_rerun_replays_the_strategy_without_training_again(local_strategy_run):
    work, first, _, second = local_strategy_run
    assert second.exit_code == 0, second.output
    trained = [line for line in second.output.splitlines() if line.startswith("[")]
    results = json.loads((work / "results.json").read_text())
    assert trained and all(line.endswith("(trained before)") for line in trained)
    assert len(trained) == results["strategy"]["runs"] == results["trainings"]["reused"]
    verdict = results["verdict"]
    assert [line for line in first.output.splitlines() if line in verdict] == verdict  # the same verdict
    assert [line for line in second.output.splitlines() if line in verdict] == verdict


def test_strategy_refuses_a_fixed_hybrid_list_and_needs_test_wers(ff_pair, tmp_path):
    orig, start, vocab, refs = ff_pair
    result = CliRunner().invoke(cli, ["run", str(orig), str(start), "-o", str(tmp_path), "--strategy", "adaptive",
                                      "--knobs", "l2"])
    assert result.exit_code == 2 and "--strategy chooses the hybrids" in result.output
    unscored = CliRunner().invoke(cli, ["run", str(orig), str(start), "-o", str(tmp_path / "w"), "--strategy",
                                        "adaptive"])
    assert unscored.exit_code == 2 and "--strategy needs test WERs: give --vocab and --refs" in unscored.output
    assert not (tmp_path / "w").exists()


def test_local_evaluate_writes_trains_and_reuses_the_hybrids_a_strategy_asks_for(ff_pair, tmp_path):
    orig_path, start_path, vocab, refs = ff_pair
    _, recognition = recognition_setup(orig_path, start_path, str(vocab), str(refs))
    units, _, write_hybrid = strategy_units(orig_path, start_path, tmp_path / "hybrids", LoadContext())
    assert units == {unit: {unit} for unit in UNITS}
    settings = RunSettings(orig_path, start_path, tmp_path / "work", recognition=recognition)

    evaluate = LocalEvaluate(settings, units, write_hybrid)
    first = evaluate([(frozenset({"lr"}), 1), (frozenset({"l2", "dropout"}), 1)])
    lr, rest = (SeedNumbers().first(frozenset(h)) for h in ({"lr"}, {"l2", "dropout"}))  # each hybrid its own seeds
    assert [[(r.label, r.seed) for r in runs] for runs in first] == [[("knock-out:lr", lr)], [("knock-in:lr", rest)]]
    assert all(isinstance(r.wer, float) and not r.reused for runs in first for r in runs)
    more = evaluate([(frozenset({"lr"}), 1)])  # a further seed of the same hybrid
    assert [(r.label, r.seed) for r in more[0]] == [("knock-out:lr", lr + 1)]
    assert evaluate.labels["knock-out:lr"] == (["lr"], "knock-out")
    assert len(evaluate.written) == 2  # each hybrid written once, however often it is asked for
    replay = LocalEvaluate(settings, units, write_hybrid)([(frozenset({"lr"}), 2)])  # a rerun asks again: no training
    assert [(r.seed, r.reused) for r in replay[0]] == [(lr, True), (lr + 1, True)]
    assert [r.wer for r in replay[0]] == [first[0][0].wer, more[0][0].wer]


def test_a_failed_training_is_retried_once_then_comes_back_to_the_strategy_without_a_wer(ff_pair, tmp_path):
    orig, start, vocab, refs = ff_pair
    broken = tmp_path / "start.config"
    broken.write_text(start.read_text().replace('data_dir + "/train.hdf"', '"/no/such/folder/train.hdf"'))
    _, recognition = recognition_setup(orig, broken, str(vocab), str(refs))
    units, _, write_hybrid = strategy_units(orig, broken, tmp_path / "hybrids", LoadContext())
    settings = RunSettings(orig, broken, tmp_path / "work", recognition=recognition)
    attempts: list[JobResult] = []
    ((failed,),) = LocalEvaluate(settings, units, write_hybrid, attempts.append)([(frozenset(units), 1)])  # start
    assert (failed.label, failed.seed, failed.status, failed.wer) == ("start", SeedNumbers().first(frozenset(units)),
                                                                       "failed", None)
    assert re.match(r"RETURNN exited with \d+: ", failed.reason) and failed.log.endswith("returnn.stdout.txt")
    assert [(r.status, r.reused) for r in attempts] == [("failed", False), ("failed", False)]  # retried once
    again: list[JobResult] = []  # a rerun of the command: the failure is final, nothing is trained
    LocalEvaluate(settings, units, write_hybrid, again.append)([(frozenset(units), 1)])
    assert [(r.status, r.reused) for r in again] == [("failed", True)]


@NEEDS_SISYPHUS
def test_the_sisyphus_workflow_asks_the_same_questions_as_the_local_run(ff_pair, local_strategy_run, tmp_path):
    orig, start, vocab, refs = ff_pair
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(orig), str(start), "-o", str(setup), "--strategy", "adaptive",
                                      "--jobs", "2", "--vocab", str(vocab), "--refs", str(refs)])  # as run's default
    assert result.exit_code == 0, result.output
    results = json.loads((setup / "output/bisect/ff/results.json").read_text())
    local = json.loads((local_strategy_run[0] / "results.json").read_text())
    assert results["strategy"] == local["strategy"] and results["strategy"]["culprits"] == ["lr"]
    assert sorted((j["label"], j["seed"], j["wer"]) for j in results["jobs"]) == sorted(
        (j["label"], j["seed"], j["wer"]) for j in local["jobs"])
    assert results["verdict"] == local["verdict"] and results["hybrids"] == local["hybrids"]
    report = (setup / "output/bisect/ff/report/report.html").read_text()
    assert "Strategy adaptive" in report and "data:image/png;base64," in report
    assert len(list((setup / "work").rglob("TrainJob.*"))) == results["strategy"]["runs"]
