"""The reproducibility lint on real configs: each fact a warning with a stable code, what was found and what
to do; in the text output and in `--json` under "warnings"."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from knobs import LoadContext, compare, diff_configs, load, load_rules
from tests.conftest import PROJECT_ROOT, RETURNN_CONFIGS, requires_fixtures
from tests.fixture_variants import conformer_variant

RNA_ORIG = PROJECT_ROOT / "configs/orig/rna_transducer.config"
RNA_START = PROJECT_ROOT / "configs/start/rna_transducer.config"
RULES = load_rules()


def by_code(diff) -> dict[str, list]:
    found: dict[str, list] = {}
    for w in diff.warnings:
        found.setdefault(w.code, []).append(w)
    return found


@pytest.fixture(scope="module")
def rna_pair():
    return compare(str(RNA_ORIG), str(RNA_START))


def test_accumulation_before_behavior_version_15(rna_pair):
    """orig accumulates 3 batches (RETURNN issue 1205): its seeds do not pin the training."""
    (warning,) = by_code(rna_pair)["accum-grad-nondeterministic"]
    assert warning.side == "orig" and "accum_grad_multiple_step = 3" in warning.message
    assert "behavior_version = 15" in warning.advice
    fixed = compare(str(RNA_ORIG), str(RNA_START), LoadContext(settings=(("behavior_version", 15),)))
    assert "accum-grad-nondeterministic" not in fixed.warning_codes()


def test_newbob_on_a_different_error_measure_and_unseeded_data_order(rna_pair):
    codes = rna_pair.warning_codes()
    assert "newbob-on-different-dev" in codes  # dev_error_output/output_prob vs dev_score_full_sum
    (order,) = by_code(rna_pair)["data-order-not-seeded"]  # batching = "random" on both sides
    assert order.side is None and "dataset_random_seed_offset" in order.advice


@pytest.fixture(scope="module")
def conformer(tmp_path_factory):
    return load(conformer_variant(tmp_path_factory.mktemp("base"), "base"))


@requires_fixtures()
def test_cudnn_convolutions_on_gpu_without_deterministic_ops(conformer, tmp_path, monkeypatch):
    """The Conformer trains on `device = 'gpu'` with 2-D and depthwise convolutions (cuDNN)."""
    monkeypatch.delenv("TF_DETERMINISTIC_OPS", raising=False)
    monkeypatch.delenv("TF_CUDNN_DETERMINISTIC", raising=False)
    deterministic = conformer_variant(tmp_path, "det", edit_text=lambda t: t.replace(
        "\nbatch_size = 10000", "\nimport os\nos.environ['TF_DETERMINISTIC_OPS'] = '1'\nbatch_size = 10000"))
    d = diff_configs(conformer, load(deterministic), RULES)
    (warning,) = by_code(d)["cudnn-nondeterministic"]
    assert warning.side == "orig" and "convolutions" in warning.message
    assert "TF_DETERMINISTIC_OPS=1" in warning.advice
    same = diff_configs(conformer, conformer, RULES)
    assert [w.side for w in by_code(same)["cudnn-nondeterministic"]] == ["both"]
    monkeypatch.setenv("TF_DETERMINISTIC_OPS", "1")  # set for the trainings started from this shell
    assert "cudnn-nondeterministic" not in diff_configs(conformer, conformer, RULES).warning_codes()


@requires_fixtures()
def test_different_dev_and_train_data_and_newbob(conformer, tmp_path):
    def other_data(text: str) -> str:
        return text.replace("--config=sprint.dev.config", "--config=sprint.dev2.config").replace(
            "--config=sprint.train.config", "--config=sprint.train-sp.config")
    d = diff_configs(conformer, load(conformer_variant(tmp_path, "data", edit_text=other_data)), RULES)
    found = by_code(d)
    assert {"dev-data-differs", "train-data-differs", "newbob-on-different-dev"} <= set(found)
    assert "dev.sprintConfigStr" in found["dev-data-differs"][0].message
    assert "not a model gap" in found["dev-data-differs"][0].message


@requires_fixtures()
def test_seeds_set_in_the_config(conformer, tmp_path):
    """`random_seed` differing per side is replaced by every replicate's seed; a value computed from it at
    load time does not follow the replicate's seed."""
    def seeded(seed: int, use: bool):
        extra = f"\nrandom_seed = {seed}\n" + ("train['fixed_random_seed'] = random_seed\n" if use else "")
        return lambda t: t + extra
    one = load(conformer_variant(tmp_path, "seed1", edit_text=seeded(1, False)))
    two = load(conformer_variant(tmp_path, "seed2", edit_text=seeded(2, True)))
    d = diff_configs(one, two, RULES)
    found = by_code(d)
    assert "random_seed 1 vs 2" in found["seed-differs"][0].message
    (load_time,) = found["seed-not-varied"]
    assert load_time.side == "start" and load_time.message.startswith("train uses random_seed at load time")
    assert d.knob("seed") is not None


@requires_fixtures()
def test_training_length_differs():
    name = "{}.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.config"
    base = RETURNN_CONFIGS / "rnnt2020"
    d = compare(str(base / name.format("rna-tf2")), str(base / name.format("rnnt-warp")))
    (warning,) = by_code(d)["training-length-differs"]
    assert "num_epochs 150 vs 250" in warning.message and "--epochs" in warning.advice


def test_warnings_in_text_and_json_output():
    runner = CliRunner()
    text = runner.invoke(cli, [str(RNA_ORIG), str(RNA_START)])
    assert text.exit_code == 0, text.output
    section = text.output[text.output.index("Warnings"):]
    assert "accum-grad-nondeterministic (orig): accum_grad_multiple_step = 3" in section
    assert "→ seed replicates measure this noise too" in section
    data = json.loads(runner.invoke(cli, [str(RNA_ORIG), str(RNA_START), "--json"]).output)
    assert any(w["code"] == "accum-grad-nondeterministic" and w["side"] == "orig" for w in data["warnings"])
    assert all(set(w) == {"code", "message", "advice", "side"} and w["message"] and w["advice"]
               for w in data["warnings"])
