"""The build check: native units are built with TF stand-ins by default; a native op that does not compile is
one line with the compiler's message; any other failure is RETURNN's exception type and message, never empty."""

from __future__ import annotations

import pytest

from interpolate.build import build_config, build_label
from interpolate.build_worker import layers_in_construction
from interpolate.stand_in_units import with_stand_in_units
from knobs import LoadContext
from knobs.exceptions import describe
from tests.conftest import PROJECT_ROOT

DEMO_ORIG = PROJECT_ROOT / "configs/orig/demo_ctc.config"


@pytest.fixture(scope="module")
def native_demo(tmp_path_factory):
    """The demo orig with RETURNN's native LSTM (`nativelstm2`, as the RNA configs use) instead of TF's."""
    path = tmp_path_factory.mktemp("native") / "native.config"
    text = DEMO_ORIG.read_text()
    assert text.count('"unit": "standardlstm"') == 4
    path.write_text(text.replace('"unit": "standardlstm"', '"unit": "nativelstm2"'))
    return path


def test_native_units_are_built_with_tf_stand_ins_by_default(native_demo):
    built = build_config(str(native_demo), LoadContext())
    assert built["status"] == "built" and built["stand_in"] == {"nativelstm2": "standardlstm"}
    assert [e["epoch"] for e in built["epochs"]] == [1, 2, 8]  # first, last pretrain and final epoch
    assert build_label(built) == "built (with TF stand-in units: nativelstm2 → standardlstm)"


def test_native_op_that_does_not_compile_is_one_line_with_the_compiler_message(native_demo, tmp_path, monkeypatch):
    """A compiler that cannot run (here: g++ without its cc1plus, a broken toolchain) and an empty op cache."""
    monkeypatch.setenv("RETURNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GCC_EXEC_PREFIX", "/nonexistent-gcc-prefix/")
    failed = build_config(str(native_demo), LoadContext(), native_units=True)
    assert failed["status"] == "not built"
    prefix = "epoch 1: native op NativeLstm2 does not compile here: "
    assert failed["reason"].startswith(prefix) and "cc1plus" in failed["reason"]
    assert "\n" not in failed["reason"] and "stand_in" not in failed
    assert build_label(failed).startswith("not built: " + prefix)


def test_unresolved_reason_names_the_layer(tmp_path):
    broken = tmp_path / "broken.config"
    broken.write_text(DEMO_ORIG.read_text().replace('"from": ["lstm1_fw", "lstm1_bw"], "loss"',
                                                    '"from": ["lstm1_fw", "no_such_layer"], "loss"'))
    failed = build_config(str(broken), LoadContext())
    assert failed["status"] == "unresolved"  # pretrain epoch 1 has no lstm1_* yet: epoch 2 is the first to fail
    assert failed["error"] == ("epoch 2: LayerNotFound: layer 'no_such_layer' not found in <TFNetwork '' train> "
                               "(constructing output → no_such_layer)")


def test_config_that_does_not_load_is_unresolved_with_the_reason(tmp_path):
    path = tmp_path / "cluster.config"
    path.write_text("#!rnn.py\nimport os\nassert os.path.exists('/work/asr3/corpus.bundle')\n")
    failed = build_config(str(path), LoadContext())
    assert failed == {"status": "unresolved", "error": "RETURNN does not load it: AssertionError: assert "
                      "os.path.exists('/work/asr3/corpus.bundle') (cluster.config:3, <module>)"}


def test_empty_assertion_is_described_by_its_source_line(tmp_path):
    """As RETURNN's `assert self_base_extra.derived_from_tag == base` (tensor/_dim_extra.py) fails for the RNA
    configs' `lm_masked` under current RETURNN: the bare assert is shown with its line and place."""
    module = tmp_path / "dims.py"
    module.write_text("def derive_from(tag, base):\n    assert tag == base\n")
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    with pytest.raises(AssertionError) as info:
        namespace["derive_from"](1, 2)
    assert describe(info.value) == "AssertionError: assert tag == base (dims.py:2, derive_from)"
    assert describe(KeyError("x")) == "KeyError: 'x'" and describe(ValueError()) == "ValueError: (no message)"


def test_stand_ins_reach_rec_units_and_drop_native_only_options():
    net = {"enc": {"class": "rec", "unit": "nativelstm2", "unit_opts": {"rec_weight_dropout": 0.1,
                                                                        "forget_bias": 0.0}},
           "dec": {"class": "rec", "from": [], "unit": {
               "lm": {"class": "rec", "unit": "lstm", "from": "prev:output"},
               "output": {"class": "softmax", "from": "lm"}}},
           "other": {"class": "rec", "unit": "gru"}}
    replaced, mapping, dropped = with_stand_in_units(net)
    assert mapping == {"nativelstm2": "standardlstm", "lstm": "standardlstm"} and dropped == ["rec_weight_dropout"]
    assert replaced["enc"] == {"class": "rec", "unit": "standardlstm", "unit_opts": {"forget_bias": 0.0}}
    assert replaced["dec"]["unit"]["lm"]["unit"] == "standardlstm" and replaced["other"]["unit"] == "gru"
    assert net["enc"]["unit"] == "nativelstm2"  # the input is not modified


def test_layers_in_construction_without_traceback():
    assert layers_in_construction(None) == []
