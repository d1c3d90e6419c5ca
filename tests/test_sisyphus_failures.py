"""Sisyphus: a training that fails is run once more by Sisyphus, then recorded as failed, and the bisection goes on
without it (a strategy's round does not stall); any other failing job still stops the manager and names its folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from attribution.strategies import SeedNumbers
from bisect_cli.main import cli
from bisect_cli.submit_cmd import failed_jobs
from jobs.engine_settings import DEFAULT_RQMT, settings_text
from jobs.task_tries import TRAIN_TRIES, final_errors
from tests.ff_pair import UNITS
from tests.test_jobs import NEEDS_SISYPHUS

START_SEED = SeedNumbers().first(frozenset(UNITS))  # a strategy's first seed of start (every unit at start's value)
FAILING_SEED = START_SEED + 2  # start's third baseline seed cannot find its training data


def _variant(config: Path, folder: Path, old: str, new: str) -> Path:
    """`config` with `old` replaced by `new`, under the same file name (the pair keeps its name) in `folder`."""
    text = config.read_text()
    assert text.count(old) == 1
    path = folder / config.parent.name / config.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(old, new))
    return path


def failing_start(start: Path, folder: Path) -> Path:
    """start, but its training with seed FAILING_SEED reads a file that does not exist (RETURNN exits non-zero on
    every try; the local runner's retry test breaks a training the same way). Loaded for the diff (no seed) it is
    start: the pair keeps its three units."""
    return _variant(start, folder, 'train = {**hdf_opts, "files": [data_dir + "/train.hdf"]}',
                    'train = {**hdf_opts, "files": [data_dir + "/train.hdf" if config.int("random_seed", 0) != '
                    f'{FAILING_SEED} else "/no/such/folder/train.hdf"]}}')


@pytest.fixture(scope="module")
def failing_strategy_setup(ff_pair, tmp_path_factory):
    """`submit --strategy adaptive` over the ff pair whose start fails to train with seed FAILING_SEED:
    (setup folder, CLI result)."""
    orig, start, vocab, refs = ff_pair
    folder = tmp_path_factory.mktemp("failing")
    setup = folder / "setup"
    result = CliRunner().invoke(cli, ["submit", str(orig), str(failing_start(start, folder)), "-o", str(setup),
                                      "--strategy", "adaptive", "--jobs", "2", "--vocab", str(vocab), "--refs",
                                      str(refs)])
    return setup, result


def _job(setup: Path, alias: str) -> Path:
    """The job folder of `bisect/ff/<alias>`: the manager links the jobs it knows when it starts, an asynchronous
    workflow's later jobs name their aliases in their `info` files."""
    link = setup / "alias" / "bisect" / "ff" / alias
    if link.is_symlink():
        return Path(os.path.realpath(link))
    (info,) = [info for info in (setup / "work").glob("jobs/bisect_jobs/*/info")
               if f"ALIAS: bisect/ff/{alias}\n" in info.read_text()]
    return info.parent


@NEEDS_SISYPHUS
def test_a_training_that_fails_again_is_left_out_and_the_strategy_goes_on(failing_strategy_setup):
    setup, result = failing_strategy_setup
    assert result.exit_code == 0, result.output  # the manager was not stopped: the bisection finished
    assert not failed_jobs(setup)
    results = json.loads((setup / "output/bisect/ff/results.json").read_text())
    strategy = results["strategy"]
    failed = [j for j in results["jobs"] if j["status"] == "failed"]
    assert ("start", FAILING_SEED) in {(j["label"], j["seed"]) for j in failed}
    assert strategy["failed"] == len(failed) >= 1 and strategy["runs"] == len(results["jobs"])
    assert f"{len(failed)} training(s) failed; the strategy went on without them" in strategy["notes"]
    assert strategy["culprits"] == ["lr"]  # start's other seeds still measure the gap
    for job in failed:  # as the local runner records a failed training
        assert job["wer"] is None and job["score_key"] is None and job["final_epoch"] is None
        assert re.match(r"RETURNN exited with \d+: ", job["reason"]) and job["log"].endswith("/returnn.stdout.txt")
    rows = {h["label"]: h for h in results["hybrids"]}
    assert rows["start"]["failed"] >= 1 and rows["start"]["runs"] >= 2
    assert f"{len(failed)} training(s) failed and were left out" in results["verdict"]
    report = (setup / "output/bisect/ff/report/report.md").read_text()
    assert f"- start seed {FAILING_SEED} failed: RETURNN exited with" in report


@NEEDS_SISYPHUS
def test_sisyphus_runs_a_failed_training_once_more_then_records_the_failure(failing_strategy_setup):
    setup, _ = failing_strategy_setup
    train = _job(setup, f"start/seed{FAILING_SEED}/train")
    assert (train / "finished").exists() and not list(train.glob("error.*"))
    first_try = (train / "log.run.1.error.01").read_text()  # Sisyphus' log of the first try, moved aside
    assert f"training failed (try 1 of {TRAIN_TRIES}; Sisyphus runs it again): RETURNN exited with" in first_try
    assert not list(train.glob("log.run.1.error.02"))  # no third try
    record = json.loads((train / "output/train.json").read_text())
    assert (record["status"], record["tries"]) == ("failed", TRAIN_TRIES) and record["returncode"] not in (0, None)
    for stdout in ("returnn.stdout.1.txt", "returnn.stdout.txt"):  # RETURNN's output of each try is kept
        assert "/no/such/folder/train.hdf" in (train / "output/train" / stdout).read_text()
    score = _job(setup, f"start/seed{FAILING_SEED}/score")
    assert json.loads((score / "output/score.json").read_text())["wer"] is None
    assert not (score / "output/test.hyp.txt").exists() and not list(score.rglob("returnn.forward.*"))  # no recognition
    trained = json.loads((_job(setup, f"start/seed{START_SEED}/train") / "output/train.json").read_text())
    assert (trained["status"], trained["tries"]) == ("ok", 1)


CRASH_IN_EPOCH_2_ONCE = textwrap.dedent('''

    def get_network(epoch, **_kwargs):
        """RETURNN asks for the network of each epoch: epoch 2 of the first try crashes (a marker in RETURNN's
        working directory, the training folder, remembers that it did)."""
        import os
        if epoch == 2 and not os.path.exists("crashed_once"):
            open("crashed_once", "w").close()
            raise RuntimeError("crash in epoch 2 of the first try")
        return network
    ''')


@NEEDS_SISYPHUS
def test_the_retry_continues_from_the_last_checkpoint(ff_pair, tmp_path):
    orig = ff_pair[0]
    config = tmp_path / "crash_once.config"
    config.write_text(orig.read_text() + CRASH_IN_EPOCH_2_ONCE)
    setup = tmp_path / "setup"
    (setup / "config").mkdir(parents=True)
    (setup / "work").mkdir()
    (setup / "settings.py").write_text(settings_text("local", DEFAULT_RQMT, (), cpus=2))
    (setup / "config" / "train.py").write_text(textwrap.dedent(f'''
        from sisyphus import tk

        from jobs.bisect_jobs import TrainJob
        from jobs.graph import content_path


        def py():
            tk.register_output("train.json", TrainJob(content_path({str(config)!r}), 1).out_result)
        '''))
    sis = Path(sys.executable).with_name("sis")
    run = subprocess.run([str(sis), "m", "-r", "config/train.py"], cwd=setup, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    (train,) = (setup / "work" / "jobs" / "bisect_jobs").glob("TrainJob.*")
    assert not list(train.glob("error.*")) and "crash in epoch 2" in (train / "log.run.1.error.01").read_text()
    record = json.loads((train / "output" / "train.json").read_text())
    assert (record["status"], record["tries"], record["final_epoch"]) == ("ok", 2, 2)
    first, second = ((train / "output" / "train" / name).read_text()
                     for name in ("returnn.stdout.1.txt", "returnn.stdout.txt"))
    assert "train epoch 1, finished" in first and "crash in epoch 2 of the first try" in first
    assert "loading weights from net-model/network.001" in second and "start training at epoch 2" in second
    assert "train epoch 1," not in second and "train epoch 2, finished" in second


@NEEDS_SISYPHUS
def test_status_shows_the_recorded_failure(failing_strategy_setup):
    setup, _ = failing_strategy_setup
    result = CliRunner().invoke(cli, ["status", str(setup), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert "start" in status["failed"] and status["complete"] and status["next"]["finished"]
    (failure,) = [f for f in status["failures"] if f["hybrid"] == "start"]
    assert failure["seed"] == FAILING_SEED and failure["error"].startswith("training: RETURNN exited with")
    assert failure["log"].endswith("/returnn.stdout.txt")
    results = json.loads((setup / "output/bisect/ff/results.json").read_text())
    assert status["next"]["culprits"] == results["strategy"]["culprits"]  # the replay reads the failure alike


@NEEDS_SISYPHUS
def test_a_failing_scoring_stops_the_manager_with_its_folder(ff_pair, tmp_path):
    """Only a training's failure is recorded: a job that fails otherwise (here the test data a recognition reads is
    missing) stays in Sisyphus' error state, and `submit` stops the manager (an asynchronous config awaiting the
    job would wait forever)."""
    orig, start, vocab, refs = ff_pair
    broken = _variant(start, tmp_path, 'data_dir + "/%s.hdf" % config.value', '"/no/such/folder/%s.hdf" % config.value')
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(orig), str(broken), "--knobs", "lr", "--direction", "knock-in",
                                      "--baseline-seeds", "1", "--confirm-seeds", "1", "--vocab", str(vocab), "--refs",
                                      str(refs), "-o", str(setup)])
    assert result.exit_code == 2
    assert "the bisection did not finish (failed jobs:" in result.output
    score = _job(setup, "start/seed1/score")
    assert str(score) in result.output and final_errors(score)
    assert json.loads((_job(setup, "start/seed1/train") / "output/train.json").read_text())["status"] == "ok"


def test_an_error_with_a_try_left_is_not_a_failed_job(tmp_path):
    """Between a training's failed first try and its second, Sisyphus' error marker is not final: `submit` must not
    stop the manager for it, and `status` does not call it failed."""
    train = tmp_path / "work" / "jobs" / "bisect_jobs" / "TrainJob.abc"
    score = tmp_path / "work" / "jobs" / "bisect_jobs" / "RecognizeScoreJob.abc"
    for job in (train, score):
        job.mkdir(parents=True)
        (job / "log.run.1").write_text("Traceback\nRuntimeError: training failed\n")
    (train / "error.run.1").write_text("")
    assert final_errors(train) == [] and failed_jobs(tmp_path) == []
    (train / "log.run.1.error.01").write_text("")  # the manager moved the first try's log: this was the last try
    assert final_errors(train) == [train / "error.run.1"] and failed_jobs(tmp_path) == [str(train)]
    (score / "error.run.1").write_text("")  # a scoring has one try
    assert failed_jobs(tmp_path) == [str(score), str(train)]
