"""`status` and `report` on real bisections: a local run watched while it trains, a partial copy of it, a real
failed training, a strategy run, Sisyphus setups (when RWTH Sisyphus is installed), and the report in a real
browser (Playwright driving the system Chromium)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.strategies import SeedNumbers
from bisect_cli.main import cli
from bisect_cli.submit_cmd import sisyphus_available
from runner.local import Job, run_jobs
from runner.run_plan import read_run_plan
from runner.settings import RunSettings
from tests.browser_checks import check_report, chromium_path
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
NEEDS_SISYPHUS = pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not "
                                    "installed; install it from github.com/rwth-i6/sisyphus to run this test")
PACKAGE_MANAGERS = ("apt-get", "dnf", "yum", "zypper", "pacman", "apk")


def require_browser() -> None:
    """Skip only where no package manager could install Chromium; elsewhere a missing browser is a failure."""
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("Playwright for Python is missing: pip install -e '.[test]'")
    if chromium_path() is None:
        manager = next((m for m in PACKAGE_MANAGERS if shutil.which(m)), None)
        if manager is None:
            pytest.skip("no system Chromium and no package manager to install it: the report's browser test needs "
                        "`chromium` (Playwright's own browser download is not used)")
        pytest.fail(f"the system Chromium is missing: `{manager} install -y chromium` (.ci/run does this)")
FIXED = ["--knobs", "batching", "--direction", "both", "--epochs", "2", "--baseline-seeds", "2"]
ONE_HYBRID = ["--knobs", "batching", "--direction", "knock-in", "--epochs", "1", "--baseline-seeds", "1"]


def status_of(folder: Path) -> dict:
    result = CliRunner().invoke(cli, ["status", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory) -> tuple[Path, list[dict], str]:
    """The demo pair, batching in both directions, 2 epochs: `run` in its own process, its status taken every
    second while it trains, with the pair's decision table (`plan -o`) as --plan; (work folder, the statuses seen
    while trainings ran, run's output)."""
    work = tmp_path_factory.mktemp("run") / "work"
    plan = work.parent / "plan.json"
    planned = CliRunner().invoke(cli, ["plan", str(ORIG), str(START), "--gpus", "2", "--hours-per-training", "48",
                                       "--trials", "2", "-o", str(plan)])
    assert planned.exit_code == 0, planned.output
    env = {**os.environ, "CONFIG_BISECT_CACHE": str(tmp_path_factory.mktemp("cache")),
           "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bisect_cli", "run", str(ORIG), str(START), "-o", str(work),
                             *FIXED, "--plan", str(plan)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seen = []
    while proc.poll() is None:
        if (work / "run_plan.json").exists():
            snapshot = status_of(work)
            if snapshot["running"]:
                seen.append(snapshot)
        time.sleep(1)
    output = proc.stdout.read()
    assert proc.returncode == 0, output[-3000:]
    return work, seen, output


def test_status_while_the_run_trains_and_after_it(watched_run):
    work, seen, output = watched_run
    assert seen, "no status was taken while a training ran"
    during = seen[0]
    assert set(during) >= {"done", "running", "waiting", "failed"} and not during["complete"]
    running = [r for r in during["runs"] if r["status"] == "running"]
    assert running and all(r["detail"].startswith(("training, epoch", "recognition")) for r in running)
    assert during["trainings"]["running"] + during["trainings"]["waiting"] + during["trainings"]["done"] == 6
    assert "So far:" in during["best_guess"] or during["best_guess"].startswith("No verdict yet")
    after = status_of(work)
    hybrids = ["orig", "start", "knock-in:batching", "knock-out:batching"]
    assert sorted(after["done"]) == sorted(hybrids) and not after["running"] + after["waiting"] + after["failed"]
    assert after["complete"] and after["time_left_seconds"] == 0 and after["next"]["strategy"] is None
    assert "wall time" in output and "6 trainings run, 0 reused" in output  # run says what it cost
    watched = CliRunner().invoke(cli, ["status", str(work), "--watch", "--interval", "1"])
    assert watched.exit_code == 0 and watched.output.count("best guess:") == 1  # nothing left to watch: one screen


def test_a_folder_that_is_no_bisection_is_refused_in_one_line(tmp_path):
    for command in ("status", "report"):
        result = CliRunner().invoke(cli, [command, str(tmp_path)])
        assert result.exit_code == 2 and "not a work folder of `config-bisect run`" in result.output
        assert "Traceback" not in result.output


def test_the_report_command_writes_what_run_wrote(watched_run, tmp_path):
    work, _, _ = watched_run
    written = (work / "report.html").read_text()
    result = CliRunner().invoke(cli, ["report", str(work), "-o", str(tmp_path)])
    assert result.exit_code == 0 and "partial" not in result.output, result.output
    again = (tmp_path / "report.html").read_text()

    def verdict(text: str) -> str:
        return text[text.index('id="verdict"'):].split("</p>")[0]

    assert verdict(again) == verdict(written) and "Partial report" not in written

    def plan_row(text: str) -> str:
        return text[text.index('<section id="plan-row">'):].split("</section>")[0]

    assert plan_row(again) == plan_row(written)  # the plan from results.json, GPU-hours at the plan's hours
    assert "<code>accum_grad_multiple_step</code>" in written  # the knob's change, from the manifest's diff


def test_a_partial_copy_shows_waiting_running_and_a_real_failure(watched_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(watched_run[0], work)
    jobs = {json.loads(p.read_text())["label"]: p.parent for p in work.glob("jobs/*/job.json")}
    shutil.rmtree(jobs["knock-in:batching"])  # not started yet
    (jobs["start"] / "result.json").unlink()  # started, no result: running while a runner holds the folder
    broken = tmp_path / "broken.config"
    broken.write_text(START.read_text().replace("max_seqs = 40", "max_seqs = 40 +"))
    shutil.rmtree(jobs["knock-out:batching"])
    failed = run_jobs([Job("knock-out:batching", str(broken), 1, 1)], RunSettings(broken, broken, work, parallel=1))[0]
    assert failed.status == "failed"
    (work / ".lock").write_text(str(os.getpid()))  # the runner's lock was released: "ours" again
    status = status_of(work)
    assert status["waiting"] == ["knock-in:batching"] and status["running"] == ["start"]
    assert status["failed"] == ["knock-out:batching"] and status["done"] == ["orig"]
    failure = status["failures"][0]
    assert "SyntaxError" in failure["error"] and Path(failure["log"]).is_file()
    result = CliRunner().invoke(cli, ["report", str(work)])
    assert result.exit_code == 0 and "(partial: 3 of 6 trainings finished, 1 running, 1 waiting, 1 failed)" in \
        result.output, result.output
    page = (work / "report.html").read_text()
    assert "Partial report:" in page and "SyntaxError" in page
    (work / ".lock").write_text("999999999")  # the runner is gone: the started job is interrupted, it waits
    status = status_of(work)
    assert "start" in status["waiting"] and "interrupted" in json.dumps(status["runs"])
    assert any("rerun the same `config-bisect run` command" in note for note in status["notes"])


def test_status_of_a_strategy_run_says_what_it_asks_next(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    args = ["run", str(ORIG), str(START), "-o", str(work), "--strategy", "one-at-a-time", "--seeds", "1",
            "--epochs", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    status = status_of(work)
    assert status["complete"] and status["next"]["finished"] and status["next"]["strategy"] == "one-at-a-time"
    start = next(p.parent for p in work.glob("jobs/*/job.json") if json.loads(p.read_text())["label"] == "start")
    shutil.rmtree(start)
    status = status_of(work)
    start_seed = SeedNumbers().first(frozenset(read_run_plan(work).units))  # start: every unit at start's value
    assert status["next"]["asks"] == [{"hybrid": "start", "seed": start_seed}] and status["waiting"] == ["start"]
    assert not status["next"]["finished"] and status["next"]["rounds_done"] == 0


def test_the_demo_report_in_a_real_browser(watched_run):
    require_browser()
    work, _, _ = watched_run
    check = check_report(work / "report.html")
    assert check.console_errors == []
    assert check.images >= 2 and check.broken_images == []
    assert len(check.links) == 6 + 4  # a log per training, a config per hybrid
    assert check.broken_links == []
    assert check.verdict_on_first_screen, check.verdict_box
    assert "gap start − orig" in check.verdict_text and "noise floor" in check.verdict_text
    lines = check.plan_row.splitlines()  # a fixed list of hybrids: no row of the table is the run's
    pick = json.loads((work / "results.json").read_text())["plan"]["table"]["recommended"]
    assert (f"The run used other settings (a fixed list of hybrids, 2 trainings at once) than any row of the table: "
            f"shown is the recommended row, {pick['strategy']} on 2 GPUs.") in lines
    assert "this run\t-\t6\t288\t1\t2.0" in lines  # 6 trainings x 48 h; one round of 48 h


def submitted(tmp_path: Path, monkeypatch, start: Path, *options: str):
    """(setup folder, the result of `submit ORIG START -o SETUP OPTIONS`)."""
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    setup = tmp_path / "setup"
    return setup, CliRunner().invoke(cli, ["submit", str(ORIG), str(start), "-o", str(setup), *options])


@NEEDS_SISYPHUS
def test_status_of_a_sisyphus_strategy_before_the_manager_started(tmp_path, monkeypatch):
    setup, result = submitted(tmp_path, monkeypatch, START, "--strategy", "adaptive", "--jobs", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    status = status_of(setup)
    assert status["engine"] == "sisyphus" and not status["done"] and set(status["waiting"]) <= {"orig", "start"}
    asks = status["next"]["asks"]  # adaptive with 2 GPUs starts with baselines, one round of at most 2 trainings
    assert 1 <= len(asks) <= 2 and {a["hybrid"] for a in asks} == set(status["waiting"])


@NEEDS_SISYPHUS
def test_status_and_report_of_a_sisyphus_run(tmp_path, monkeypatch):
    setup, result = submitted(tmp_path, monkeypatch, START, *ONE_HYBRID)
    assert result.exit_code == 0, result.output
    status = status_of(setup)
    assert sorted(status["done"]) == ["knock-in.batching", "orig", "start"] and status["complete"]
    assert all(r["wer"] is not None and Path(r["log"]).is_file() for r in status["runs"])
    gathered = setup / "output" / "bisect" / "demo_ctc" / "report" / "report.html"
    assert "<code>accum_grad_multiple_step</code>" in gathered.read_text()  # the diff, kept by WriteHybridJob
    result = CliRunner().invoke(cli, ["report", str(setup)])
    assert result.exit_code == 0 and "partial" not in result.output, result.output
    page = (setup / "report" / "report.html").read_text()
    for href in (h.split('"')[0] for h in page.split('href="')[1:]):
        assert (setup / "report" / href).resolve().is_file(), href


@NEEDS_SISYPHUS
def test_a_failed_sisyphus_training_is_shown_with_its_last_error_line(tmp_path, monkeypatch):
    broken = tmp_path / "start" / "demo_ctc.config"
    broken.parent.mkdir()
    # loads (submit reads the configs for the requests) but RETURNN cannot train it
    broken.write_text(START.read_text().replace("max_seqs = 40", "max_seqs = \"forty\""))
    setup, result = submitted(tmp_path, monkeypatch, broken, *ONE_HYBRID)
    assert result.exit_code == 0, result.output  # tried twice, then recorded: the bisection finishes without it
    status = status_of(setup)
    assert status["failed"] == ["start"] and status["complete"]
    failure = status["failures"][0]
    assert failure["error"].startswith("training: RETURNN exited with ") and "Error" in failure["error"]
    text = CliRunner().invoke(cli, ["status", str(setup)]).output
    assert f"FAILED {failure['hybrid']} seed 1: training: " in text
