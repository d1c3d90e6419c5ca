"""The runner's steps on real (tiny) RETURNN trainings: train, recognize, score; failures are recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from artefacts.lr_file import read_lr_file
from demo.task import ensure_demo_data
from runner import steps
from tests.conftest import PROJECT_ROOT
from tests.ff_pair import FF_CONFIG, TINY, VOCAB


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return ensure_demo_data(tmp_path_factory.mktemp("cache"), TINY)


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory) -> steps.TrainResult:
    folder = tmp_path_factory.mktemp("ff")
    (folder / "ff.config").write_text(FF_CONFIG)
    return steps.train(folder / "ff.config", folder / "work", seed=1, num_epochs=2,
                       extra_args=("++demo_data_dir", str(tiny_data)))


def test_tiny_training_recognition_and_wer_agree_with_returnn(trained, tiny_data, tmp_path, monkeypatch):
    assert trained.status == "ok", trained.reason
    assert trained.final_epoch == 2 and trained.seconds > 0 and trained.best_dev["key"] == "dev_error"
    work, config = Path(trained.work_dir), Path(trained.work_dir).parent / "ff.config"
    monkeypatch.chdir(work.parent.parent)  # regression: a relative work folder (`run -o out/demo`) broke recognition
    relative = Path(work.parent.name) / work.name
    hyp = steps.recognize(config, relative, 2, VOCAB, name="dev",
                          extra_args=("++demo_eval_split", "dev", "++demo_data_dir", str(tiny_data)))
    lines = hyp.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [f"dev/seq{n:05d}" for n in range(20)]
    scored = steps.score(hyp, tiny_data / "dev.ref.txt", tmp_path / "score.json")
    returnn_error = read_lr_file(work / steps.LR_FILE)[2].scores["dev_error"]
    # greedy CTC decoding (beam_width 1 in the loss): RETURNN's label error is the same quantity as our WER
    assert scored.wer == pytest.approx(100 * returnn_error, abs=1e-4)
    assert 0 < scored.wer < 100
    refs = (tiny_data / "dev.ref.txt").read_text().splitlines()
    assert scored.ref_words == sum(len(line.split()) - 1 for line in refs) == sum(s.ref_words for s in scored.segments)
    assert json.loads((tmp_path / "score.json").read_text()) == json.loads(json.dumps(scored.to_json()))
    assert json.loads(json.dumps(trained.to_json()))["status"] == "ok"


def test_lr_file_and_checkpoint_checks(trained, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(trained.work_dir, work)
    assert steps.training_outcome(work, 2)[:2] == (None, 2)
    assert steps.training_outcome(work, 3)[0] == "training stopped after epoch 2 of 3"
    lr_file = work / steps.LR_FILE
    text = lr_file.read_text()
    lr_file.write_text(text.replace("'dev_score': ", "'dev_score': float('nan'), 'x': ", 1))
    assert steps.training_outcome(work, 2)[0] == "non-finite dev_score in epoch 1"
    lr_file.write_text(text)
    for index in work.glob(f"{steps.MODEL}*.002.index"):
        index.unlink()
    assert steps.training_outcome(work, 2)[0].startswith("no checkpoint net-model/network.002")


def test_demo_start_config_trains(tiny_data, tmp_path):
    """The demo's start config trains (one epoch on the tiny set), with the data folder from the environment
    (orig's trains in tests/test_runner.py)."""
    config = PROJECT_ROOT / "configs" / "start" / "demo_ctc.config"
    result = steps.train(config, tmp_path, seed=1, num_epochs=1, env={"CONFIG_BISECT_DEMO_DATA": str(tiny_data)})
    assert result.status == "ok", result.reason
    assert result.final_epoch == 1


def test_failed_trainings_are_recorded(tiny_data, tmp_path):
    broken = tmp_path / "syntax.config"
    broken.write_text(FF_CONFIG.replace("max_seqs = 40", "max_seqs = 40 +"))
    nan_lr = tmp_path / "nan.config"
    nan_lr.write_text(FF_CONFIG.replace("learning_rate = 0.01", "learning_rate = 1e30"))
    data = ("++demo_data_dir", str(tiny_data))
    syntax = steps.train(broken, tmp_path / "a", seed=1, extra_args=data)
    assert syntax.status == "failed" and "RETURNN exited with" in syntax.reason and "SyntaxError" in syntax.reason
    diverged = steps.train(nan_lr, tmp_path / "b", seed=1, extra_args=data)
    assert diverged.status == "failed" and "nan score" in diverged.reason
    slow = steps.train(PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config", tmp_path / "c", seed=1, timeout=1,
                       extra_args=data)
    assert slow.status == "failed" and slow.reason == "training did not finish within 1 s"
    for result in (syntax, diverged, slow):
        assert Path(result.log).is_file() and result.final_epoch is None
    assert not (tmp_path / "c" / steps.PID_FILE).exists()  # the killed RETURNN process is not left behind


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    blank = 3
    frames = [0, 0, blank, 0, 1, 1, blank, blank, 2]
    posteriors = np.eye(4)[frames] * 0.9 + 0.025
    assert steps.ctc_greedy(posteriors, blank) == [0, 0, 1, 2]
    assert steps.ctc_greedy(np.eye(4)[[blank, blank]], blank) == []
