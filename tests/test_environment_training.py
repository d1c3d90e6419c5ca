"""A second, real RETURNN as an environment: RETURNN 1.20240105.13626 (January 2024, almost two years older than
the pinned one) from the package registry, unpacked into pytest's cache and used as `returnn_root`. The demo
pair trains under both environments (one short epoch each), the environment knob's hybrids train, the recorded
versions are the promised ones; broken and incompatible environments are refused before anything trains."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import returnn
from click.testing import CliRunner

from artefacts.training_log import split_version
from bisect_cli.main import cli
from bisect_cli.plan_inputs import strategy_units
from bisect_cli.submit_cmd import sisyphus_available
from knobs import LoadContext
from runner.environment import load_environment
from runner.pair_environments import PairEnvironments
from runner.probe import probe
from runner.settings import RunSettings
from runner.strategy_run import LocalEvaluate
from tests.conftest import PROJECT_ROOT

OLD_RETURNN = "1.20240105.13626"
OLD_VERSION, OLD_GIT = "1.20240105.013626", "1789232"
NEW_VERSION, NEW_GIT = split_version(returnn.__long_version__)
ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
UNREACHABLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
               "Max retries exceeded", "No route to host", "ConnectTimeout", "ReadTimeout")


@pytest.fixture(scope="session")
def old_returnn(request) -> Path:
    """RETURNN's source tree of the old release (downloaded once into pytest's cache)."""
    cache = Path(request.config.cache.mkdir(f"returnn-{OLD_RETURNN}"))
    root = cache / f"returnn-{OLD_RETURNN}"
    if not (root / "rnn.py").is_file():
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                               "--no-build-isolation", f"returnn=={OLD_RETURNN}", "-d", str(cache)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 and any(s in proc.stdout + proc.stderr for s in UNREACHABLE):
            pytest.skip(f"the package registry is unreachable, cannot download returnn=={OLD_RETURNN}")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        with tarfile.open(cache / f"returnn-{OLD_RETURNN}.tar.gz") as archive:
            archive.extractall(cache, filter="data")
    assert (root / "rnn.py").is_file() and (root / "returnn" / "__init__.py").is_file()
    return root


@pytest.fixture
def old_env(old_returnn, tmp_path) -> Path:
    path = tmp_path / "envs" / "returnn-2024.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"returnn_root": str(old_returnn)}))
    return path


@pytest.fixture
def demo_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path_factory.getbasetemp() / "demo-cache"))


def test_probe_finds_the_old_returnn_and_the_diff_lists_the_environment_knob(old_env):
    found = probe(load_environment(old_env))
    assert (found.returnn_version, found.returnn_git, found.latest_behavior_version) == (OLD_VERSION, OLD_GIT, 20)
    assert "rec" in found.layer_classes and "nadam" in found.optimizer_classes
    result = CliRunner().invoke(cli, [str(ORIG), str(START), "--orig-env", str(old_env), "--json"])
    assert result.exit_code == 0, result.output
    knob = json.loads(result.output)["knobs"][-1]
    assert (knob["name"], knob["category"], knob["fields"]) == ("environment", "environment", ["returnn_root"])
    facts = {c["path"]: (c["orig"], c["start"]) for c in knob["changes"]}
    assert facts["environment.facts.returnn_version"] == (OLD_VERSION, NEW_VERSION)
    plan = CliRunner().invoke(cli, ["plan", str(ORIG), str(START), "--orig-env", str(old_env), "--trials", "3",
                                      "--gpus", "2", "--hours-per-training", "1"])
    assert plan.exit_code == 0 and "environment" in plan.output.splitlines()[0].split(";")[0], plan.output


def test_demo_pair_trains_in_both_environments_and_the_environment_hybrids_train(old_env, demo_cache, tmp_path):
    work = tmp_path / "work"
    args = [str(ORIG), str(START), "-o", str(work), "--knobs", "environment", "--epochs", "1",
            "--baseline-seeds", "1", "--orig-env", str(old_env)]
    result = CliRunner().invoke(cli, ["run", *args])
    assert result.exit_code == 0, result.output
    results = json.loads((work / "results.json").read_text())
    jobs = {j["label"]: j for j in results["jobs"]}
    assert set(jobs) == {"orig", "start", "knock-in:environment", "knock-out:environment"}
    assert all(j["status"] == "ok" and j["wer"] is not None for j in jobs.values())
    recorded = {label: (j["environment"]["returnn_version"], j["environment"]["returnn_git"])
                for label, j in jobs.items()}
    assert recorded == {"orig": (OLD_VERSION, OLD_GIT), "knock-in:environment": (OLD_VERSION, OLD_GIT),
                        "start": (NEW_VERSION, NEW_GIT), "knock-out:environment": (NEW_VERSION, NEW_GIT)}
    # knock-in: start's config in orig's environment; knock-out: orig's config (the demo's orig) in start's
    assert Path(jobs["knock-in:environment"]["config"]).read_text() == START.read_text()
    assert Path(jobs["knock-out:environment"]["config"]).read_text() == ORIG.read_text()
    section = results["environments"]
    assert section["sides"]["orig"]["file"] == str(old_env) and section["warnings"] == []
    assert section["sides"]["orig"]["trained"]["returnn_version"] == OLD_VERSION
    assert "## Environments" in (work / "report.md").read_text()
    manifest = json.loads((work / "hybrids" / "manifest.json").read_text())
    assert {h["id"]: h["environment"]["returnn_root"] for h in manifest["hybrids"]} == {
        "knock-in:environment": "orig", "knock-out:environment": "start"}
    # the user's original logs: orig's matches what the bisection trained orig in, start's own log does not
    # match orig (nothing trains again: every job is reused)
    again = CliRunner().invoke(cli, ["run", *args, "--orig-log", jobs["start"]["log"],
                                     "--start-log", jobs["start"]["log"]])
    assert again.exit_code == 0, again.output
    original = json.loads((work / "results.json").read_text())["environments"]["original"]
    assert original[0].startswith("orig's original training") and "did not reproduce" in original[0]
    assert original[1].startswith("start's original training ran in the environment the bisection reproduced")
    assert all(j["reused"] for j in json.loads((work / "results.json").read_text())["jobs"])


def test_an_incompatible_config_is_refused_per_hybrid_before_anything_trains(old_env, demo_cache, tmp_path):
    newer = tmp_path / "start" / "demo_ctc.config"
    newer.parent.mkdir()
    newer.write_text(START.read_text() + "\nbehavior_version = 21\n")
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["run", str(ORIG), str(newer), "-o", str(work), "--knobs", "environment",
                                      "--epochs", "1", "--orig-env", str(old_env)])
    assert result.exit_code == 2
    assert result.output.strip() == (f"config-bisect: error: knock-in:environment cannot train in environment "
                                     f"{old_env}: behavior_version 21 is newer than RETURNN {OLD_VERSION} knows (20)")
    assert not (work / "jobs").exists()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A Python without numpy, TensorFlow or RETURNN."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return venv / "bin" / "python"


@pytest.mark.parametrize("with_root, cause", [
    (False, "RETURNN cannot be imported: ModuleNotFoundError: No module named 'returnn'"),
    (True, "TensorFlow cannot be loaded: ModuleNotFoundError: No module named 'numpy'"),
])
def test_an_environment_that_cannot_run_returnn_is_a_one_line_error(bare_python, old_returnn, tmp_path, with_root,
                                                                    cause):
    env = tmp_path / "bare.json"
    root = {"returnn_root": str(old_returnn)} if with_root else {}
    env.write_text(json.dumps({"python": str(bare_python), **root}))
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["run", str(ORIG), str(START), "-o", str(work), "--start-env", str(env)])
    assert result.exit_code == 2
    assert result.output.strip() == f"config-bisect: error: {env}: environment with python {bare_python}: {cause}"
    assert not work.exists()


@pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not installed; install "
                    "it from github.com/rwth-i6/sisyphus to run this test")
def test_sisyphus_trains_the_environment_hybrid_as_its_own_job(old_env, demo_cache, tmp_path):
    setup = tmp_path / "setup"
    result = CliRunner().invoke(cli, ["submit", str(ORIG), str(START), "-o", str(setup), "--knobs", "environment",
                                      "--direction", "knock-in", "--epochs", "1", "--baseline-seeds", "1",
                                      "--orig-env", str(old_env)])
    assert result.exit_code == 0, result.output
    trainings = sorted((setup / "work").rglob("TrainJob.*"))
    assert len(trainings) == 3  # start's config in start's and in orig's environment: two jobs
    results = json.loads((setup / "output/bisect/demo_ctc/results.json").read_text())
    runs = {r["label"]: r["recorded"]["returnn_version"] for r in results["environments"]["runs"]}
    assert runs == {"orig": OLD_VERSION, "start": NEW_VERSION, "knock-in:environment": OLD_VERSION}
    assert results["environments"]["warnings"] == []


def test_strategies_switch_the_environment_as_a_unit(old_env, write_config, tmp_path):
    """A strategy's hybrid names units at start's value; the environment unit picks the environment (no training
    here: the jobs a strategy's question becomes)."""
    orig = write_config("orig/x.config", "#!rnn.py\nlearning_rate = 0.1\n")
    start = write_config("start/x.config", "#!rnn.py\nlearning_rate = 0.2\n")
    environments = PairEnvironments.from_files(str(old_env), None)
    knobs, _ = environments.knobs(compare_hardware=False)
    units, _, write_hybrid = strategy_units(orig, start, tmp_path / "hybrids", LoadContext(), None, knobs)
    assert set(units) == {"lr", "environment"}
    settings = RunSettings(orig, start, tmp_path / "work", epochs=1, parallel=1, environments=environments)
    evaluate = LocalEvaluate(settings, units, write_hybrid)
    # lr at start's value, environment at orig's: start's config in orig's environment (knock-in:environment)
    label, config, written = evaluate.config_of(frozenset({"lr"}))
    job = evaluate._job(label, config, 1, written)
    assert (label, Path(config).read_text(), job.environment) == ("knock-in:environment", start.read_text(),
                                                                 environments.environments["orig"])
    # the environment at start's value, lr at orig's: a config hybrid in start's environment
    label, config, written = evaluate.config_of(frozenset({"environment"}))
    job = evaluate._job(label, config, 1, written)
    assert label == "knock-in:lr" and job.environment == environments.environments["start"]
    assert evaluate._job("orig", str(orig), 1, None).environment == environments.environments["orig"]


@pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not installed; install "
                    "it from github.com/rwth-i6/sisyphus to run this test")
