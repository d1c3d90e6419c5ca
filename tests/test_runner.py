"""Real tiny trainings: scoring agrees with RETURNN, failures are recorded, killed runs resume, one runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from artefacts.lr_file import read_lr_file
from common.errors import UserError
from demo.task import DemoSpec, ensure_demo_data
from runner import steps
from runner.local import Job, Recognition, WorkdirLock, run_jobs
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    return ensure_demo_data(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return ensure_demo_data(tmp_path_factory.mktemp("small"), DemoSpec(num_seqs=(60, 10, 10)))


def vocab_of(data: Path) -> list[str]:
    vocab = json.loads((data / "vocab.json").read_text())
    return [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def test_training_recognition_and_wer_agree_with_returnn(demo_data, tmp_path, monkeypatch):
    env = {"CONFIG_BISECT_DEMO_DATA": str(demo_data)}
    monkeypatch.chdir(tmp_path.parent)  # regression: a relative work folder (`run -o out/demo`) broke recognition
    relative = Path(tmp_path.name)
    trained = steps.train(ORIG, relative, seed=1, num_epochs=4, env=env)
    assert trained.status == "ok", trained.reason
    assert trained.final_epoch == 4 and trained.best_dev["key"] == "dev_error"
    hyp = steps.recognize(ORIG, relative, 4, vocab_of(demo_data), name="dev",
                          extra_args=("++demo_eval_split", "dev"), env=env)
    scored = steps.score(hyp, demo_data / "dev.ref.txt", tmp_path / "score.json")
    returnn_error = read_lr_file(tmp_path / "learning_rates")[4].scores["dev_error"]
    # the demo's CTC loss reports the greedy-decoding label error: the same quantity as our WER on dev
    assert scored.wer == pytest.approx(100 * returnn_error, abs=1e-4)
    assert 0 < scored.wer < 100  # four epochs: partly trained, so the agreement is not trivial
    assert sum(s.ref_words for s in scored.segments) == scored.ref_words == 270
    assert json.loads((tmp_path / "score.json").read_text())["wer"] == pytest.approx(scored.wer)


def test_failed_training_is_recorded_and_the_run_goes_on(small_data, tmp_path):
    broken = tmp_path / "broken.config"
    broken.write_text(ORIG.read_text().replace("max_seqs = 40", "max_seqs = 40 +"))
    work = tmp_path / "work"
    jobs = [Job("broken", str(broken), 1, 1), Job("orig", str(ORIG), 1, 1)]
    results = run_jobs(jobs, work, Recognition(vocab_of(small_data), str(small_data / "test.ref.txt")),
                       {"CONFIG_BISECT_DEMO_DATA": str(small_data)}, parallel=2)
    bad, good = results
    assert bad.status == "failed" and "RETURNN exited with" in bad.reason and "SyntaxError" in bad.reason
    assert Path(bad.log).is_file()
    assert good.status == "ok" and good.wer is not None and len(good.segments) == 10
    recognition = Recognition(vocab_of(small_data), str(small_data / "test.ref.txt"))
    again = run_jobs(jobs[:1], work, recognition, {}, parallel=1)
    assert again[0].reused and again[0].status == "failed"  # a failed job is finished: not redone by default
    retried = run_jobs(jobs[:1], work, recognition, {}, parallel=1, retry_failed=True)
    assert not retried[0].reused and retried[0].status == "failed"  # trained again (and fails again)


def test_a_second_runner_is_refused(tmp_path):
    with WorkdirLock(tmp_path):
        with pytest.raises(UserError, match=f"another config-bisect run \\(pid {os.getpid()}\\)"):
            run_jobs([], tmp_path, None, {}, parallel=1)


RUNNER_SCRIPT = """
import json, sys
from runner.local import Job, run_jobs
jobs = [Job(f"job{i}", sys.argv[1], i, int(sys.argv[3])) for i in (1, 2)]
results = run_jobs(jobs, __import__("pathlib").Path(sys.argv[2]), None,
                   {"CONFIG_BISECT_DEMO_DATA": sys.argv[4]}, parallel=1)
print(json.dumps([[r.label, r.status, r.reused] for r in results]))
"""


def test_killed_run_resumes_without_redoing_finished_jobs(small_data, tmp_path):
    work = tmp_path / "work"
    cmd = [sys.executable, "-c", RUNNER_SCRIPT, str(ORIG), str(work), "2", str(small_data)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(work.glob("jobs/*/result.json"))) < 1:
        time.sleep(0.5)
    assert len(list(work.glob("jobs/*/result.json"))) == 1
    while time.monotonic() < deadline and len(list(work.glob("jobs/*/"))) < 2:  # the second job has started
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)  # kill -9: no cleanup, the RETURNN child is orphaned
    first.wait()
    done_before = next(work.glob("jobs/*/result.json"))
    stamp = done_before.stat().st_mtime
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    statuses = json.loads(second.stdout.strip().splitlines()[-1])
    assert sorted(statuses) == [["job1", "ok", True], ["job2", "ok", False]]
    assert done_before.stat().st_mtime == stamp  # the finished job was not redone
