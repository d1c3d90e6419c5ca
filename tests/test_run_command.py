"""`config-bisect run` without a strategy (the README's main command) on a pair with a real gap, its options and
errors, and the work-folder lock held for the whole command (two real processes)."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from tests.conftest import PROJECT_ROOT
from tests.ff_pair import write_pair
from tests.test_results import HYBRID_KEYS, SCHEMA


@pytest.fixture(scope="module")
def failing_pair(tmp_path_factory) -> tuple[Path, Path]:
    """The pair reading a data folder that does not exist: every training fails within seconds."""
    orig, start, _, _ = write_pair(tmp_path_factory.mktemp("failing"), tmp_path_factory.mktemp("x") / "no-data")
    return orig, start


def test_run_trains_the_hybrids_and_says_which_knob_closes_the_gap(ff_fixed_run):
    work, first, _ = ff_fixed_run
    assert first.exit_code == 0, first.output
    results = json.loads((work / "results.json").read_text())
    assert set(results) == SCHEMA and all(set(h) == HYBRID_KEYS for h in results["hybrids"])
    assert results["scorer"] == "test WER" and results["strategy"] is None
    assert sorted((j["label"], j["seed"]) for j in results["jobs"]) == [
        ("knock-in:lr", 1), ("knock-out:lr", 1), ("orig", 1), ("orig", 2), ("start", 1), ("start", 2)]
    assert all(j["status"] == "ok" and j["wer"] is not None and len(j["segments"]) == 20 for j in results["jobs"])
    rows = {h["label"]: h for h in results["hybrids"]}
    assert rows["start"]["wer_mean"] > rows["orig"]["wer_mean"] and results["gap"]["low"] > 0  # a real gap
    # start's learning rate is the culprit: orig's closes the gap (knock-in), start's re-opens it (knock-out)
    for label in ("knock-in:lr", "knock-out:lr"):
        assert rows[label]["verdict"] == "explains" and rows[label]["gap_share"] > 0.8, rows[label]
    assert rows["knock-in:lr"]["effect"] == pytest.approx(rows["start"]["wer_mean"] - rows["knock-in:lr"]["wer_mean"])
    assert results["verdict"][0].startswith("gap start - orig: +")
    assert {results["verdict"][1], results["verdict"][2]} == {rows["knock-in:lr"]["sentence"],
                                                              rows["knock-out:lr"]["sentence"]}
    # the console says what results.json says, and the report leads with the same verdict
    lines = first.output.splitlines()
    assert [line for line in lines if line in results["verdict"]] == results["verdict"]
    assert f"**{results['headline']} (gap start − orig " in (work / "report.md").read_text()
    assert (work / "report.html").is_file()
    assert lines[-1].startswith("wall time ") and lines[-1].endswith("6 trainings run, 0 reused from earlier runs")
    manifest = json.loads((work / "hybrids" / "manifest.json").read_text())
    assert sorted(h["id"] for h in manifest["hybrids"]) == ["knock-in:lr", "knock-out:lr"]


def test_a_rerun_reuses_every_finished_job(ff_fixed_run):
    work, first, again = ff_fixed_run
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1].endswith("0 trainings run, 6 reused from earlier runs")
    results = json.loads((work / "results.json").read_text())
    assert all(j["reused"] for j in results["jobs"]) and results["trainings"]["reused"] == 6


@pytest.mark.parametrize(("option", "message"), [
    (["--vocab", "VOCAB"], "--vocab and --refs go together"),
    (["--vocab", "MISSING", "--refs", "REFS"], "MISSING: cannot read the vocabulary"),
    (["--vocab", "VOCAB", "--refs", "MISSING"], "MISSING: cannot read the references"),
])
def test_bad_vocabulary_or_references_are_refused_before_anything_is_written(ff_pair, tmp_path, option, message):
    orig, start, vocab, refs = ff_pair
    names = {"VOCAB": str(vocab), "REFS": str(refs), "MISSING": str(tmp_path / "missing.txt")}
    result = CliRunner().invoke(cli, ["run", str(orig), str(start), "-o", str(tmp_path / "work"),
                                      *[names.get(o, o) for o in option]])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith(f"config-bisect: error: {message.replace('MISSING', names['MISSING'])}")
    assert not (tmp_path / "work").exists()


def test_failed_trainings_are_reported_kept_and_retried_on_request(failing_pair, tmp_path):
    orig, start = failing_pair
    args = ["run", str(orig), str(start), "-o", str(tmp_path / "work"), "--knobs", "l2", "--direction", "knock-in",
            "--baseline-seeds", "1"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    failed = [line for line in first.output.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 3 and all("RETURNN exited with" in line and "(log: " in line for line in failed)
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    assert results["verdict"] == ["no verdict: the orig or start baseline did not finish"]
    assert first.output.splitlines()[-1].endswith("3 trainings run, 0 reused from earlier runs")
    kept = CliRunner().invoke(cli, args)
    assert kept.output.splitlines()[-1].endswith("0 trainings run, 3 reused from earlier runs")
    retried = CliRunner().invoke(cli, [*args, "--retry-failed"])
    assert retried.exit_code == 0, retried.output
    assert retried.output.splitlines()[-1].endswith("3 trainings run, 0 reused from earlier runs")


def _lock_is_free(lock_file: Path) -> bool:
    if not lock_file.exists():
        return True
    with open(lock_file) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_the_work_folder_is_locked_for_the_whole_command(failing_pair, tmp_path):
    """Regression: the lock was taken per batch of trainings, so the hybrids (and results.json) were written
    outside it and two runs on one folder could interleave."""
    orig, start = failing_pair
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "bisect_cli", "run", str(orig), str(start), "-o", str(work), "--knobs", "l2",
           "--direction", "knock-in"]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    first = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (work / "hybrids").exists():  # the first run is writing (and proving) its hybrids
        assert time.monotonic() < deadline and first.poll() is None, "the run did not get to its hybrids"
        time.sleep(0.05)
    assert not _lock_is_free(work / ".lock"), "hybrids are written without holding the work folder's lock"
    assert (work / ".lock").read_text() == str(first.pid)
    second = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first run must still be running for this test to say anything"
    assert second.returncode == 2
    assert second.stderr.strip() == (f"config-bisect: error: {work}: another config-bisect run (pid {first.pid}) "
                                     f"is using this work folder")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    results = json.loads((work / "results.json").read_text())
    assert results["trainings"]["run"] == 7  # 3 seeds each of orig and start by default, one of the hybrid
    assert _lock_is_free(work / ".lock")