def test_environment_paths_are_part_of_the_job_hash_and_unset_ones_keep_the_old_hash():
    from sisyphus import tk, tools

    from jobs.bisect_jobs import RecognizeScoreJob, TrainJob

    config = tk.Path(str(ORIG))
    args = {"config": config, "seed": 1, "num_epochs": 2, "data_env": {"D": "x"}, "rqmt": {"gpu": 1}}
    unset = dict.fromkeys(("returnn_python_exe", "returnn_root", "returnn_env", "hardware"))
    assert TrainJob.hash({**args, **unset}) == tools.sis_hash({"config": config, "seed": 1, "num_epochs": 2})

    def hashed(**environment):
        return TrainJob.hash({**args, **unset, "returnn_python_exe": tk.Path("/venvs/tf2.15/bin/python"),
                              **environment})

    assert len({hashed(), hashed(returnn_root=tk.Path("/returnn/2024")), hashed(returnn_root=tk.Path("/returnn/2026")),
                hashed(returnn_env={"TF_DETERMINISTIC_OPS": "1"}), hashed(hardware={"gpu_name": "a100"})}) == 5
    assert hashed(returnn_root=tk.Path("/returnn/2024")) == hashed(returnn_root=tk.Path("/returnn/2024"))
    assert RecognizeScoreJob.__sis_hash_exclude__ == TrainJob.__sis_hash_exclude__
