"""What a real (tiny) RETURNN training leaves behind: its learning-rate file and its current-format log.

The training runs once per session: Task12AXDataset, a small `standardlstm` (native LSTM units do not compile
on CPU) with a softmax output, Adam, 5 epochs; then a resumed run to epoch 6, which appends a second start to
the same log, as RETURNN does.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from artefacts.curves import compare_curves, read_curve
from artefacts.lr_file import best_epoch, read_lr_file
from artefacts.training_log import environment_diff, parse_training_log
from bisect_cli.main import cli
from common.errors import UserError

SCORES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "train-scores"
LOG_2020 = SCORES / "rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.log"
EPOCHS = 5

CONFIG = """\
#!rnn.py
use_tensorflow = True
task = "train"
train = {{"class": "Task12AXDataset", "num_seqs": 40}}
dev = {{"class": "Task12AXDataset", "num_seqs": 10, "fixed_random_seed": 1}}
num_inputs = 9
num_outputs = 2
batching = "random"
batch_size = 500
max_seqs = 10
network = {{
    "lstm": {{"class": "rec", "unit": "standardlstm", "n_out": 8, "from": "data"}},
    "output": {{"class": "softmax", "loss": "ce", "from": "lstm"}},
}}
adam = True
learning_rate = 0.01
num_epochs = {epochs}
learning_rate_file = {work!r} + "/learning_rates"
model = {work!r} + "/model/net"
log = [{work!r} + "/returnn.log"]
log_verbosity = 4
"""


def _returnn(config: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "returnn", str(config), *args], cwd=config.parent,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """Folder of a real tiny training: learning_rates (after 5 epochs: learning_rates.5; after the resumed
    sixth: learning_rates), returnn.log (two starts), stdout.txt (the first run's captured stdout)."""
    work = tmp_path_factory.mktemp("tiny-training")
    config = work / "tiny.config"
    config.write_text(textwrap.dedent(CONFIG.format(epochs=EPOCHS, work=str(work))))
    first = _returnn(config)
    (work / "stdout.txt").write_text(first.stdout + first.stderr)
    shutil.copy(work / "learning_rates", work / "learning_rates.5")
    _returnn(config, "++num_epochs", str(EPOCHS + 1))
    return work


def test_learning_rate_file_of_a_real_training(trained):
    epochs = read_lr_file(trained / "learning_rates.5")
    assert list(epochs) == list(range(1, EPOCHS + 1))
    for data in epochs.values():
        assert {"train_score", "train_error", "dev_score", "dev_error"} <= set(data.scores)
        assert not any(k.startswith(":meta:") for k in data.scores)
        assert data.learning_rate == 0.01 and data.effective_learning_rate == 0.01
        assert data.meta["epoch_num_train_steps"] > 0
    assert [epochs[e].meta["global_train_step"] for e in (1, 2)] == [0, epochs[1].meta["epoch_num_train_steps"]]
    best = best_epoch(epochs, "dev_score")
    assert best[1] == min(v.scores["dev_score"] for v in epochs.values())
    assert best_epoch(epochs, "no_such_key") is None
    assert list(read_lr_file(trained / "learning_rates")) == list(range(1, EPOCHS + 2))  # resumed to epoch 6


def test_agrees_with_returnns_own_loader(trained):
    """RETURNN's loader evals the file; the safe parser must read the same numbers."""
    from returnn.learning_rate_control import LearningRateControl

    path = trained / "learning_rates"
    theirs = LearningRateControl(default_learning_rate=1.0, filename=str(path)).epoch_data
    ours = read_lr_file(path)
    assert set(theirs) == set(ours)
    for epoch, data in ours.items():
        assert data.learning_rate == theirs[epoch].learning_rate
        assert data.scores == theirs[epoch].error and data.meta == theirs[epoch].meta


def test_truncated_learning_rate_file_names_the_line(trained, tmp_path):
    text = (trained / "learning_rates").read_text()
    cut = tmp_path / "learning_rates"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(UserError, match=r"not a RETURNN learning-rate file: line \d+: .*never closed") as info:
        read_lr_file(cut)
    assert info.value.path == str(cut)
    result = CliRunner().invoke(cli, ["curves", str(trained / "learning_rates"), str(cut)])
    assert result.exit_code == 2
    assert f"{cut}: malformed RETURNN learning-rate file: line" in result.output


def test_current_format_log(trained):
    env = parse_training_log(trained / "returnn.log")
    import returnn
    import tensorflow as tf

    assert f"{env.returnn_version}+git.{env.returnn_git}" == returnn.__long_version__
    assert env.tensorflow == tf.__version__
    assert env.python == sys.executable and env.python_version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert env.host == socket.gethostname() and env.gpu == "none (CPU)" and env.gpu_memory_mb is None
    assert env.cluster_queue is None and env.pytorch is None
    assert env.start_time[:4].isdigit() and env.start_time[10] == "T"
    assert env.starts == 2 and env.changed_on_restart == []  # the resumed run appended to the same log
    stdout = parse_training_log(trained / "stdout.txt")  # a captured stdout works too
    assert (stdout.returnn_version, stdout.tensorflow, stdout.starts) == (env.returnn_version, env.tensorflow, 1)


@pytest.mark.skipif(not LOG_2020.is_file(), reason=f"shared fixture not found: {LOG_2020}")
def test_env_command_2020_against_current(trained):
    a, b = parse_training_log(LOG_2020), parse_training_log(trained / "returnn.log")
    expected = {f for f, _, _ in environment_diff(a, b)}
    assert {"returnn_version", "returnn_git", "tensorflow", "python_version", "host", "gpu", "gpu_memory_mb",
            "threads", "cluster_queue", "start_time"} <= expected
    result = CliRunner().invoke(cli, ["env", str(LOG_2020), str(trained / "returnn.log"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {d["fact"] for d in data["differences"]} == expected
    assert data["a"]["tensorflow"] == "1.15.2" and data["b"]["starts"] == 2
    table = CliRunner().invoke(cli, ["env", str(LOG_2020), str(trained / "returnn.log")])
    assert table.exit_code == 0
    assert any(line.split()[:2] == ["tensorflow", "1.15.2"] for line in table.output.splitlines())
    assert f"{len(expected)} of 12 facts differ" in table.output and "B: 2 starts in one log" in table.output


def test_curves_command_on_real_files(trained, tmp_path):
    png = tmp_path / "curves.png"
    first, resumed = trained / "learning_rates.5", trained / "learning_rates"
    result = CliRunner().invoke(cli, ["curves", str(first), str(resumed), "--key", "dev_score", "--key",
                                      "train_error", "--png", str(png), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"dev_score", "train_error"}
    comparison = data["dev_score"]["comparisons"][0]
    # the same run: identical first five epochs, so never apart; the band comes from the curves' own jitter
    assert comparison["parted_from"] is None and comparison["band_source"] == "jitter"
    assert comparison["final_gap"] == 0 and comparison["final_epoch"] == EPOCHS
    assert len(data["dev_score"]["curves"]["learning_rates"]) == EPOCHS + 1
    for key in ("dev_score", "train_error"):
        assert (tmp_path / f"curves.{key}.png").read_bytes()[:4] == b"\x89PNG"
    assert not png.exists()
    curve = read_curve(resumed, "dev_error")
    assert all(math.isfinite(v) and 0 <= v <= 1 for v in curve.values.values())
    assert compare_curves(curve, curve).best_gap == 0
