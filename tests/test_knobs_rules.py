"""Why a change gets its category, on real configs: loss-only layers and loss attributes are `loss`,
train-only eval layers and their input edges are `augmentation`, dropout-only layers `dropout`, and a change
that pretraining repeats per stage is reported once.

The variants are made at test time from the shared fixtures (the 2021 SWB Conformer hybrid baseline of
rwth-i6/returnn-experiments, the RNA pair in configs/), never copied into the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from knobs import LoadContext, compare, diff_configs, load, load_rules
from tests.conftest import PROJECT_ROOT, requires_fixtures
from tests.fixture_variants import conformer_variant

RULES = load_rules()


@pytest.fixture(scope="module")
def conformer_base(tmp_path_factory):
    """The baseline, re-rendered the way the variants are (so that only the edits differ)."""
    path = conformer_variant(tmp_path_factory.mktemp("base"), "base")
    return load(path)


def categories(base, path: Path) -> dict[str, str]:
    d = diff_configs(base, load(path), RULES)
    return {c.path: c.category for k in d.knobs for c in k.changes}


@requires_fixtures()
def test_removed_auxiliary_loss_branch_is_one_loss_knob(conformer_base, tmp_path):
    """The intermediate CE losses at blocks 4 and 8 (MLP, softmax, and the transposed convolution that only
    feeds them) form loss-only branches: removing them is `loss`, not `model`."""
    def drop_aux(net):
        for name in [n for n in net if n.startswith("aux_") or n[-2:] in ("_4", "_8") and "conv" in n]:
            del net[name]
    path = conformer_variant(tmp_path, "no_aux", drop_aux)
    d = diff_configs(conformer_base, load(path), RULES)
    assert [k.name for k in d.knobs] == ["loss"]
    changes = {c.path: c for c in d.knob("loss").changes}
    assert set(changes) == {f"network.{n}_{b}" for b in (4, 8) for n in ("aux_MLP_block", "aux_output_block",
                                                                          "masked_tconv", "transposedconv")} \
        | {"network.aux_output_block_4_ce", "network.aux_output_block_8_ce"}
    # the aux transposed convolutions reuse the parameters of the main one: flagged
    assert "shares parameters with transposedconv" in changes["network.transposedconv_4"].note


@requires_fixtures()
def test_loss_attributes_of_any_layer_are_loss(conformer_base, tmp_path):
    def edit(net):
        net["output"]["loss_opts"]["label_smoothing"] = 0.1
        net["aux_output_block_4_ce"]["loss_scale"] = 0.5
        net["aux_output_block_8_ce"]["loss"] = "ctc"  # CE -> CTC on the same outputs
        del net["aux_output_block_8_ce"]["loss_opts"]
    got = categories(conformer_base, conformer_variant(tmp_path, "loss_attrs", edit))
    assert got == {"network.output.loss_opts.label_smoothing": "loss",
                   "network.aux_output_block_4_ce.loss_scale": "loss",
                   "network.aux_output_block_8_ce.loss": "loss",
                   "network.aux_output_block_8_ce.loss_opts": "loss"}


@requires_fixtures()
def test_loss_change_coupled_with_the_model_layer_whose_parameters_it_trains(conformer_base, tmp_path):
    """The aux branches reuse `transposedconv`'s parameters: a change of both cannot be switched apart."""
    def edit(net):
        del net["aux_output_block_4_ce"], net["aux_output_block_4"], net["aux_MLP_block_4"]
        del net["masked_tconv_4"], net["transposedconv_4"]
        net["transposedconv"]["filter_size"] = [5]
    d = diff_configs(conformer_base, load(conformer_variant(tmp_path, "coupled", edit)), RULES)
    loss, model = d.knob("loss"), d.knob("model")
    assert [c.path for c in model.changes] == ["network.transposedconv.filter_size"]
    assert not loss.switchable and loss.coupled_with == ["model"]
    assert "trains the parameters of transposedconv" in loss.coupling[0]


@requires_fixtures()
def test_specaugment_function_and_switching_it_off_are_augmentation(conformer_base, tmp_path):
    """`transform` masks only in training (`network.cond_on_train`) and is called from the `source` eval
    layer: changing it, or replacing the layer by a plain copy, is `augmentation`."""
    changed = conformer_variant(tmp_path, "specaug", edit_text=lambda t: t.replace(
        "max_dims=data.dim // 5)", "max_dims=data.dim // 4)"))
    assert categories(conformer_base, changed) == {"transform": "augmentation"}

    def switch_off(net):
        net["source"] = {"class": "copy", "from": "data"}
    assert categories(conformer_base, conformer_variant(tmp_path, "nospecaug", switch_off)) == {
        "network.source.class": "augmentation", "network.source.eval": "augmentation"}


