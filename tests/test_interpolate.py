"""Hybrids: exactly the switched knobs (proven by round trip), deterministic, buildable and trainable."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bisect_cli.main import cli
from common.errors import UserError
from interpolate.build import build_config
from interpolate.hybrids import make_hybrid, write_if_new
from interpolate.plan import HybridRequest
from knobs import LoadContext, diff_configs, load, load_pair, load_rules
from knobs.group import NO_EFFECT
from tests.conftest import PROJECT_ROOT, RETURNN_CONFIGS, requires_fixtures

RULES = load_rules()
TINY_COMMON = """
use_tensorflow = True
task = config.value("task", "train")
train = {"class": "Task12AXDataset", "num_seqs": 40}
dev = {"class": "Task12AXDataset", "num_seqs": 10, "fixed_random_seed": 1}
num_inputs = 9
num_outputs = 2
num_epochs = 2
model = "net-model/network"
learning_rate_file = "lr.data"
log_verbosity = 2
tf_session_opts = {"intra_op_parallelism_threads": 1, "inter_op_parallelism_threads": 1}
network = {
    "lstm0": {"class": "rec", "unit": "standardlstm", "n_out": 8, "from": "data", "dropout": %(dropout)s},
    "output": {"class": "softmax", "loss": "ce", "from": "lstm0"},
}
"""
TINY_ORIG = "#!rnn.py\n" + TINY_COMMON % {"dropout": 0.1} + textwrap.dedent("""
    adam = True
    batch_size = 300
    learning_rate = 0.01
    use_learning_rate_control_always = True
    def grow(idx, net_dict):
        if idx >= 1:
            return None
        net_dict["#config"] = {"learning_rate": 0.002, "batch_size": 200}
        return net_dict
    pretrain = {"construction_algo": grow}
    """)
TINY_START = "#!rnn.py\n" + TINY_COMMON % {"dropout": 0.3} + textwrap.dedent("""
    optimizer = {"class": "nadam"}
    batch_size = 500
    learning_rate = 0.005
    """)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "orig.config").write_text(TINY_ORIG)
    (folder / "start.config").write_text(TINY_START)
    orig, start = load_pair(folder / "orig.config", folder / "start.config", LoadContext())
    return folder, orig, start, diff_configs(orig, start, RULES)


def test_tiny_pair_knobs(tiny):
    _, _, _, diff = tiny
    assert {k.name: sorted((c.path, c.epochs) for c in k.changes) for k in diff.knobs} == {
        "optimizer": [("optimizer.class", None)],
        # use_learning_rate_control_always: start, without pretraining, applies LR control in every epoch anyway
        "lr": [("learning_rate", None)],
        "batching": [("batch_size", "1"), ("batch_size", "2")],
        "pretrain": [("pretrain", None), ("pretrain.rebuild", "2")],
        "dropout": [("network.lstm0.dropout", None)],
    }


def test_training_a_hybrid_uses_the_switched_learning_rate(tiny, tmp_path):
    folder, orig, start, diff = tiny
    result = make_hybrid(orig, start, diff, HybridRequest(frozenset({"lr"}), "knock-out"), tmp_path / "h",
                         LoadContext(), RULES)
    assert result.status == "ok", result.reason
    work = tmp_path / "train"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "returnn", result.path], cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = re.sub(r"EpochData\(", "dict(", (work / "lr.data").read_text())
    epochs = eval(text, {"dict": dict, "nan": float("nan"), "inf": float("inf")})  # noqa: S307 - our own file
    # the base (orig) would train epoch 1 at its #config LR 0.002; the hybrid has start's 0.005
    assert epochs[1]["learningRate"] == pytest.approx(0.005)
    assert epochs[2]["learningRate"] == pytest.approx(0.005)
    assert "dev_score" in epochs[2]["error"]


def test_coupled_knob_is_refused_with_the_coupling(write_config, tmp_path):
    body = ("#!rnn.py\ndef transform(x):\n    return x * batch_size\n"
            "network = {'source': {'class': 'eval', 'eval': \"self.network.get_config().typed_value('transform')"
            "(source(0))\"}, 'output': {'class': 'softmax', 'loss': 'ce', 'from': 'source'}}\nbatch_size = %d\n")
    o, s = write_config("o.config", body % 1000), write_config("s.config", body % 2000)
    orig, start = load_pair(o, s, LoadContext())
    diff = diff_configs(orig, start, RULES)
    result = make_hybrid(orig, start, diff, HybridRequest(frozenset({"augmentation"}), "knock-in"), tmp_path,
                         LoadContext(), RULES)
    assert result.status == "refused"
    assert "coupled with batching" in result.reason and "transform() (augmentation) reads batch_size" in result.reason
    both = make_hybrid(orig, start, diff, HybridRequest(frozenset({"augmentation", "batching"}), "knock-in"),
                       tmp_path, LoadContext(), RULES)
    assert both.status == "ok", both.reason


def test_deterministic_file_and_no_overwrite(tiny, tmp_path):
    folder, orig, start, diff = tiny
    request = HybridRequest(frozenset({"optimizer", "dropout"}), "knock-in")
    first = make_hybrid(orig, start, diff, request, tmp_path / "a", LoadContext(), RULES)
    second = make_hybrid(orig, start, diff, request, tmp_path / "b", LoadContext(), RULES)
    assert first.status == second.status == "ok"
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    assert Path(first.path).name == Path(second.path).name
    digest = hashlib.sha256(Path(first.path).read_bytes()).hexdigest()[:10]  # <base>.<direction>.<knobs>.<hash>
    assert Path(first.path).name == f"start.knock-in.dropout+optimizer.{digest}.config"
    text = Path(first.path).read_text()
    assert text.startswith(TINY_START)  # the base's text unchanged, then the marked override section
    header = text[len(TINY_START):]
    assert header.lstrip().startswith("# ==== config-bisect hybrid: everything below overrides the base config above")
    assert orig.sha256 in header and start.sha256 in header and "knock-in" in header
    Path(first.path).write_text("changed by hand")
    with pytest.raises(UserError, match="other content"):
        write_if_new(Path(first.path), Path(second.path).read_text())
    assert Path(first.path).read_text() == "changed by hand"


def test_build_check_built_and_unresolved(tiny, tmp_path):
    folder, orig, start, diff = tiny
    result = make_hybrid(orig, start, diff, HybridRequest(frozenset({"dropout"}), "knock-in"), tmp_path,
                         LoadContext(), RULES)
    built = build_config(result.path, LoadContext())
    assert built["status"] == "built" and {e["epoch"] for e in built["epochs"]} == {1, 2}
    broken = tmp_path / "broken.config"
    broken.write_text(TINY_START.replace('"from": "lstm0"', '"from": "no_such_layer"'))
    failed = build_config(str(broken), LoadContext())
    assert failed["status"] == "unresolved" and "no_such_layer" in failed["error"]


# (direction, knob) -> the knobs it must be switched with: RETURNN couples them (a hybrid of the knob alone is not
# exact and is not written; `hybrids` switches them together). Every other knob must be written alone.
TINY_NOT_ALONE = {("knock-in", "batching"): {"pretrain"}, ("knock-in", "lr"): {"pretrain"},
                  ("knock-out", "pretrain"): {"batching", "lr"}}
RNA_NOT_ALONE = {("knock-in", "lr"): {"pretrain"}, ("knock-out", "pretrain"): {"lr"}}


def test_cli_writes_every_knob_alone_in_both_directions(tiny, tmp_path):
    folder, *_, diff = tiny
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["hybrids", str(folder / "orig.config"), str(folder / "start.config"),
                                      "-o", str(out), "--no-build"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    expected = {f"{d}:{'+'.join(sorted({k.name} | TINY_NOT_ALONE.get((d, k.name), set())))}"
                for d in ("knock-in", "knock-out") for k in diff.knobs}
    assert {h["id"] for h in manifest["hybrids"]} == expected
    for h in manifest["hybrids"]:
        assert set(h) >= {"id", "base", "donor", "direction", "knobs", "path", "sha256"}
        assert h["status"] == "ok" and Path(h["path"]).is_file(), h
        assert (h["reason"] is None) == (len(h["knobs"]) == 1), h  # a merge says why
    bad = CliRunner().invoke(cli, ["hybrids", str(folder / "orig.config"), str(folder / "start.config"),
                                   "-o", str(out), "--knobs", "nonsense"])
    assert bad.exit_code == 2 and "no such knob: nonsense" in bad.output


# ------------------------------------------------------------------ round trip as a property

def _pair(orig_path: Path, start_path: Path, context: LoadContext):
    orig, start = load_pair(orig_path, start_path, context)
    return orig, start, diff_configs(orig, start, RULES), context


@pytest.fixture(scope="module")
def rna_pair():
    return _pair(PROJECT_ROOT / "configs/orig/rna_transducer.config",
                 PROJECT_ROOT / "configs/start/rna_transducer.config", LoadContext())


@pytest.fixture(scope="module")
def conformer_pair():
    base = RETURNN_CONFIGS / "conformer2021"
    return _pair(base / "baseline_12l.config", base / "baseline_6l.config", LoadContext())


def _assert_exact(pair, result, knobs: set[str], direction: str) -> None:
    """The hybrid differs from its base in exactly `knobs` and from its donor in exactly the others."""
    orig, start, diff, context = pair
    assert result.status == "ok" and Path(result.path).is_file(), result.reason
    hybrid = load(result.path, context)
    base, donor = (start, orig) if direction == "knock-in" else (orig, start)
    switchable = {k.name for k in diff.knobs} - NO_EFFECT
    assert {k.name for k in diff_configs(base, hybrid, RULES).knobs} - NO_EFFECT == knobs
    assert {k.name for k in diff_configs(donor, hybrid, RULES).knobs} - NO_EFFECT == switchable - knobs


def _check_round_trip(pair, not_alone: dict[tuple[str, str], set[str]], data, tmp_path_factory) -> None:
    """A hybrid of 1-3 knobs is written and exact. It is refused only where the request leaves out a knob that
    `not_alone` names as coupled, and then the hybrid with those knobs added is written and exact."""
    orig, start, diff, context = pair
    switchable = sorted(k.name for k in diff.knobs if k.name not in NO_EFFECT)
    knobs = data.draw(st.sets(st.sampled_from(switchable), min_size=1, max_size=3))
    direction = data.draw(st.sampled_from(["knock-in", "knock-out"]))
    out = tmp_path_factory.mktemp("hybrids")
    result = make_hybrid(orig, start, diff, HybridRequest(frozenset(knobs), direction), out, context, RULES)
    missing = set().union(*(not_alone.get((direction, k), set()) for k in knobs)) - knobs
    if result.status != "ok":
        assert missing, f"{direction} hybrid of {sorted(knobs)} not written: {result.status}: {result.reason}"
        assert result.status == "failed" and result.reason and not list(out.glob("*.config"))
        knobs = knobs | missing
        result = make_hybrid(orig, start, diff, HybridRequest(frozenset(knobs), direction), out, context, RULES)
    _assert_exact(pair, result, knobs, direction)


def test_every_demo_knob_alone_is_written_and_exact_in_both_directions(demo_pair, tmp_path):
    orig, start, diff, context = demo_pair
    for direction in ("knock-in", "knock-out"):
        for knob in diff.knobs:
            result = make_hybrid(orig, start, diff, HybridRequest(frozenset({knob.name}), direction), tmp_path,
                                 context, RULES)
            _assert_exact(demo_pair, result, {knob.name}, direction)


@pytest.fixture(scope="module")
def demo_pair():
    return _pair(PROJECT_ROOT / "configs/orig/demo_ctc.config", PROJECT_ROOT / "configs/start/demo_ctc.config",
                 LoadContext())


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_demo_pair(demo_pair, data, tmp_path_factory):
    _check_round_trip(demo_pair, {}, data, tmp_path_factory)


def test_switching_pretrain_with_attributes_of_layers_it_removes(demo_pair, tmp_path):
    """Regression: orig's pretrain removes lstm1 in epoch 1 while l2 sets lstm1's L2 in every epoch."""
    orig, start, diff, context = demo_pair
    for direction in ("knock-in", "knock-out"):
        request = HybridRequest(frozenset({"pretrain", "l2", "dropout"}), direction)
        result = make_hybrid(orig, start, diff, request, tmp_path, context, RULES)
        assert result.status == "ok", result.reason


@pytest.fixture(scope="module")
def i6_pair():
    base = RETURNN_CONFIGS / "i6-orig-variants"
    # a generous timeout: these configs load slowly on a busy machine, and a timeout is not what is tested here
    context = LoadContext(context_files=(str(Path(__file__).parent / "data" / "i6_context.config"),), timeout=600)
    return _pair(base / "_orig_config.py", base / "_orig_pre20bs5k_native_fixsepblanklast_config.py", context)


@requires_fixtures()
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_i6_variants_with_context(i6_pair, data, tmp_path_factory):
    _check_round_trip(i6_pair, {}, data, tmp_path_factory)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_rna_pair(rna_pair, data, tmp_path_factory):
    _check_round_trip(rna_pair, RNA_NOT_ALONE, data, tmp_path_factory)


@requires_fixtures()
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_round_trip_conformer_pair(conformer_pair, data, tmp_path_factory):
    _check_round_trip(conformer_pair, {}, data, tmp_path_factory)
