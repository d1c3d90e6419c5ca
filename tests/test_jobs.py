"""Sisyphus: the setup folder of `submit --dry-run` (always), and a real manager run (when RWTH Sisyphus is
installed) whose result matches the local runner's for the same plan."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from bisect_cli.submit_cmd import sisyphus_available
from tests.conftest import PROJECT_ROOT
from tests.ff_pair import FIXED_PLAN

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
NEEDS_SISYPHUS = pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not "
                                    "installed; install it from github.com/rwth-i6/sisyphus to run this test")


ENGINES = {"local": "LocalEngine", "sge": "SonOfGridEngine", "lsf": "LoadSharingFacilityEngine",
           "slurm": "SimpleLinuxUtilityForResourceManagementEngine"}


def _plan_of(config: str) -> dict:
    tree = ast.parse(config)
    call = next(n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "PLAN")
    return ast.literal_eval(call.keywords[0].value)  # Plan(**{...})


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_dry_run_writes_a_complete_setup(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--engine", engine,
                                      "--knobs", "batching", "--rqmt", "gpu=1", "--rqmt", "time=4", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: nothing started" in result.output and "sis m -r config/bisect.py" in result.output
    assert "2 hybrids, 8 trainings, each scored" in result.output  # 3 + 3 baselines, 2 directions x 1 seed
    settings = (setup / "settings.py").read_text()
    namespace: dict = {}
    exec(compile(settings, "settings.py", "exec"), namespace)  # valid Python with an engine() factory
    assert callable(namespace["engine"]) and f"{ENGINES[engine]}(" in settings
    if engine != "local":
        assert f"{ENGINES[engine]}(default_rqmt=" in settings
    if sisyphus_available():  # the engine classes and options exist in the real Sisyphus
        selector = namespace["engine"]()
        assert type(selector.engines["long"]).__name__ == ENGINES[engine]
    config = (setup / "config" / "bisect.py").read_text()
    tree = ast.parse(config)
    assert "py" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    plan = _plan_of(config)
    assert [tuple(map(tuple, r))[0] + (r[1],) for r in plan["requests"]] == [("batching", "knock-in"),
                                                                             ("batching", "knock-out")]
    assert plan["rqmt"] == {"cpu": 1, "mem": 4, "gpu": 1, "time": 4.0} and plan["score_rqmt"] == plan["rqmt"]
    assert plan["refs"].endswith("test.ref.txt")
    assert (setup / "work").is_dir()


@pytest.mark.parametrize(("rqmt", "message"), [
    ("gpu=x", "--rqmt gpu needs a number, got 'x'"),
    ("disk=4", "--rqmt expects cpu=N, mem=GB, gpu=N, gpu_name=TYPE or time=HOURS, got 'disk=4'"),
    ("cpu", "--rqmt expects cpu=N, mem=GB, gpu=N, gpu_name=TYPE or time=HOURS, got 'cpu'"),
])
def test_a_bad_rqmt_is_a_one_line_error(rqmt, message, tmp_path):
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(tmp_path / "s"), "--rqmt", rqmt,
                                      "--dry-run"])
    assert result.exit_code == 2 and result.output == f"config-bisect: error: {message}\n"
    assert not (tmp_path / "s").exists()


def test_dry_run_with_confirm_seeds_writes_the_asynchronous_second_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--knobs", "l2",
                                      "--confirm-seeds", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    tree = ast.parse((setup / "config" / "bisect.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert isinstance(functions["py"], ast.AsyncFunctionDef) and "confirm_demo_ctc" in ast.unparse(functions["py"])
    assert "extra_seeds=2" in ast.unparse(functions["confirm_demo_ctc"])


def test_submit_strategy_needs_test_wers(tmp_path):
    orig, start = (tmp_path / f"{side}.config" for side in ("orig", "start"))
    orig.write_text("#!rnn.py\nlearning_rate = 0.1\n")
    start.write_text("#!rnn.py\nlearning_rate = 0.2\n")
    result = CliRunner().invoke(cli, ["submit", str(orig), str(start), "-o", str(tmp_path / "s"), "--strategy",
                                      "adaptive", "--dry-run"])
    assert result.exit_code == 2 and "--strategy needs test WERs: give --vocab and --refs" in result.output


def test_submit_without_sisyphus_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr("bisect_cli.submit_cmd.sisyphus_available", lambda: False)
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(tmp_path / "s")])
    assert result.exit_code == 2 and "github.com/rwth-i6/sisyphus" in result.output


@NEEDS_SISYPHUS
def test_manager_runs_the_plan_like_the_local_runner(ff_pair, ff_fixed_run, tmp_path):
    """The pair with a real gap (start cannot learn) through Sisyphus: the same WERs, effects and verdict as the local
    run of the same plan, in the same results.json."""
    orig, start, vocab, refs = ff_pair
    setup, saved = tmp_path / "setup", tmp_path / "plan.json"
    planned = CliRunner().invoke(cli, ["plan", str(orig), str(start), "--gpus", "2", "--hours-per-training", "24",
                                       "--trials", "1", "-o", str(saved)])
    assert planned.exit_code == 0, planned.output
    result = CliRunner().invoke(cli, ["submit", str(orig), str(start), *FIXED_PLAN, "--vocab", str(vocab), "--refs",
                                      str(refs), "-o", str(setup), "--plan", str(saved)])
    assert result.exit_code == 0, result.output
    results = json.loads((setup / "output/bisect/ff/results.json").read_text())
    # the plan reached the gather job: a fixed list is no row of the table, the report says so
    assert results["plan"]["strategy"] is None and results["plan"]["table"] == json.loads(saved.read_text())
    report = (setup / "output/bisect/ff/report/report.md").read_text()
    assert "- The run used other settings (a fixed list of hybrids) than any row of the table" in report
    outputs = sorted(p.relative_to(setup / "alias").as_posix() for p in (setup / "alias").glob("bisect/*/*/*"))
    assert {"bisect/ff/knock-in.lr/hybrid", "bisect/ff/knock-out.lr/hybrid"} <= set(outputs)
    assert all(list((p / "finished").parent.glob("finished*")) for p in (setup / "alias").rglob("*") if p.is_symlink())
    local = json.loads((ff_fixed_run[0] / "results.json").read_text())
    assert set(results) == set(local)
    assert results["hybrids"] == local["hybrids"] and results["gap"] == local["gap"]
    assert results["verdict"] == local["verdict"] and results["headline"] == local["headline"]
    assert {h["label"]: h["verdict"] for h in results["hybrids"] if h["direction"]} == {
        "knock-in:lr": "explains", "knock-out:lr": "explains"}
    assert [line for line in result.output.splitlines() if line in results["verdict"]] == results["verdict"]
    # a second manager run starts nothing
    jobs_before = {p: p.stat().st_mtime for p in (setup / "work").rglob("finished")}
    sis = Path(sys.executable).with_name("sis")
    second = subprocess.run([str(sis), "m", "-r", "config/bisect.py"], cwd=setup, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0
    assert {p: p.stat().st_mtime for p in (setup / "work").rglob("finished")} == jobs_before
    assert not list((setup / "work").rglob("error.*"))


@NEEDS_SISYPHUS
def test_async_confirmation_stage_reuses_finished_trainings(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    args = [str(ORIG), str(START), "--knobs", "batching", "--direction", "knock-in", "--epochs", "4",
            "--baseline-seeds", "1", "-o", str(setup)]
    result = CliRunner().invoke(cli, ["submit", *args, "--confirm-seeds", "1"])
    assert result.exit_code == 0, result.output
    first = json.loads((setup / "output/bisect/demo_ctc/results.json").read_text())
    confirm = json.loads((setup / "output/bisect/demo_ctc_confirm/results.json").read_text())
    movers = {h["label"] for h in first["hybrids"] if h["direction"] and (h["gap_share"] or 0) >= 0.5}
    confirmed = {h["label"]: h["runs"] for h in confirm["hybrids"] if h["direction"]}
    assert confirmed == {label: 2 for label in movers}  # one more seed, only where the gap moved
    # seed 1 of every training is one Sisyphus job shared by both stages: trained once
    trainings = list((setup / "work").rglob("TrainJob.*"))
    assert len(trainings) == 2 + len(movers) * 2 + (len(first["hybrids"]) - 2 - len(movers))


def test_dry_run_with_a_strategy_writes_an_async_workflow_over_the_units(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--strategy", "adaptive",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "strategy adaptive over 5 units (optimizer, batching, pretrain, l2, dropout)" in result.output
    tree = ast.parse((setup / "config" / "bisect.py").read_text())
    py = next(n for n in tree.body if getattr(n, "name", None) == "py")
    assert isinstance(py, ast.AsyncFunctionDef) and "strategy_demo_ctc" in ast.unparse(py)
    units = next(n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "UNITS")
    assert ast.literal_eval(units) == {k: [k] for k in ("optimizer", "batching", "pretrain", "l2", "dropout")}
    assert _plan_of((setup / "config" / "bisect.py").read_text())["seeds"] is None  # the strategy's own default
    refused = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--strategy", "adaptive",
                                       "--knobs", "l2", "--dry-run"])
    assert refused.exit_code == 2 and "--strategy chooses the hybrids itself" in refused.output