@requires_fixtures()
def test_augmentation_layer_added_in_front_keeps_the_next_layer_model(conformer_base, tmp_path):
    """A new train-only layer on the input: the layer and the edge routed through it are `augmentation`."""
    def edit(net):
        net["noise"] = {"class": "eval", "from": "source", "eval": "self.network.cond_on_train("
                        "lambda: source(0) + tf.random.normal(tf.shape(source(0)), stddev=0.1), lambda: source(0))"}
        net["source0"]["from"] = "noise"
    assert categories(conformer_base, conformer_variant(tmp_path, "noise", edit)) == {
        "network.noise": "augmentation", "network.source0.from": "augmentation"}


def test_dropout_layers_and_the_edge_through_them_are_dropout():
    """The RNA pair: start applies dropout 0.1 to the AM and LM inputs of `readout_in` as separate layers
    where orig has dropout 0.2 on `readout_in` itself (configs/README.md)."""
    d = compare(str(PROJECT_ROOT / "configs/orig/rna_transducer.config"),
                str(PROJECT_ROOT / "configs/start/rna_transducer.config"))
    got = {c.path: (c.category, c.note) for k in d.knobs for c in k.changes if ".readout_in" in c.path
           or c.path.endswith("_dropout")}
    assert got == {
        "network.output.unit.am_dropout": ("dropout", None), "network.output.unit.lm_dropout": ("dropout", None),
        "network.output.unit.readout_in.dropout": ("dropout", None),
        "network.output.unit.readout_in.from": ("dropout", "the same input, routed through a dropout layer"),
        "network.output.unit.readout_in.L2": ("l2", None)}


def test_loss_layer_that_pretraining_grows_is_reported_once(tmp_path):
    """An auxiliary CTC layer on the last encoder layer, added to the RNA orig's construction function: its
    input changes with every pretrain stage, yet it is one `loss` change, with per-epoch values."""
    text = (PROJECT_ROOT / "configs/orig/rna_transducer.config").read_text()
    anchor = '    net_dict["encoder0"] = {"class": "copy", "from": src}\n'
    aux = '    net_dict["enc_aux_ctc"] = {"class": "softmax", "from": src, "loss": "ctc", "target": target}\n'
    assert anchor in text
    with_aux = tmp_path / "aux.config"
    with_aux.write_text(text.replace(anchor, anchor + aux))
    d = compare(str(PROJECT_ROOT / "configs/orig/rna_transducer.config"), str(with_aux), LoadContext())
    assert [k.name for k in d.knobs] == ["loss"]
    (change,) = d.knob("loss").changes
    assert (change.path, change.epochs, change.per_epoch) == ("network.enc_aux_ctc", None, True)
    assert all(v == {"__absent__": True} for v in change.orig)
    assert {tuple(v["from"]) for v in change.start} == {(f"lstm{i}_fw", f"lstm{i}_bw") for i in range(1, 6)}
    assert change.shown(200)[1].startswith('{"class": "softmax", "from": ["lstm1_fw", "lstm1_bw"]') \
        and "(1-5), " in change.shown(200)[1]


def test_change_in_pretrain_and_final_epochs_with_one_category_is_one_change(tmp_path):
    """An aux CTC layer on the top BLSTM layer, which the demo orig's pretraining has only from epoch 2 on:
    the layer differs in two ways (epoch 1, epochs 2-8) but is one `loss` change, not `pretrain` + `loss`."""
    text = (PROJECT_ROOT / "configs/orig/demo_ctc.config").read_text()
    output = '    "output": {"class": "softmax", "from": ["lstm1_fw", "lstm1_bw"]'
    aux = ('    "aux_ctc": {"class": "softmax", "from": ["lstm1_fw", "lstm1_bw"], "loss": "ctc", '
           '"target": "classes", "loss_scale": 0.5},\n')
    grown = '    net_dict["output"]["from"] = ["lstm0_fw", "lstm0_bw"]\n'
    assert output in text and grown in text
    text = text.replace(output, aux + output).replace(grown, grown + grown.replace("output", "aux_ctc"))
    with_aux = tmp_path / "aux.config"
    with_aux.write_text(text)
    d = compare(str(PROJECT_ROOT / "configs/orig/demo_ctc.config"), str(with_aux))
    assert [(c.path, c.category, c.epochs, c.per_epoch) for k in d.knobs for c in k.changes] == [
        ("network.aux_ctc", "loss", None, True)]
