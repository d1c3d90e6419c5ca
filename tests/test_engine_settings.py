"""What submit asks a cluster for: requests from the configs and a runtime log, site flags, settings.py (the
engines it names are built with the real Sisyphus when installed)."""

from __future__ import annotations

import ast
import math

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from bisect_cli.main import cli
from bisect_cli.submit_cmd import sisyphus_available
from common.errors import UserError
from jobs.engine_settings import (
    DEFAULT_RQMT,
    ENGINES,
    Runtime,
    derive_requests,
    epoch_seconds_from_log,
    gres_type_for,
    join_rqmt,
    parse_engine_opts,
    parse_rqmt,
    runtime_from_log,
    settings_text,
)
from tests.conftest import FIXTURES, PROJECT_ROOT

RNA_LOG = next((FIXTURES / "train-scores").glob("*.log"), None) if FIXTURES.is_dir() else None
NEEDS_RNA_LOG = pytest.mark.skipif(RNA_LOG is None, reason=f"shared fixtures not found at {FIXTURES}")


def test_rqmt_items_are_typed_and_bad_ones_refused():
    assert parse_rqmt(("cpu=2", "mem=7.5", "gpu_name=a100", "time=0.5")) == {"cpu": 2, "mem": 7.5, "gpu_name": "a100",
                                                                            "time": 0.5}
    with pytest.raises(UserError, match="got 'disk=3'"):
        parse_rqmt(("disk=3",))
    with pytest.raises(UserError, match="--rqmt gpu needs a number"):
        parse_rqmt(("gpu=two",))


def test_site_flags_pass_through_but_not_the_ones_sisyphus_sets():
    assert parse_engine_opts("slurm", "--partition=gpu --account=asr -q normal") == (
        "--partition=gpu", "--account=asr", "-q", "normal")
    assert parse_engine_opts("sge", "-P asr -q 'gpu.q'") == ("-P", "asr", "-q", "gpu.q")
    with pytest.raises(UserError, match="Sisyphus sets --time itself"):
        parse_engine_opts("slurm", "--partition=gpu --time=10")
    with pytest.raises(UserError, match="the local engine has none"):
        parse_engine_opts("local", "--partition=gpu")
    with pytest.raises(UserError, match="must start with a flag"):
        parse_engine_opts("lsf", "gpu -q normal")
    assert parse_engine_opts("slurm", "") == ()


@NEEDS_RNA_LOG
def test_a_2020_returnn_log_gives_the_gpu_and_an_epoch_time_from_its_progress_lines():
    runtime = runtime_from_log(RNA_LOG)
    assert runtime.gpu_model == "GeForce GTX 1080 Ti"
    # the log is cut in epoch 1: `elapsed 0:00:07, exp. remaining 0:13:49` and later lines estimate ~12.6 min
    assert 10 * 60 < runtime.epoch_seconds < 15 * 60


def test_finished_epoch_lines_count_training_and_evaluation():
    lines = ["train epoch 1, finished after 91 steps, 0:01:06 elapsed (72.6% computing time)",
             "epoch 1 'dev' eval, finished after 8 steps, 0:00:04 elapsed (77.4% computing time)",
             "pretrain epoch 2, finished after 90 steps, 0:01:00 elapsed (95.7% computing time)",
             "pretrain epoch 2 'dev' eval, finished after 8 steps, 0:00:05 elapsed (52.5% computing time)",
             "train epoch 3, finished after 90 steps, 1:00:00 elapsed (95.7% computing time)"]
    assert epoch_seconds_from_log(lines) == 70  # median of 70, 65, 3600
    assert epoch_seconds_from_log(["RETURNN starting up"]) is None


def test_gpu_count_type_and_time_come_from_configs_and_runtime():
    runtime = Runtime("orig.log", epoch_seconds=757, gpu_model="GeForce GTX 1080 Ti")
    asked = derive_requests({}, ("gpu", None), 150, runtime, ["1080ti", "a100"])
    assert asked.train["gpu"] == 1 and asked.train["gpu_name"] == "1080ti"
    assert asked.train["time"] == 47.5  # 150 x 757 s x 1.5 = 47.3 h, in quarter hours
    assert asked.score == {**asked.train, "time": 1.0}
    assert "150 epochs x 757 s measured (orig.log)" in asked.why["time"]
    unknown = derive_requests({}, (None, None), 150, runtime, ["v100"])
    assert unknown.train["gpu"] == 1 and "gpu_name" not in unknown.train  # trained on a GPU: asks for one
    assert "no gres type of the cluster names GeForce GTX 1080 Ti (types: v100)" in unknown.why["gpu_name"]
    cpu = derive_requests({}, ("cpu", "cpu"), 8, None, None)
    assert cpu.train == DEFAULT_RQMT and "no measured epoch time" in cpu.why["time"]


