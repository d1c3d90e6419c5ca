"""Training logs and score curves: real fixtures, a real training's files, malformed input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from artefacts.curves import Curve, compare_curves, read_curve, replicate_band
from artefacts.training_log import environment_diff, parse_training_log
from bisect_cli.main import cli
from common.errors import UserError
from demo.task import DemoSpec, ensure_demo_data
from runner import steps
from tests.conftest import FIXTURES, PROJECT_ROOT, requires_fixtures

SCORES = FIXTURES / "train-scores"
STEM = "rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real one-epoch RETURNN training of the demo config (its log and learning-rate file)."""
    data = ensure_demo_data(tmp_path_factory.mktemp("cache"), DemoSpec(num_seqs=(40, 8, 8)))
    work = tmp_path_factory.mktemp("train")
    result = steps.train(PROJECT_ROOT / "configs/orig/demo_ctc.config", work, seed=1, num_epochs=2,
                         env={"CONFIG_BISECT_DEMO_DATA": str(data)})
    assert result.status == "ok", result.reason
    return work


@requires_fixtures()
def test_2020_log():
    env = parse_training_log(SCORES / f"{STEM}.log")
    assert (env.returnn_version, env.returnn_git, env.tensorflow) == ("20200416.125355", "eddd3f2-dirty", "1.15.2")
    assert (env.gpu, env.gpu_memory_mb, env.threads) == ("GeForce GTX 1080 Ti", 10481, 4)
    assert (env.host, env.cluster_queue, env.python_version) == ("cluster-cn-279", "4-GPU-1080-128G", "3.5")
    assert env.start_time.startswith("Thu Apr 23 15:47:41")


@requires_fixtures()
def test_current_log_and_env_diff(trained):
    env = parse_training_log(trained / "returnn.log")
    assert env.returnn_version.startswith("1.") and env.tensorflow.startswith("2.15")
    assert env.gpu == "none (CPU)" and env.threads == 1 and env.python_version == "3.11"
    fields = {f for f, _, _ in environment_diff(parse_training_log(SCORES / f"{STEM}.log"), env)}
    assert {"returnn_version", "tensorflow", "gpu", "threads", "python_version"} <= fields
    result = CliRunner().invoke(cli, ["env", str(SCORES / f"{STEM}.log"), str(trained / "returnn.log"), "--json"])
    assert result.exit_code == 0
    assert {d["field"] for d in json.loads(result.output)["differences"]} == fields


def test_not_a_log_is_a_user_error(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\nworld\n")
    with pytest.raises(UserError, match="not a RETURNN training log"):
        parse_training_log(junk)
    result = CliRunner().invoke(cli, ["env", str(junk), str(junk)])
    assert result.exit_code == 2 and "notes.txt: not a RETURNN training log" in result.output


@requires_fixtures()
def test_train_info_fixture_and_malformed(tmp_path):
    curve = read_curve(SCORES / f"{STEM}.train.info.txt")
    assert len(curve.values) == 250 and curve.values[1] == pytest.approx(87.35103010632963)  # the run went on to 250
    bad = tmp_path / "bad.train.info.txt"
    bad.write_text("epoch   1 dev_score: 3.0\nnum params: 5\nepoch two dev_score: 2\n")
    with pytest.raises(UserError, match="line 3 is not 'epoch N key: value'"):
        read_curve(bad)


def test_learning_rate_file_of_a_real_training(trained):
    curve = read_curve(trained / "learning_rates", "dev_error")
    assert sorted(curve.values) == [1, 2] and all(v >= 0 for v in curve.values.values())
    with pytest.raises(UserError, match="no 'nonsense' scores"):
        read_curve(trained / "learning_rates", "nonsense")


def test_parting_rule():
    base = {e: 10 - 0.5 * e for e in range(1, 21)}
    jittery = {e: v + (0.05 if e % 2 else -0.05) for e, v in base.items()}
    parted = {e: v + (2.0 if e >= 8 else 0.0) for e, v in jittery.items()}
    crossing = {e: v + (2.0 if 8 <= e < 15 else 0.0) for e, v in jittery.items()}
    assert compare_curves(Curve("a", jittery), Curve("b", parted)).parted_from == 8
    assert compare_curves(Curve("a", jittery), Curve("b", crossing)).parted_from is None  # meets again
    assert compare_curves(Curve("a", jittery), Curve("b", jittery)).parted_from is None
    comparison = compare_curves(Curve("a", base), Curve("b", parted))
    assert comparison.final_gap == pytest.approx(2.0 + 0.05 * (1 if 20 % 2 else -1))
    replicas = [Curve("r1", {1: 1.0, 2: 0.5}), Curve("r2", {1: 1.0, 2: 0.7})]
    band = replicate_band(replicas)
    assert band[1] == 0 and band[2] == pytest.approx(2 * 2 ** 0.5 * 0.1414213, rel=1e-4)


def test_curves_cli_table_and_png(trained, tmp_path):
    png = tmp_path / "curves.png"
    result = CliRunner().invoke(cli, ["curves", str(trained / "learning_rates"), str(trained / "learning_rates"),
                                      "--key", "dev_error", "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "never stay apart" in result.output and png.read_bytes()[:4] == b"\x89PNG"
