"""Strategies driving real trainings: units and hybrids, `run --strategy` (resumable), and the same strategy as
a Sisyphus asynchronous workflow (when RWTH Sisyphus is installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from bisect_cli.main import cli
from bisect_cli.plan_inputs import recognition_setup, strategy_units
from bisect_cli.submit_cmd import sisyphus_available
from interpolate.units import merge_units, request_for
from knobs import LoadContext
from runner.strategy_run import LocalEvaluate
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
NEEDS_SISYPHUS = pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not "
                                    "installed; install it from github.com/rwth-i6/sisyphus to run this test")
UNITS = {"lr+pretrain": frozenset({"lr", "pretrain"}), "batching": frozenset({"batching"}),
         "l2": frozenset({"l2"}), "dropout": frozenset({"dropout"})}


def test_knob_groups_that_share_a_knob_are_one_unit():
    units = merge_units([frozenset({"lr", "pretrain"}), frozenset({"batching"}), frozenset({"pretrain", "model"})])
    assert units == {"batching": frozenset({"batching"}), "lr+model+pretrain": frozenset({"lr", "model", "pretrain"})}


def test_orig_and_start_need_no_hybrid_and_unknown_units_are_refused():
    assert request_for(frozenset(), UNITS) is None and request_for(frozenset(UNITS), UNITS) is None
    with pytest.raises(ValueError, match="not a unit: lr"):
        request_for(frozenset({"lr"}), UNITS)


@given(st.sets(st.sampled_from(sorted(UNITS)), min_size=1, max_size=len(UNITS) - 1))
def test_a_hybrid_request_puts_exactly_the_asked_units_at_start_s_value(at_start):
    request = request_for(frozenset(at_start), UNITS)
    all_knobs = frozenset().union(*UNITS.values())
    knobs_at_start = all_knobs - request.knobs if request.direction == "knock-in" else request.knobs
    assert knobs_at_start == frozenset().union(*(UNITS[u] for u in at_start))
    switched = sum(knobs <= request.knobs for knobs in UNITS.values())
    assert switched <= len(UNITS) - switched  # the side that switches fewer units


@pytest.fixture(scope="module")
def three_unit_pair(tmp_path_factory) -> tuple[Path, Path]:
    """orig and a start that differs from it in batching (grad accumulation), L2 and dropout only.

    The demo task needs its 8 epochs to learn; the tests train 1 epoch (every WER is 100 %), so a strategy
    run here ends with "noise" after the baselines, and the hybrids are asked for directly."""
    folder = tmp_path_factory.mktemp("pair")
    text = ORIG.read_text()
    assert "l2 = 1e-4\n" in text and "adam = True\n" in text and text.count('"dropout": 0.1') == 2
    start = folder / "demo_ctc.config"
    start.write_text(text.replace("l2 = 1e-4\n", "l2 = 1e-3\n").replace('"dropout": 0.1', '"dropout": 0.3')
                     .replace("adam = True\n", "adam = True\naccum_grad_multiple_step = 3\n"))
    return ORIG, start


@pytest.fixture(scope="module")
def local_strategy_run(three_unit_pair, tmp_path_factory):
    orig, start = three_unit_pair
    work = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONFIG_BISECT_CACHE", str(tmp_path_factory.mktemp("cache")))
        args = ["run", str(orig), str(start), "-o", str(work), "--strategy", "adaptive", "--epochs", "1"]
        first = CliRunner().invoke(cli, args)
        second = CliRunner().invoke(cli, args)
    return work, first, second


def test_run_with_a_strategy_trains_what_it_asks_for_and_reports_its_finding(local_strategy_run):
    work, first, _ = local_strategy_run
    assert first.exit_code == 0, first.output
    assert "adaptive over 3 units: batching, l2, dropout" in first.output
    results = json.loads((work / "results.json").read_text())
    strategy = results["strategy"]
    assert strategy["strategy"] == "adaptive" and strategy["culprits"] == []  # 1 epoch: 100 % WER both sides
    assert strategy["runs"] == len(results["jobs"]) == 6  # 3 seeds of orig and of start, then "noise"
    assert sorted((j["label"], j["seed"]) for j in results["jobs"]) == [(side, s) for side in ("orig", "start")
                                                                       for s in (1, 2, 3)]
    assert ("strategy adaptive: culprits none: no knob holds a culprit's share of the gap (6 trainings, 3 rounds)"
            in results["verdict"])  # --jobs 2: the six baselines in three rounds
    report = (work / "report.md").read_text()
    assert "**gap +0.00 (standard error 0.00) is not distinguishable from noise" in report
    assert "Strategy adaptive: culprits none after 6 trainings." in report


def test_a_rerun_replays_the_strategy_without_training_again(local_strategy_run):
    work, first, second = local_strategy_run
    assert second.exit_code == 0, second.output
    trained = [line for line in second.output.splitlines() if line.startswith("[")]
    assert trained and all(line.endswith("(done before)") for line in trained)
    assert len(trained) == json.loads((work / "results.json").read_text())["strategy"]["runs"]
    assert first.output.splitlines()[-3:] == second.output.splitlines()[-3:]  # the same verdict


def test_strategy_refuses_a_fixed_hybrid_list(three_unit_pair, tmp_path):
    orig, start = three_unit_pair
    result = CliRunner().invoke(cli, ["run", str(orig), str(start), "-o", str(tmp_path), "--strategy", "adaptive",
                                      "--knobs", "l2"])
    assert result.exit_code == 2 and "--strategy chooses the hybrids" in result.output


def test_local_evaluate_writes_trains_and_reuses_the_hybrids_a_strategy_asks_for(three_unit_pair, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    orig_path, start_path = three_unit_pair
    env, recognition = recognition_setup(orig_path, start_path, None, None)
    units, _, write_hybrid = strategy_units(orig_path, start_path, tmp_path / "hybrids", LoadContext())
    assert units == {"batching": {"batching"}, "l2": {"l2"}, "dropout": {"dropout"}}

    def evaluator() -> LocalEvaluate:
        return LocalEvaluate(str(orig_path), str(start_path), units, write_hybrid, tmp_path / "work", recognition,
                             env, parallel=2, epochs=1)

    evaluate = evaluator()
    first = evaluate([(frozenset({"batching"}), 1), (frozenset({"l2", "dropout"}), 1)])
    assert [[(r.label, r.seed) for r in runs] for runs in first] == [[("knock-out:batching", 1)],
                                                                      [("knock-in:batching", 1)]]
    assert all(isinstance(r.wer, float) and not r.reused for runs in first for r in runs)
    more = evaluate([(frozenset({"batching"}), 1)])  # a further seed of the same hybrid
    assert [(r.label, r.seed) for r in more[0]] == [("knock-out:batching", 2)]
    assert evaluate.labels["knock-out:batching"] == (["batching"], "knock-out")
    assert len(evaluate.written) == 2  # each hybrid written once, however often it is asked for
    replay = evaluator()([(frozenset({"batching"}), 2)])  # a rerun asks again: nothing is trained
    assert [(r.seed, r.reused) for r in replay[0]] == [(1, True), (2, True)]
    assert [r.wer for r in replay[0]] == [first[0][0].wer, more[0][0].wer]


@NEEDS_SISYPHUS
def test_the_sisyphus_workflow_asks_the_same_questions_as_the_local_run(three_unit_pair, local_strategy_run,
                                                                         tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    orig, start = three_unit_pair
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(orig), str(start), "-o", str(setup), "--strategy", "adaptive",
                                      "--epochs", "1"])
    assert result.exit_code == 0, result.output
    results = json.loads((setup / "output/bisect/demo_ctc/results.json").read_text())
    local = json.loads((local_strategy_run[0] / "results.json").read_text())
    assert results["strategy"] == local["strategy"]
    assert sorted((r["label"], r["seed"]) for r in results["runs"]) == sorted(
        (j["label"], j["seed"]) for j in local["jobs"])
    report = (setup / "output/bisect/demo_ctc/report/report.html").read_text()
    assert "Strategy adaptive" in report and "data:image/png;base64," in report
    assert len(list((setup / "work").rglob("TrainJob.*"))) == results["strategy"]["runs"]
