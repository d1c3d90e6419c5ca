"""The knob diff: equivalences, categories, per-epoch ranges and coupling, on small real configs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from knobs import LoadContext, compare
from tests.conftest import PROJECT_ROOT, RETURNN_CONFIGS, requires_fixtures

NET = """
L2 = 1e-4
network = {
    "source": {"class": "eval", "eval": "self.network.get_config().typed_value('transform')(source(0))"},
    "lstm0": {"class": "rec", "unit": "standardlstm", "n_out": 32, "from": "source", "L2": L2, "dropout": 0.1},
    "lstm1": {"class": "rec", "unit": "standardlstm", "n_out": 32, "from": "lstm0", "L2": L2, "dropout": 0.1},
    "output": {"class": "softmax", "from": "lstm1", "loss": "ctc", "n_out": 10},
}
"""


def pair(write_config, orig_body: str, start_body: str, **kwargs):
    o = write_config("orig/x.config", "#!rnn.py\n" + orig_body)
    s = write_config("start/x.config", "#!rnn.py\n" + start_body)
    return compare(str(o), str(s), LoadContext(**kwargs))


def knob_names(diff) -> list[str]:
    return [k.name for k in diff.knobs]


def test_adam_flag_equals_adam_dict_with_same_epsilon(write_config):
    d = pair(write_config, "adam = True\noptimizer_epsilon = 1e-8\n",
             'optimizer = {"class": "Adam", "epsilon": 1e-8}\n')
    assert knob_names(d) == []
    assert [e["what"] for e in d.equivalent] == ["optimizer"]


def test_adam_flag_default_epsilon_is_1e_16(write_config):
    d = pair(write_config, "adam = True\n", 'optimizer = {"class": "adam", "epsilon": 1e-8}\n')
    assert knob_names(d) == ["optimizer"]
    (change,) = d.knob("optimizer").changes
    assert (change.path, change.orig, change.start) == ("optimizer.epsilon", 1e-16, 1e-8)


def test_nadam_flag_is_not_the_nadam_dict(write_config):
    d = pair(write_config, "nadam = True\n", 'optimizer = {"class": "nadam"}\n')
    assert knob_names(d) == ["optimizer"]


def test_negative_max_seq_length_equals_classes_dict_and_defaults_are_equivalent(write_config):
    d = pair(write_config, "max_seq_length = -75\ngradient_clip = 0\n", 'max_seq_length = {"classes": 75}\n')
    assert knob_names(d) == []
    assert {e["what"] for e in d.equivalent} == {"max_seq_length", "gradient_clip"}


def test_warmup_in_pretrain_config_equals_learning_rates(write_config):
    orig = NET + """
learning_rate = 0.001
use_learning_rate_control_always = True
def grow(idx, net_dict):
    if idx >= 3:
        return None
    net_dict["#config"] = {"learning_rate": [0.0001, 0.0004, 0.0007][idx]}
    return net_dict
pretrain = {"construction_algo": grow}
num_epochs = 6
"""
    start = orig.replace('net_dict["#config"] = {"learning_rate": [0.0001, 0.0004, 0.0007][idx]}', "pass")
    start += "learning_rates = [0.0001, 0.0004, 0.0007]\n"
    d = pair(write_config, orig, start)
    assert "lr" not in knob_names(d)
    assert any(e["what"] == "learning_rate schedule" for e in d.equivalent)
    d2 = pair(write_config, orig, start.replace("0.0007]", "0.0009]"))
    (lr_change,) = d2.knob("lr").changes
    # epoch 3 differs, and the constant LR control carries the value on to the end
    assert (lr_change.path, lr_change.epochs, lr_change.orig, lr_change.start) == (
        "learning_rate", "3-6", pytest.approx(0.0007), pytest.approx(0.0009))


def test_per_epoch_batch_size_reported_as_ranges_with_effective_batch(write_config):
    orig = NET + """
batch_size = 4000
accum_grad_multiple_step = 3
def grow(idx, net_dict):
    if idx >= 2:
        return None
    net_dict["#config"] = {"batch_size": 5000}
    return net_dict
pretrain = {"construction_algo": grow, "repetitions": 2}
num_epochs = 8
"""
    d = pair(write_config, orig, NET + "batch_size = 12000\nnum_epochs = 8\n")
    assert d.warning_codes() == ["accum-grad-nondeterministic"]  # orig: accumulation before behavior_version 15
    batching = d.knob("batching")
    got = {(c.path, c.epochs, c.orig, c.start) for c in batching.changes}
    assert ("batch_size", "1-4", 5000, 12000) in got and ("batch_size", "5-8", 4000, 12000) in got
    assert "5000x3=15000 vs 12000x1=12000" in batching.summary


def test_layer_changes_by_category_and_function_users(write_config):
    orig = "def transform(x):\n    return x\n" + NET
    start = ("def transform(x):\n    return x * 2\n"
             + NET.replace('"dropout": 0.1}', '"dropout": 0.3}').replace('"n_out": 10', '"n_out": 12')
             .replace('"L2": L2, "dropout": 0.3},\n    "lstm1"', '"dropout": 0.3},\n    "lstm1"'))
    d = pair(write_config, orig, start)
    categories = {c.path: c.category for k in d.knobs for c in k.changes}
    assert categories == {
        "transform": "augmentation",  # called by the `source` layer
        "network.lstm0.dropout": "dropout", "network.lstm1.dropout": "dropout",
        "network.lstm0.L2": "l2",
        "network.output.n_out": "model",
    }
    assert all(k.switchable for k in d.knobs)


def test_network_builder_code_is_compared_by_what_it_builds(write_config):
    body = """
