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

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
NEEDS_SISYPHUS = pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not "
                                    "installed; install it from github.com/rwth-i6/sisyphus to run this test")


def test_dry_run_writes_a_complete_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--engine", "slurm",
                                      "--knobs", "batching", "--rqmt", "gpu=1", "--rqmt", "time=4", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run: nothing started" in result.output and "sis m -r config/bisect.py" in result.output
    settings = (setup / "settings.py").read_text()
    config = (setup / "config" / "bisect.py").read_text()
    ast.parse(settings)
    assert "SimpleLinuxUtilityForResourceManagementEngine(default_rqmt=" in settings
    tree = ast.parse(config)
    assert "py" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    call = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "PLAN")
    plan = ast.literal_eval(call.keywords[0].value)  # Plan(**{...})
    assert [tuple(map(tuple, r))[0] + (r[1],) for r in plan["requests"]] == [("batching", "knock-in"),
                                                                             ("batching", "knock-out")]
    assert plan["rqmt"] == {"cpu": 1, "mem": 4, "gpu": 1, "time": 4.0} and plan["score_rqmt"] == plan["rqmt"]
    assert plan["refs"].endswith("test.ref.txt")
    assert (setup / "work").is_dir()


def test_submit_without_sisyphus_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr("bisect_cli.submit_cmd.sisyphus_available", lambda: False)
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(tmp_path / "s")])
    assert result.exit_code == 2 and "github.com/rwth-i6/sisyphus" in result.output


@NEEDS_SISYPHUS
def test_manager_runs_the_plan_like_the_local_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    args = [str(ORIG), str(START), "--knobs", "batching", "--direction", "knock-in", "--epochs", "2"]
    result = CliRunner().invoke(cli, ["submit", *args, "-o", str(setup), "--baseline-seeds", "1"])
    assert result.exit_code == 0, result.output
    results = json.loads((setup / "output/bisect/demo_ctc/results.json").read_text())
    outputs = sorted(p.relative_to(setup / "alias").as_posix() for p in (setup / "alias").glob("bisect/*/*/*"))
    assert "bisect/demo_ctc/knock-in.batching/hybrid" in outputs
    assert all(list((p / "finished").parent.glob("finished*")) for p in (setup / "alias").rglob("*") if p.is_symlink())
    # the same plan with the local runner gives the same WERs
    local = CliRunner().invoke(cli, ["run", *args, "-o", str(tmp_path / "local"), "--baseline-seeds", "1"])
    assert local.exit_code == 0, local.output
    local_results = json.loads((tmp_path / "local" / "results.json").read_text())
    by_label = {h["label"].replace(":", "."): h["wer_mean"] for h in local_results["hybrids"]}
    assert {h["label"].replace(":", "."): h["wer_mean"] for h in results["hybrids"]} == pytest.approx(by_label)
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


@NEEDS_SISYPHUS
def test_a_failing_job_stops_the_manager_with_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.config"
    # loads (submit reads the configs for the requests) but RETURNN cannot train it
    broken.write_text(START.read_text().replace("max_seqs = 40", "max_seqs = \"forty\""))
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(broken), "--knobs", "batching", "--direction",
                                      "knock-in", "--epochs", "1", "--baseline-seeds", "1", "--confirm-seeds", "1",
                                      "-o", str(setup)])
    assert result.exit_code == 2
    assert "the bisection did not finish (failed jobs:" in result.output


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
    refused = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--strategy", "adaptive",
                                       "--knobs", "l2", "--dry-run"])
    assert refused.exit_code == 2 and "--strategy chooses the hybrids itself" in refused.output
