"""Options of `diff` and `hybrids` that nothing else exercises: `-v`, `--epochs`, the build step, and folder pairs
with a config file on one side only."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bisect_cli.main import cli
from knobs.pairing import pair_paths
from tests.conftest import PROJECT_ROOT
from tests.ff_pair import pair_configs

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"
START = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"


def test_diff_verbose_lists_every_change_under_its_knob():
    brief = CliRunner().invoke(cli, [str(ORIG), str(START)])
    verbose = CliRunner().invoke(cli, [str(ORIG), str(START), "-v"])
    assert brief.exit_code == verbose.exit_code == 0, brief.output + verbose.output
    every_change = "network.lstm1_bw.L2 [epochs 2-8]: 0.0001 → 0.001"  # the table shows it as "+1 more"
    assert every_change in verbose.output and every_change not in brief.output
    assert "\nl2\n" in verbose.output and "\ndropout\n" in verbose.output


def test_diff_epochs_compares_only_the_first_epochs():
    result = CliRunner().invoke(cli, [str(ORIG), str(START), "-v", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "(3 epochs compared)" in result.output and "(8 epochs compared)" not in result.output
    assert "network.lstm1_fw.dropout [epochs 2-3]: 0.1 → 0.3" in result.output
    refused = CliRunner().invoke(cli, [str(ORIG), str(START), "--epochs", "0"])
    assert refused.exit_code == 2 and "--epochs" in refused.output


def test_folder_pairs_say_which_files_have_no_partner(tmp_path):
    for side, names in (("orig", ("a.config", "b.config")), ("start", ("a.config", "c.config", "d.config"))):
        (tmp_path / side).mkdir()
        for name in names:
            (tmp_path / side / name).write_text(f"#!rnn.py\nlearning_rate = {0.1 if side == 'orig' else 0.2}\n")
    notes: list[str] = []
    pairs = pair_paths(str(tmp_path / "orig"), str(tmp_path / "start"), notes.append)
    assert [(o.name, s.name) for o, s in pairs] == [("a.config", "a.config")]
    assert notes == [f"note: only in {tmp_path / 'orig'}, not compared (no same-named file in {tmp_path / 'start'}): "
                     f"b.config",
                     f"note: only in {tmp_path / 'start'}, not compared (no same-named file in {tmp_path / 'orig'}): "
                     f"c.config, d.config"]
    result = CliRunner().invoke(cli, [str(tmp_path / "orig"), str(tmp_path / "start"), "--json"])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == notes  # on stderr: stdout stays the JSON
    assert json.loads(result.stdout)["knobs"][0]["name"] == "lr"


def test_hybrids_are_built_unless_told_not_to(tmp_path):
    for side, text in zip(("orig", "start"), pair_configs(tmp_path / "data"), strict=True):
        (tmp_path / f"{side}.config").write_text(text)
    args = ["hybrids", str(tmp_path / "orig.config"), str(tmp_path / "start.config"), "--knobs", "l2", "--direction",
            "knock-in"]
    built = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "built")])
    assert built.exit_code == 0, built.output
    (hybrid,) = json.loads((tmp_path / "built" / "manifest.json").read_text())["hybrids"]
    assert hybrid["status"] == "ok" and hybrid["build"]["status"] == "built", hybrid["build"]
    assert {e["epoch"] for e in hybrid["build"]["epochs"]} == {1, 2}  # the TF graph of the first and final epoch
    skipped = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "skipped"), "--no-build"])
    assert skipped.exit_code == 0 and "skipped" in skipped.output
    assert json.loads((tmp_path / "skipped" / "manifest.json").read_text())["hybrids"][0]["build"] is None