def my_loss(source, **kwargs):
    return source(0) * {scale}
def build(idx=None):
    net = {{"output": {{"class": "eval", "eval": my_loss, "loss": "as_is", "n_out": {n_out}, "from": "data"}}}}
    if idx is not None:
        if idx >= 2:
            return None
        net["#config"] = {{"batch_size": 1000}}
    return net
network = build()
def construction(idx, net_dict):
    return build(idx)
pretrain = {{"construction_algo": construction}}
batch_size = 2000
num_epochs = 4
"""
    d = pair(write_config, body.format(scale=1, n_out=10), body.format(scale=1, n_out=12))
    # `build` differs in its text, but what RETURNN gets from it differs only in one layer's n_out
    assert {c.path: c.category for k in d.knobs for c in k.changes} == {"network.output.n_out": "model"}
    assert any(e["what"] == "network construction code" and "build" in e["orig"] for e in d.equivalent)
    d2 = pair(write_config, body.format(scale=1, n_out=10), body.format(scale=2, n_out=10))
    assert [(k.name, [c.path for c in k.changes]) for k in d2.knobs] == [("loss", ["my_loss"])]


def test_run_time_function_reading_another_knobs_value_couples_them(write_config):
    body = """
def transform(x):
    return x * batch_size
network = {"source": {"class": "eval", "eval": "self.network.get_config().typed_value('transform')(source(0))"},
           "output": {"class": "softmax", "loss": "ce", "from": "source"}}
batch_size = %d
"""
    d = pair(write_config, body % 1000, body % 2000)
    assert [k.name for k in d.knobs] == ["batching", "augmentation"]
    for name, partner in (("batching", "augmentation"), ("augmentation", "batching")):
        knob = d.knob(name)
        assert not knob.switchable and knob.coupled_with == [partner]
        assert knob.coupling == ["transform() (augmentation) reads batch_size (batching)"]


def test_user_rule_file_takes_precedence(write_config, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"keys": [["my_special_*", "data"]]}))
    o = write_config("o.config", "#!rnn.py\nmy_special_corpus = 'a'\n")
    s = write_config("s.config", "#!rnn.py\nmy_special_corpus = 'b'\n")
    assert compare(str(o), str(s)).knobs[0].name == "other"
    assert compare(str(o), str(s), rules_file=str(rules)).knobs[0].name == "data"


def test_cli_json_schema_and_bare_names(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no orig/start here: the bare names mean the project's configs/
    result = CliRunner().invoke(cli, ["orig", "start", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    pairs = data if isinstance(data, list) else [data]
    rna = next(p for p in pairs if p["orig"].endswith("rna_transducer.config"))
    assert rna["orig"] == str(PROJECT_ROOT / "configs" / "orig" / "rna_transducer.config")
    assert set(rna) >= {"orig", "start", "knobs", "equivalent", "unresolved"}
    for knob in rna["knobs"]:
        assert set(knob) >= {"name", "category", "switchable", "coupled_with", "summary", "changes"}
        for change in knob["changes"]:
            assert set(change) >= {"path", "orig", "start", "epochs"}
    names = {k["name"] for k in rna["knobs"]}
    assert {"optimizer", "batching", "pretrain", "l2", "dropout", "loss", "augmentation"} <= names
    assert "lr" in names  # the LR-control error measure; the warmup itself is only spelled differently
    assert any(e["what"] == "learning_rate schedule" for e in rna["equivalent"])


def test_cli_human_table_and_user_errors(write_config):
    o = write_config("o.config", "#!rnn.py\nadam = True\n")
    s = write_config("s.config", "#!rnn.py\nnadam = True\n")
    result = CliRunner().invoke(cli, [str(o), str(s)])
    assert result.exit_code == 0 and "optimizer" in result.output and "\x1b[" not in result.output
    bad = CliRunner().invoke(cli, [str(o), str(s), "--set", "not an assignment"])
    assert bad.exit_code == 2 and "--set expects KEY=VALUE" in bad.output


@requires_fixtures()
def test_conformer_ablation_focal_loss_is_a_loss_knob():
    base = RETURNN_CONFIGS / "conformer2021"
    d = compare(str(base / "baseline_12l.config"), str(base / "baseline_without_focal_loss.config"))
    loss = d.knob("loss")
    assert loss and all(c.path.endswith("focal_loss_factor") for c in loss.changes)
    assert {k.name for k in d.knobs} == {"loss", "runtime"}  # the `model` path is a runtime setting
