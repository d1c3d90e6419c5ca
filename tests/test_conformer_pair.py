"""The Conformer pair in configs/: orig rebuilds the published 2021 SWB Conformer hybrid baseline, start differs
in the knobs of the Conformer track (configs/README.md); each is named in its category, and every single-knob
hybrid is written, proven by its round trip, and (two of them here) built."""

from __future__ import annotations

import pytest

from interpolate.build import build_config
from interpolate.hybrids import make_hybrids
from knobs import LoadContext, compare, load
from knobs.values import tree_changes
from tests.conftest import PROJECT_ROOT, RETURNN_CONFIGS, requires_fixtures

ORIG = PROJECT_ROOT / "configs/orig/conformer.config"
START = PROJECT_ROOT / "configs/start/conformer.config"


@pytest.fixture(scope="module")
def pair_diff():
    return compare(str(ORIG), str(START))


def categories(diff) -> dict[str, str]:
    return {(c.path + (f" [{c.epochs}]" if c.epochs else "")): c.category for k in diff.knobs for c in k.changes}


@requires_fixtures()
def test_orig_builds_the_published_network_layer_by_layer():
    """`conformer_network()` of orig gives the literal network dict of the published baseline_12l."""
    ours, published = load(ORIG).value("network"), load(RETURNN_CONFIGS / "conformer2021/baseline_12l.config")
    assert len(ours) == 437 and list(tree_changes(ours, published.value("network"))) == []


def test_each_knob_of_the_track_is_named_in_its_category(pair_diff):
    got = categories(pair_diff)
    expected = {
        # frontend: VGG convs vs a max-pool subsampling
        "network.c1": "model", "network.vgg_conv_merged": "model", "network.source_pool": "model",
        "network.source_linear.from": "model",
        # number of layers (a removed block's dropout layers go with the block), dims, heads, kernel, LN vs BN
        "network.conformer_block_12 [3-160]": "model", "network.conformer_block_12_ffmod_1_drop1 [3-160]": "model",
        "network.conformer_block_01_ffmod_1_ff1.n_out": "model", "network.conformer_block_01_self_att.n_out": "model",
        "network.conformer_block_01_self_att.num_heads": "model",
        "network.conformer_block_01_conv_mod_depthwise_conv2.filter_size": "model",
        "network.conformer_block_01_conv_mod_bn": "model", "network.conformer_block_01_conv_mod_ln_replace_bn": "model",
        # aux CE losses at blocks 4 and 8, focal loss
        "network.aux_output_block_4_ce": "loss", "network.transposedconv_4": "loss",
        "network.aux_output_block_8_ce [2-160]": "loss", "network.output.loss_opts": "loss",
        # one-cycle vs newbob, L2, pretrain, batching, init
        "learning_rate_control": "lr", "learning_rate [1-64]": "lr", "network.transposedconv.L2": "l2",
        "pretrain": "pretrain", "network.encoder.from [1]": "pretrain", "network.encoder.from [3-160]": "model",
        "network.conformer_block_05_ffmod_1_drop1 [1]": "pretrain",
        "batch_size": "batching", "accum_grad_multiple_step": "batching",
        "network.conformer_block_01_ffmod_1_ff1.forward_weights_init": "init",
    }
    assert {path: got.get(path) for path in expected} == expected
    assert [k.name for k in pair_diff.knobs] == ["lr", "batching", "pretrain", "l2", "model", "init", "loss"]
    # the aux branches reuse transposedconv's parameters, whose shape changes: loss and model go together;
    # transposedconv's L2 does not stop l2 being switched alone
    assert pair_diff.knob("loss").coupled_with == ["model"] and pair_diff.knob("l2").switchable
    # orig keeps its warmup in the pretrain epochs; start, without pretraining, does so anyway
    assert "use_learning_rate_control_always" not in got
    assert any(e["what"] == "use_learning_rate_control_always" for e in pair_diff.equivalent)


def test_values_only_the_network_builders_read_are_helpers(pair_diff):
    """model_dim, num_heads, ... are read by conformer_network() alone: their effect is in the network."""
    assert {c.path for c in pair_diff.helpers} == {"num_blocks", "model_dim", "ff_dim", "num_heads", "conv_kernel",
                                                   "aux_loss_blocks", "focal_loss_factor", "l2", "init"}
    assert all(k.name != "other" for k in pair_diff.knobs)


def test_every_single_knob_hybrid_is_written_and_proven_and_two_build(tmp_path):
    diff, results = make_hybrids(str(ORIG), str(START), tmp_path, None, ["knock-in", "knock-out"], LoadContext())
    assert {r.id: r.status for r in results if r.status != "ok"} == {}
    switched = {frozenset(r.knobs) for r in results}
    assert {k.name for k in diff.knobs} == set().union(*switched)
    by_id = {r.id: r for r in results}
    for hybrid in ("knock-in:loss+lr+model+pretrain", "knock-out:pretrain"):  # the deepest change; no pretrain
        built = build_config(by_id[hybrid].path, LoadContext())
        assert built["status"] == "built", (hybrid, built)
