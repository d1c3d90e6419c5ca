"""Rules found on the real-config corpus (benchmarks/corpus/pairs.json), each on an excerpt of the config
where the engine was wrong: RETURNN's demos (a line or two, quoted) and variants of the 2021 SWB Conformer
hybrid baseline made at test time from the shared fixtures."""

from __future__ import annotations

import pytest

from knobs import compare, diff_configs, load, load_rules
from tests.conftest import PROJECT_ROOT, requires_fixtures
from tests.fixture_variants import conformer_variant

RULES = load_rules()

# demos/demo-tf-maxgradnorm-lstm.12ax.config (rwth-i6/returnn): an unrolled BasicLSTM
UNROLLED = """#!rnn.py
{future}num_inputs = 9
num_outputs = 2
network = {{
"fw0": {{"class": "rec", "unit": "BasicLSTM", "unroll": True, "max_seq_len": {steps}, "n_out": 10}},
"output": {{"class": "softmax", "loss": "ce", "loss_opts": {{"use_fused": False}}, "from": ["fw0"]}}
}}
"""


def changes_of(orig, start) -> dict[str, tuple[str, str | None]]:
    d = compare(str(orig), str(start))
    return {c.path: (c.category, c.note) for k in d.knobs for c in k.changes}


def test_max_seq_len_of_an_unrolled_rec_layer_is_model(write_config):
    """`max_seq_len` is a search setting, except in a rec layer with `unroll`: its loop runs that many steps in
    training too."""
    got = changes_of(write_config("a.config", UNROLLED.format(future="", steps=100)),
                     write_config("b.config", UNROLLED.format(future="", steps=50)))
    assert list(got) == ["network.fw0.max_seq_len"] and got["network.fw0.max_seq_len"][0] == "model"


def test_future_import_is_runtime(write_config):
    """demos/demo-tf-contribrnn-lstm.12ax.config starts with `from __future__ import print_function`."""
    got = changes_of(write_config("a.config", UNROLLED.format(future="", steps=100)),
                     write_config("b.config", UNROLLED.format(future="from __future__ import print_function\n",
                                                              steps=100)))
    assert got == {"print_function": ("runtime", None)}


@pytest.fixture(scope="module")
def conformer_base(tmp_path_factory):
    return load(conformer_variant(tmp_path_factory.mktemp("base"), "base"))


def categories(base, path) -> dict[str, tuple[str, str | None]]:
    d = diff_configs(base, load(path), RULES)
    return {c.path: (c.category, c.note) for k in d.knobs for c in k.changes}


@requires_fixtures()
def test_specaugment_layer_removed_and_its_reader_fed_from_data_is_augmentation(conformer_base, tmp_path):
    """tab5 `baseline_without_specaug`: the `source` eval layer goes and `source0` reads `data` directly."""
    def edit(net):
        del net["source"]
        net["source0"]["from"] = "data"
    got = categories(conformer_base, conformer_variant(tmp_path, "nospecaug", edit))
    assert {p: c for p, (c, _) in got.items()} == {"network.source": "augmentation",
                                                    "network.source0.from": "augmentation"}


@requires_fixtures()
def test_loss_branch_rewired_because_the_model_layer_it_read_is_gone_is_model(conformer_base, tmp_path):
    """tab5 `baseline_without_longskip`: without the long skip `transposed_conv_4_res` the aux branch reads
    block 4 itself; the aux layer's `from` changes because the model changed."""
    def edit(net):
        del net["transposed_conv_4_res"]
        net["conformer_block_05_ffmod_1_ln"]["from"] = "conformer_block_04"
        net["conformer_block_05_ffmod_1_res"]["from"] = ["conformer_block_05_ffmod_1_half_step", "conformer_block_04"]
        net["transposedconv_4"]["from"] = "conformer_block_04"
    got = categories(conformer_base, conformer_variant(tmp_path, "noskip4", edit))
    category, note = got["network.transposedconv_4.from"]
    assert category == "model" and note.startswith("rewired: its input transposed_conv_4_res exists on one side")
    assert {c for c, _ in got.values()} == {"model"}


@requires_fixtures()
def test_l2_change_of_a_layer_a_loss_branch_shares_does_not_couple_them(conformer_base, tmp_path):
    """The aux branch at block 4 reuses `transposedconv`'s parameters; removing the branch while the L2 of
    `transposedconv` changes: both can be switched alone (only a shape change of the shared layer couples)."""
    def edit(net):
        for name in ("aux_output_block_4_ce", "aux_MLP_block_4", "aux_output_block_4", "masked_tconv_4",
                     "transposedconv_4"):
            del net[name]
        net["transposedconv"]["L2"] = 0.02
    d = diff_configs(conformer_base, load(conformer_variant(tmp_path, "l2", edit)), RULES)
    assert [(k.name, k.switchable) for k in d.knobs] == [("l2", True), ("loss", True)]


def test_layers_a_pretrain_stage_lacks_are_pretrain_whatever_their_role(tmp_path):
    """The Conformer orig without its pretraining: its stages lacked blocks 5-12 and the aux head at block 8
    (a loss-only branch); the final networks agree, so every network difference is `pretrain`."""
    orig = PROJECT_ROOT / "configs/orig/conformer.config"
    text = orig.read_text()
    line = 'pretrain = {"repetitions": 1, "construction_algo": custom_construction_algo}\n'
    assert line in text
    flat = tmp_path / "flat.config"
    flat.write_text(text.replace(line, ""))
    d = compare(str(orig), str(flat))
    network = [c for k in d.knobs for c in k.changes if c.path.startswith("network")]
    assert {c.category for c in network} == {"pretrain"}
    aux = {c.path: c.epochs for c in network if "aux" in c.path or c.path.endswith(("tconv_8", "conv_8"))}
    assert aux == {f"network.{n}": "1" for n in ("transposedconv_8", "masked_tconv_8", "aux_output_block_8",
                                                 "aux_MLP_block_8", "aux_output_block_8_ce")}
