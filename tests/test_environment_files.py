"""Environment files: validation with one-line errors naming the file, relative paths, TOML, the RETURNN command
line, and the local job key (unchanged for the tool's own interpreter, so old work folders are reused)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from common.errors import UserError
from runner.environment import (
    Environment,
    compose,
    default_environment,
    describe_sides,
    load_environment,
    process_env,
    returnn_command,
)
from runner.local import Job, job_key, run_jobs
from runner.settings import RunSettings
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"


def _fake_returnn_root(folder: Path) -> Path:
    """A folder laid out like a RETURNN checkout (enough for validation, which only looks at the layout)."""
    (folder / "returnn").mkdir(parents=True)
    (folder / "returnn" / "__init__.py").write_text("")
    (folder / "rnn.py").write_text("")
    return folder


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_relative_paths_are_relative_to_the_file(tmp_path):
    envs = tmp_path / "envs"
    envs.mkdir()
    _fake_returnn_root(tmp_path / "returnn-old")
    path = _write(envs / "old.json", {"python": os.path.relpath(sys.executable, envs), "returnn_root": "../returnn-old",
                                      "env": {"TF_DETERMINISTIC_OPS": "1"}, "engine_rqmt": {"gpu": 1}})
    env = load_environment(path)
    assert env.python == os.path.abspath(sys.executable)
    assert env.returnn_root == str((tmp_path / "returnn-old").resolve())
    assert env.env == {"TF_DETERMINISTIC_OPS": "1"} and env.engine_rqmt == {"gpu": 1}
    assert env.source == str(path)


def test_toml_and_python_on_path(tmp_path, monkeypatch):
    path = tmp_path / "env.toml"
    path.write_text(f'python = "{Path(sys.executable).name}"\n[env]\nOMP_NUM_THREADS = "1"\n')
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env = load_environment(path)
    assert Path(env.python).name == Path(sys.executable).name and env.env == {"OMP_NUM_THREADS": "1"}


def test_without_python_the_tools_interpreter_is_used(tmp_path):
    env = load_environment(_write(tmp_path / "e.json", {"env": {"A": "1"}}))
    assert env.python == default_environment().python and not env.is_default()


@pytest.mark.parametrize("data, cause", [
    ({"python": "no/such/python"}, "does not exist"),
    ({"python": "no-such-python-command"}, "nor a command on PATH"),
    ({"returnn_root": "."}, "holds no RETURNN (rnn.py and returnn/__init__.py)"),
    ({"returnn_root": "missing"}, "is not a folder"),
    ({"env": {"A": 1}}, "'env' must be an object of strings"),
    ({"engine_rqmt": {"gpus": 1}}, "engine_rqmt: unknown key 'gpus'"),
    ({"engine_rqmt": {"sbatch_args": [1]}}, "must be a string or a list of strings"),
    ({"engine_rqmt": {"gpu": True}}, "'gpu' must be a number"),
    ({"pyhton": "x"}, "unknown key 'pyhton'"),
])
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, data, cause):
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(UserError) as error:
        load_environment(path)
    assert error.value.path == str(path) and cause in error.value.cause and "\n" not in str(error.value)


def test_not_executable_and_not_json(tmp_path):
    plain = tmp_path / "python"
    plain.write_text("")
    with pytest.raises(UserError, match="is not executable"):
        load_environment(_write(tmp_path / "e.json", {"python": "python"}))
    (tmp_path / "broken.json").write_text("{python: x")
    with pytest.raises(UserError, match="not valid JSON"):
        load_environment(tmp_path / "broken.json")
    with pytest.raises(UserError, match="no such environment file"):
        load_environment(tmp_path / "missing.json")


def test_cli_refuses_a_bad_environment_before_training(tmp_path):
    bad = _write(tmp_path / "bad.json", {"python": "no/such/python"})
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["run", str(ORIG), str(START), "-o", str(work), "--start-env", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"config-bisect: error: {bad}: python "
                                                  f"{str(tmp_path / 'no/such/python')!r} does not exist"]
    assert not work.exists()


def test_returnn_command_as_i6_core_starts_it(tmp_path):
    root = _fake_returnn_root(tmp_path / "r")
    assert returnn_command(Environment("/v/bin/python", str(root)), "c.config", ["++a", "1"]) == \
        ["/v/bin/python", str(root / "rnn.py"), "c.config", "++a", "1"]
    assert returnn_command(Environment("/v/bin/python"), "c.config", []) == ["/v/bin/python", "-m", "returnn",
                                                                              "c.config"]


def test_process_env_lets_the_environment_win():
    env = process_env(Environment("/other/python", env={"TF_CPP_MIN_LOG_LEVEL": "0", "X": "1"}), {"X": "2", "D": "d"})
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "0" and env["X"] == "1" and env["D"] == "d"


def test_compose_takes_each_field_from_its_side():
    orig = Environment("/a/python", "/a/returnn", {"A": "1"}, {"gpu": 1}, source="orig.json")
    start = Environment("/b/python", None, {}, {}, source="start.json")
    mixed = compose({"python": "start", "returnn_root": "orig", "env": "start", "engine_rqmt": "orig"},
                    {"orig": orig, "start": start})
    assert (mixed.python, mixed.returnn_root, mixed.env, mixed.engine_rqmt) == ("/b/python", "/a/returnn", {},
                                                                                {"gpu": 1})
    assert mixed.source == ("mixed: python of start.json, returnn_root of orig.json, env of start.json, "
                            "engine_rqmt of orig.json")
    same_as_orig = compose({"python": "orig", "returnn_root": "orig", "env": "orig", "engine_rqmt": "orig"},
                           {"orig": orig, "start": Environment("/a/python", None, {"A": "1"}, {"gpu": 1})})
    assert same_as_orig.source == "orig.json"
    assert describe_sides({"python": "start", "returnn_root": "orig", "env": "start", "engine_rqmt": "orig"}) == \
        "orig's returnn_root and engine_rqmt, start's python and env"
    assert compose(dict.fromkeys(("python", "returnn_root", "env", "engine_rqmt"), "orig"),
                   {"orig": orig, "start": start}) == orig


def test_job_key_keeps_the_default_and_separates_environments():
    def key(job: Job) -> str:
        return job_key(job, {})

    default = key(Job("orig", str(ORIG), 1, 2))
    assert key(Job("orig", str(ORIG), 1, 2, default_environment())) == default  # the default adds nothing
    old = Environment(default_environment().python, "/somewhere/returnn")
    assert key(Job("orig", str(ORIG), 1, 2, old)) != default
    assert key(Job("orig", str(ORIG), 1, 2, Environment(old.python, old.returnn_root, engine_rqmt={"gpu": 1}))) == \
        key(Job("orig", str(ORIG), 1, 2, old))  # the local runner does not use engine_rqmt


def test_one_training_under_two_labels_runs_once(tmp_path):
    """A pair with one config file in two environments: its environment hybrids are the other side's baselines
    (same config, same environment, same key). They must not run twice at once in one job folder."""
    broken = tmp_path / "broken.config"  # fails within seconds, which is all this needs
    broken.write_text("#!rnn.py\nmax_seqs = 40 +\n")
    jobs = [Job("orig", str(broken), 1, 1), Job("knock-in:environment", str(broken), 1, 1)]
    done = []
    results = run_jobs(jobs, RunSettings(broken, broken, tmp_path / "work", parallel=2), on_done=done.append)
    assert [r.label for r in results] == ["orig", "knock-in:environment"] and len(done) == 2
    assert results[0].key == results[1].key and not results[0].reused and results[1].reused  # trained once
    assert len(list((tmp_path / "work" / "jobs").iterdir())) == 1
    assert "SyntaxError" in results[1].reason
