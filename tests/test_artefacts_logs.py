"""Environment facts from RETURNN logs: the real 2020 log, GPU lines of newer versions, restarts, non-logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from artefacts.training_log import environment_diff, parse_training_log, parse_training_log_lines, split_version
from bisect_cli.main import cli
from common.errors import UserError

SCORES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "train-scores"
LOG_2020 = SCORES / "rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.log"
needs_fixture = pytest.mark.skipif(not LOG_2020.is_file(), reason=f"shared fixture not found: {LOG_2020}")

# Line formats as printed by RETURNN 1.2026 (__main__.returnn_greeting, tf/util/basic.print_available_devices,
# setup_tf_thread_pools) and TF 2 (gpu_device.cc) on a GPU machine; RETURNN's own run here is CPU-only.
GPU_START = """\
RETURNN starting up, version 1.20240101.120000+git.0123abc, date/time 2024-01-01-12-00-00 (UTC+0100), \
pid 4242, cwd /work, Python /opt/conda/bin/python3.10
Hostname: gpu-node-3
TensorFlow: 2.13.0 (v2.13.0-rc2-7-g1cb1a030a62) (<site-package> in /opt/conda/lib/python3.10/site-packages/tensorflow)
Setup TF inter and intra global thread pools, num_threads None, session opts \
{'log_device_placement': False, 'device_count': {'GPU': 0}, 'intra_op_parallelism_threads': 8}.
2024-01-01 12:00:03.1: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1886] Created device \
/job:localhost/replica:0/task:0/device:GPU:0 with 22286 MB memory:  -> device: 0, name: NVIDIA A10, \
pci bus id: 0000:00:1e.0, compute capability: 8.6
Using gpu device 0: NVIDIA A10
Hostname 'gpu-node-3', GPU 0, GPU-dev-name 'NVIDIA A10', GPU-memory 21.8GB
start training at epoch 1
train epoch 1, step 0, cost:output/output_prob 4.2
Using gpu device 0: a line in the training output that must not count
"""


@needs_fixture
def test_2020_log():
    env = parse_training_log(LOG_2020)
    assert (env.returnn_version, env.returnn_git, env.tensorflow) == ("20200416.125355", "eddd3f2-dirty", "1.15.2")
    assert (env.gpu, env.gpu_memory_mb, env.threads) == ("GeForce GTX 1080 Ti", 10481, 4)
    assert (env.host, env.cluster_queue) == ("cluster-cn-279", "4-GPU-1080-128G")
    assert (env.python, env.python_version) == ("/usr/bin/python3", "3.5")  # version from TF's site-packages
    assert env.start_time == "2020-04-23T15:47:46+02:00"  # RETURNN's, not the SGE prologue's 15:47:41
    assert (env.starts, env.changed_on_restart, env.pytorch) == (1, [], None)


def test_gpu_lines_of_newer_versions():
    env = parse_training_log_lines(GPU_START.splitlines())
    assert (env.returnn_version, env.returnn_git, env.tensorflow) == ("1.20240101.120000", "0123abc", "2.13.0")
    assert (env.python, env.python_version, env.host) == ("/opt/conda/bin/python3.10", "3.10", "gpu-node-3")
    assert (env.gpu, env.threads) == ("NVIDIA A10", 8)
    assert env.gpu_memory_mb == round(21.8 * 1024)  # RETURNN's line wins over TF's 22286 MB
    assert env.start_time == "2024-01-01T12:00:00+01:00"
    tf_only = [line for line in GPU_START.splitlines() if "GPU-dev-name" not in line and "Using gpu" not in line]
    assert (lambda e: (e.gpu, e.gpu_memory_mb))(parse_training_log_lines(tf_only)) == ("NVIDIA A10", 22286)


def test_a_restart_on_another_gpu_is_reported():
    moved = GPU_START.replace("NVIDIA A10", "Tesla V100-SXM2-16GB").replace("2024-01-01-12", "2024-01-02-09")
    env = parse_training_log_lines((GPU_START + "Quitting\n" + moved).splitlines())
    assert env.gpu == "NVIDIA A10" and env.starts == 2
    assert env.changed_on_restart == ["gpu"]  # the start time always changes and is not listed


@pytest.mark.parametrize(("version", "expected"), [
    ("20200416.125355--git-eddd3f2-dirty", ("20200416.125355", "eddd3f2-dirty")),
    ("1.20171017.163840+git-ab2a1da", ("1.20171017.163840", "ab2a1da")),
    ("1.20261022.211313+git.a6e5adc", ("1.20261022.211313", "a6e5adc")),
    ("1.20261022.211313", ("1.20261022.211313", None)),
])
def test_version_and_git_revision(version, expected):
    assert split_version(version) == expected


@needs_fixture
def test_env_diff_against_a_changed_log(tmp_path):
    other = tmp_path / "other.log"
    other.write_text(LOG_2020.read_text().replace("GeForce GTX 1080 Ti", "GeForce GTX 980")
                     .replace("TensorFlow: 1.15.2", "TensorFlow: 1.15.0"))
    diff = environment_diff(parse_training_log(LOG_2020), parse_training_log(other))
    assert diff == [("tensorflow", "1.15.2", "1.15.0"), ("gpu", "GeForce GTX 1080 Ti", "GeForce GTX 980")]
    result = CliRunner().invoke(cli, ["env", str(LOG_2020), str(other)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert ["tensorflow", "1.15.2", "1.15.0"] in rows and "2 of 12 facts differ" in result.output
    assert "same:" in result.output and "cluster_queue=4-GPU-1080-128G" in result.output


def test_not_a_log_is_a_clear_error(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nTensorFlow: 2.15.1\nHostname: x\n")
    with pytest.raises(UserError, match="not a RETURNN training log"):
        parse_training_log(junk)
    with pytest.raises(UserError, match="cannot read the log"):
        parse_training_log(tmp_path)
    result = CliRunner().invoke(cli, ["env", str(junk), str(junk)])
    assert result.exit_code == 2
    assert f"config-bisect: error: {junk}: not a RETURNN training log" in result.output
