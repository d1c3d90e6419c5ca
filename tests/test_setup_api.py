"""A bisection added to an existing Sisyphus setup (i6_experiments style `sis_run_with_prefix`), run with the local
engine: outputs and aliases under the setup's prefix, and the very jobs `submit` builds for the same plan."""

from __future__ import annotations

import ast
import json
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bisect_cli.main import cli
from bisect_cli.submit_cmd import sisyphus_available
from jobs.engine_settings import DEFAULT_RQMT, settings_text
from jobs.setup_api import config_text
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
PREFIX = "experiments/asr/bisect_demo"


def test_a_config_dict_is_written_as_returnn_reads_it(tmp_path):
    text = config_text({"num_epochs": 8, "optimizer": {"class": "nadam", "epsilon": 1e-08}, "lr": 1 / 3})
    assert text.splitlines()[0] == "#!rnn.py"
    values = {}
    exec(text, {}, values)
    assert values == {"num_epochs": 8, "optimizer": {"class": "nadam", "epsilon": 1e-08}, "lr": 1 / 3}


def start_as_dict(data_dir: Path) -> dict:
    """The demo start config's values, as an i6 setup holds them in `ReturnnConfig.config` (plus the eval data)."""
    from knobs import load

    values = {k: ast.literal_eval(v["literal"]) for k, v in load(START).values.items()}
    values["eval"] = {**values["dev"], "files": [str(data_dir / "test.hdf")]}
    return values


def job_ids(work: Path, kind: str) -> set[str]:
    return {p.name for p in (work / "jobs" / "bisect_jobs").glob(f"{kind}.*")}


@pytest.mark.skipif(not sisyphus_available(), reason="RWTH Sisyphus (with sisyphus.Job) is not installed; install it "
                    "from github.com/rwth-i6/sisyphus to run this test")
def test_sis_run_with_prefix_adds_the_jobs_submit_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    from demo.task import ensure_demo_data

    data = ensure_demo_data()
    monkeypatch.setenv("CONFIG_BISECT_DEMO_DATA", str(data))
    setup = tmp_path / "setup"
    (setup / "config" / "experiments").mkdir(parents=True)
    (setup / "work").mkdir()
    (setup / "settings.py").write_text(settings_text("local", DEFAULT_RQMT, (), cpus=2))
    (setup / "config" / "experiments" / "asr.py").write_text(textwrap.dedent(f'''
        from jobs.setup_api import add_bisection

        START = {start_as_dict(data)!r}


        def sis_run_with_prefix(prefix_name="experiments/asr"):
            add_bisection(prefix_name + "/bisect_demo", {str(ORIG)!r}, START, knobs=["batching"],
                          direction="knock-in", baseline_seeds=1, epochs=1, vocab={str(data / "vocab.json")!r},
                          refs={str(data / "test.ref.txt")!r})


        def py():
            sis_run_with_prefix()
        '''))
    sis = Path(sys.executable).with_name("sis")
    run = subprocess.run([str(sis), "m", "-r", "config/experiments/asr.py"], cwd=setup, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:]
    assert not list((setup / "work").rglob("error.*")), run.stdout[-3000:]
    results = json.loads((setup / "output" / PREFIX / "demo_ctc" / "results.json").read_text())
    assert [h["label"] for h in results["hybrids"]][:2] == ["orig", "start"] and len(results["hybrids"]) == 3
    assert (setup / "output" / PREFIX / "demo_ctc" / "report" / "report.html").is_file()
    for alias in ("orig/seed1/train", "start/seed1/score", "knock-in.batching/hybrid"):
        assert (setup / "alias" / PREFIX / "demo_ctc" / alias).is_symlink(), alias
    written = list((setup / "config-bisect-inputs").glob("start.*.config"))
    assert len(written) == 1

    # `submit` for the same pair and plan builds the very same jobs (same hashes: finished work is shared)
    other = tmp_path / "submitted"
    dry = CliRunner().invoke(cli, ["submit", str(ORIG), str(written[0]), "-o", str(other), "--knobs", "batching",
                                   "--direction", "knock-in", "--baseline-seeds", "1", "--epochs", "1",
                                   "--vocab", str(data / "vocab.json"), "--refs", str(data / "test.ref.txt"),
                                   "--dry-run"])
    assert dry.exit_code == 0, dry.output
    pair = runpy.run_path(str(other / "config" / "bisect.py"))
    gather = pair["bisect_demo_ctc"]()
    scored = {Path(run["score"].creator._sis_id()).name for entry in gather.entries for run in entry["runs"]}
    assert scored == job_ids(setup / "work", "RecognizeScoreJob") and len(scored) == 3
    assert gather._sis_id().split("/")[-1] in job_ids(setup / "work", "GatherResultsJob")
