"""RETURNN's old line-based text format and JSON configs: loaded as RETURNN loads them, said so once, and a
file that loads in no format names the error of each."""

from __future__ import annotations

import pytest

from common.errors import UserError
from knobs import compare, load

# The style of RETURNN's own text-format demo (demos/demo-pretrain.config): `key value` lines, comma lists.
TEXT_CONFIG = """\
# dataset
train GeneratingDataset::Task12AXDataset(num_seqs={num_seqs})
dev GeneratingDataset::Task12AXDataset(num_seqs=100)
num_inputs 9
num_outputs 2
# model
hidden_size 10,10,10
bidirectional false
# training
batch_size 2000
chunking 200:200
adadelta true
learning_rate 1
"""


def test_text_format_pair_is_diffed_as_text_and_said_once(write_config):
    o = write_config("orig/pretrain.config", TEXT_CONFIG.format(num_seqs=1000))
    s = write_config("start/pretrain.config", TEXT_CONFIG.format(num_seqs=100))
    loaded = load(o)
    assert loaded.format == "text"
    assert (loaded.value("hidden_size"), loaded.value("bidirectional"), loaded.value("learning_rate")) == (
        [10, 10, 10], False, 1)
    d = compare(str(o), str(s))
    assert [(c.path, c.category) for k in d.knobs for c in k.changes] == [("train", "data")]
    text_format = [w for w in d.warnings if w.code == "text-format"]
    assert len(text_format) == 1 and text_format[0].side == "both"


def test_text_format_traps_are_warned(write_config):
    """`batch_size` is read with typed_value by RETURNN's TF engine: a text value is not seen; a Python config
    without `#!` is read as text (`learning_rate = 0.1` is the string '= 0.1')."""
    loaded = load(write_config("a.config", "batch_size 2000\nlearning_rate = 0.1\n"))
    codes = {w["code"]: w for w in loaded.warnings}
    assert "trains with batch_size 1" in codes["text-format-untyped"]["message"]
    assert "'= 0.1'" in codes["text-format-python-like"]["message"]
    assert "#!rnn.py" in codes["text-format-python-like"]["advice"]


@pytest.mark.parametrize(("text", "python_part"), [
    ("learning_rate 0.1\n)\n", "as Python: SyntaxError"),
    ("network = {\n    'output': {'class': 'softmax'}\n}\n", "as Python it compiles: add '#!rnn.py'"),
])
def test_file_failing_as_text_names_both_errors(write_config, text, python_part):
    path = write_config("broken.config", text)
    with pytest.raises(UserError) as info:
        load(path)
    message = str(info.value)
    assert "broken.config" in message and "line-based text format and fails: AssertionError: unable to parse " \
        "config line" in message
    assert python_part in message


def test_broken_json_names_both_errors(write_config):
    path = write_config("broken.json.config", '{"batch_size": 1000,\n "num_epochs": }\n')
    with pytest.raises(UserError, match=r"reads it as JSON and fails: .*; as Python: SyntaxError"):
        load(path)


def test_json_config_loads(write_config):
    o = write_config("o.config", '{"task": "train", "batch_size": 600000, "nadam": 1, "num_epochs": 200}\n')
    s = write_config("s.config", '{"task": "train", "batch_size": 600000, "nadam": 1, "num_epochs": 5}\n')
    d = compare(str(o), str(s))
    assert [(c.path, c.category) for k in d.knobs for c in k.changes] == [("num_epochs", "training-length")]
    assert not any(w.code.startswith("text-format") for w in d.warnings)
