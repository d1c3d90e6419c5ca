"""The learning-rate file parser: old formats, NaN/inf, and files that must be refused without running them."""

from __future__ import annotations

import math
import re

import pytest
from click.testing import CliRunner

from artefacts.lr_file import best_epoch, parse_lr_text, read_lr_file
from bisect_cli.main import cli
from common.errors import UserError

OLD_FORMATS = """{
1: EpochData(learningRate=0.001, error={
'dev_score': 2.5,
'dev_score_output/output_prob': 2.25,
':meta:effective_learning_rate': 0.0005,
':meta:hostname': 'node7',
}),
2: EpochData(learningRate=np.float64(0.0005), error={'dev_score': nan, 'dev_error': 0.3, 'train_score': -inf}),
3: EpochData(learningRate=0.0005, error={'dev_score': float('inf'), 'dev_error': float('nan')}),
4: EpochData(learningRate=0.0005, error=1.5),
5: EpochData(learningRate=0.00025, error={}),
}
"""


def test_formats_agree_with_returnns_loader(tmp_path):
    """Current, numpy-2, bare nan/inf, old `error=<float>`, meta keys, an unscored next epoch: the same
    values as RETURNN's own (eval-based) loader."""
    from returnn.learning_rate_control import LearningRateControl

    path = tmp_path / "learning_rates"
    path.write_text(OLD_FORMATS)
    ours = read_lr_file(path)
    theirs = LearningRateControl(default_learning_rate=1.0, filename=str(path)).epoch_data
    assert list(ours) == [1, 2, 3, 4, 5] == sorted(theirs)
    for epoch, data in ours.items():
        assert data.learning_rate == theirs[epoch].learning_rate
        assert data.meta == theirs[epoch].meta
        assert data.scores.keys() == theirs[epoch].error.keys()
        for key, value in data.scores.items():
            assert value == theirs[epoch].error[key] or (math.isnan(value) and math.isnan(theirs[epoch].error[key]))
    assert ours[1].meta == {"effective_learning_rate": 0.0005, "hostname": "node7"}
    assert ours[1].effective_learning_rate == 0.0005 and ours[2].effective_learning_rate == 0.0005
    assert math.isnan(ours[2].scores["dev_score"]) and ours[2].scores["train_score"] == -math.inf
    assert ours[3].scores["dev_score"] == math.inf
    assert ours[4].scores == {"old_format_score": 1.5} and ours[5].scores == {}


def test_best_epoch_skips_nan_and_inf():
    epochs = parse_lr_text(OLD_FORMATS)
    assert best_epoch(epochs, "dev_score") == (1, 2.5)  # epoch 2 is nan, epoch 3 inf
    assert best_epoch(epochs, "dev_error") == (2, 0.3)
    assert best_epoch(epochs, "train_score") is None  # only -inf: not a score
    assert best_epoch(epochs, "absent") is None


@pytest.mark.parametrize(("text", "message"), [
    ("{1: EpochData(learningRate=__import__('os').system('touch pwned'), error={})}",
     r"line 1: \"__import__\('os'\).system\('touch pwned'\)\" is not allowed here"),
    ("{\n1: EpochData(learningRate=0.1, error={\n'x': (1).__class__.__mro__,\n}),\n}",
     r"line 3: .* is not allowed here \(expected a number\)"),
    ("{\n1: EpochData(learningRate=0.1, error={'dev_score': 0.5}),\n2: EpochData(learningRate=0.1, error={\n",
     r"line 3: '\{' was never closed"),
    ("hello world, this is not a learning-rate file", r"line 1: invalid syntax"),
    ("[1, 2, 3]", r"line 1: expected a dict \{epoch: EpochData"),
    ("{1: EpochData(learningRate=0.1, error={1: 0.5})}", r"line 1: score key '1' is not a string"),
    ("{1: EpochData(learningRate=0.1, error={'dev_score': 'low'})}", r"line 1: \"'low'\" is not allowed here"),
    ("{1: EpochData(learningRate=0.1, spam=2)}", r"unexpected argument 'spam'"),
    ("{'one': EpochData(learningRate=0.1)}", r"epoch \"'one'\" is not an integer"),
    ("{True: EpochData(learningRate=0.1)}", r"epoch 'True' is not an integer"),
    ("{1: EpochData(learningRate=0.1),\n1: EpochData(learningRate=0.2)}", r"line 2: epoch 1 appears twice"),
    ("{1: 0.5}", r"line 1: '0.5' is not allowed here \(expected EpochData"),
    ("{1: EpochData(learningRate=float('fast'))}", r"is not a number"),
    ("   \n", r"the file is empty"),
    ("{" * 300 + "}" * 300, r"nested|parenthes"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "learning_rates"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        read_lr_file(path)
    assert info.value.path == str(path) and info.value.cause.startswith("not a RETURNN learning-rate file: ")
    if text.strip() and "{" * 300 not in text:
        assert re.match(r"not a RETURNN learning-rate file: line \d+: ", info.value.cause)
    assert not (tmp_path / "pwned").exists()


def test_unreadable_files(tmp_path):
    binary = tmp_path / "model.index"
    binary.write_bytes(b"\x80\x81\xfe\xff" * 10)
    with pytest.raises(UserError, match="not UTF-8"):
        read_lr_file(binary)
    with pytest.raises(UserError, match="cannot read learning-rate file"):
        read_lr_file(tmp_path / "missing")


def test_cli_refuses_an_injected_file_with_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good, evil = tmp_path / "good", tmp_path / "evil"
    good.write_text(OLD_FORMATS)
    evil.write_text("{1: EpochData(learningRate=0.1, error={'dev_score': __import__('os').system('touch pwned')})}")
    result = CliRunner().invoke(cli, ["curves", str(good), str(evil)])
    assert result.exit_code == 2, result.output
    assert f"config-bisect: error: {evil}: malformed RETURNN learning-rate file: line 1:" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "pwned").exists()