def test_rqmt_given_by_the_user_wins():
    asked = derive_requests({"gpu": 2, "time": 3.0, "gpu_name": "a100"}, ("gpu", "gpu"), 150,
                            Runtime("x", 757, "GeForce GTX 1080 Ti"), ["1080ti"])
    assert (asked.train["gpu"], asked.train["time"], asked.train["gpu_name"]) == (2, 3.0, "a100")
    assert asked.score["time"] == 3.0 and asked.why["time"] == "--rqmt"


@given(st.integers(1, 500), st.floats(0.5, 20000))
def test_a_measured_epoch_time_is_always_covered_with_margin_in_quarter_hours(epochs, seconds):
    hours = derive_requests({}, ("gpu", "gpu"), epochs, Runtime("x", seconds), None).train["time"]
    assert hours >= epochs * seconds * 1.5 / 3600
    assert hours * 4 == math.floor(hours * 4) and hours - epochs * seconds * 1.5 / 3600 < 0.25


def test_gres_types_are_matched_by_model_name_longest_first():
    assert gres_type_for("NVIDIA A100-SXM4-80GB", ["a100", "a100_80gb", "v100"]) == "a100"
    assert gres_type_for("Tesla V100-PCIE-32GB", ["1080ti", "v100"]) == "v100"
    assert gres_type_for("GeForce GTX 1080 Ti", ["1080", "1080ti"]) == "1080ti"
    assert gres_type_for("GeForce GTX 1080 Ti", []) is None


def test_site_flags_and_an_environment_s_own_flags_add_up():
    joined = join_rqmt(DEFAULT_RQMT, {"sbatch_args": ["--partition=gpu"], "time": 4},
                       {"gpu": 1, "sbatch_args": "--constraint=a100 --qos=high"})
    assert joined == {"cpu": 1, "mem": 4, "gpu": 1, "time": 4,
                      "sbatch_args": ["--partition=gpu", "--constraint=a100", "--qos=high"]}


def test_settings_put_site_flags_into_the_cluster_engine_only():
    text = settings_text("slurm", DEFAULT_RQMT, ("--partition=gpu", "--qos=normal"), cpus=2)
    tree = ast.parse(text)
    assert {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} == {"engine"}
    assert "'sbatch_args': ['--partition=gpu', '--qos=normal']" in text and "LocalEngine(cpus=1)" in text
    assert "sbatch_args" not in settings_text("slurm", DEFAULT_RQMT, (), cpus=2)


@pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not installed; install "
                    "it from github.com/rwth-i6/sisyphus to build the engines")
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_engine_of_the_settings_is_a_real_sisyphus_engine(engine):
    from sisyphus.engine import EngineSelector

    opts = () if engine == "local" else ("-q", "normal")
    namespace: dict = {}
    exec(compile(settings_text(engine, DEFAULT_RQMT, opts, cpus=2), "settings.py", "exec"), namespace)
    selector = namespace["engine"]()
    assert isinstance(selector, EngineSelector) and set(selector.engines) == {"short", "long"}
    long = selector.engines["long"]
    if engine != "local":
        flags = long.options({**long.default_rqmt, "gpu": 1})
        assert "-q" in " ".join(flags) and "normal" in flags


def test_dry_run_shows_requests_from_the_pair_and_a_runtime_log(tmp_path):
    """The RNA pair says `device = "gpu"` and 150 epochs; its 2020 log a GTX 1080 Ti and ~12.6 min per epoch."""
    if RNA_LOG is None:
        pytest.skip(f"shared fixtures not found at {FIXTURES}")
    configs = PROJECT_ROOT / "configs"
    result = CliRunner().invoke(cli, ["submit", str(configs / "orig/rna_transducer.config"),
                                      str(configs / "start/rna_transducer.config"), "-o", str(tmp_path / "s"),
                                      "--engine", "slurm", "--knobs", "l2", "--direction", "knock-in",
                                      "--runtime-log", str(RNA_LOG), "--engine-opts", "--partition=gpu --account=asr",
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "site flags --partition=gpu --account=asr" in result.output
    training = next(line for line in result.output.splitlines() if line.startswith("  training:"))
    assert "gpu=1" in training and "time=47.5" in training
    assert "the configs' device (gpu, gpu)" in result.output and "150 epochs x 757 s measured" in result.output
    assert "'sbatch_args': ['--partition=gpu', '--account=asr']" in (tmp_path / "s/settings.py").read_text()
