"""Loading real RETURNN configs like RETURNN does: statement by statement, in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from knobs import LoadContext, load
from tests.conftest import PROJECT_ROOT, RETURNN_CONFIGS, requires_fixtures

O1 = (RETURNN_CONFIGS / "rnnt2020"
      / "rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.config")
I6 = RETURNN_CONFIGS / "i6-orig-variants"
I6_CONTEXT = Path(__file__).parent / "data" / "i6_context.config"


@pytest.fixture(scope="module")
def o1():
    return load(O1)


@requires_fixtures()
def test_2020_original_loads_with_old_module_names_and_unresolved_cluster_statements(o1):
    failed = {u["name"] for u in o1.unresolved}
    # the old DimensionTag API, extern_data using it, and the RASR datasets of the authors' cluster
    assert failed == {"time_tag", "output_len_tag", "extern_data", "train", "dev", "eval_datasets"}
    assert all(u["error"] and u["source"] for u in o1.unresolved)
    # `from TFUtil import DimensionTag` resolved through RETURNN's old-module loader
    assert o1.values["DimensionTag"]["value"]["__imported__"].startswith("returnn.")
    assert o1.value("train")["__unresolved__"].startswith("train =")


@requires_fixtures()
def test_2020_original_per_epoch_view(o1):
    epochs = o1.per_epoch["epochs"]
    lrs = [e["learning_rate"] for e in epochs]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(b >= a for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    nets = o1.per_epoch["networks"]
    first, last = nets[epochs[0]["net"]], nets[epochs[-1]["net"]]
    n_lstm = [sum(1 for k in net if k.startswith("lstm") and k.endswith("_fw")) for net in (first, last)]
    assert n_lstm == [2, 6]
    assert (first["lstm0_fw"]["n_out"], last["lstm0_fw"]["n_out"]) == (512, 1024)


@requires_fixtures()
def test_i6_variant_needs_the_context_and_then_gives_pretrain_batch_size(tmp_path):
    config = I6 / "_orig_pre20bs5k_native_config.py"
    bare = load(config)  # reads target/extern_data from get_global_config(): best effort goes on
    assert {"target", "extern_data"} <= {u["name"] for u in bare.unresolved}
    assert bare.per_epoch is None and any(w["code"] == "per-epoch-view-failed" for w in bare.warnings)
    loaded = load(config, LoadContext(context_files=(str(I6_CONTEXT),)))
    assert [u["name"] for u in loaded.unresolved] == ["targetb_recomb_recog"]  # returnn_common is not on PyPI
    batch = [e["config"]["batch_size"] for e in loaded.per_epoch["epochs"]]
    assert batch[:20] == [5000] * 20 and set(batch[20:]) == {4000}


def test_settings_and_task_default(write_config):
    path = write_config("a.config", """
        #!rnn.py
        task_seen = config.value("task", "none")
        lr_seen = learning_rate * 2
        """)
    loaded = load(path, LoadContext(settings=(("learning_rate", 0.5),)))
    assert loaded.value("task_seen") == "train"
    assert loaded.value("lr_seen") == 1.0


def test_side_effects_stay_out_of_the_callers_directory(write_config, tmp_path, monkeypatch):
    path = write_config("effects.config", """
        #!rnn.py
        import os
        open("written_by_config.txt", "w").write("x")
        here = os.getcwd()
        """)
    monkeypatch.chdir(tmp_path)
    loaded = load(path)
    assert not (tmp_path / "written_by_config.txt").exists()
    assert loaded.value("here") != str(tmp_path)
    assert not Path(loaded.value("here")).exists()  # the throw-away directory is gone


def test_timeout_is_a_user_error(write_config):
    path = write_config("slow.config", "#!rnn.py\nimport time\ntime.sleep(30)\n")
    with pytest.raises(UserError, match="did not finish within 2 s"):
        load(path, LoadContext(timeout=2))


def test_functions_compare_by_normalized_source_and_read_globals(write_config):
    a = load(write_config("a.config", '''
        #!rnn.py
        factor = 2
        def f(x):
            """Doc."""
            return x * factor  # comment
        '''))
    b = load(write_config("b.config", '''
        #!rnn.py
        factor = 2
        def f(x):
            return x*factor
        '''))
    c = load(write_config("c.config", '''
        #!rnn.py
        factor = 3
        def f(x):
            return x * factor
        '''))
    fa, fb, fc = (cfg.value("f") for cfg in (a, b, c))
    assert fa["fingerprint"] == fb["fingerprint"]
    assert fa["source_hash"] == fc["source_hash"] and fa["fingerprint"] != fc["fingerprint"]
    assert fa["refs"] == ["factor"]


def test_cli_bad_input_is_one_line_exit_2(write_config):
    broken = write_config("broken.config", "#!rnn.py\nlearning_rate = (\n")
    ok = write_config("ok.config", "#!rnn.py\nlearning_rate = 0.1\n")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bisect_cli", str(broken), str(ok)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.config" in lines[0] and "SyntaxError" in lines[0]
    assert "Traceback" not in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "bisect_cli", "nope.config", str(ok)], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "nope.config: no such file or folder" in missing.stderr
