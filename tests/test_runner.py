"""The local runner: failures are recorded, every input is in the job key, killed runs resume (the orphan
stopped), one runner per work folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import UserError
from demo.task import DemoSpec, ensure_demo_data
from runner import steps
from runner.local import Job, WorkdirLock, job_key, process_running, run_jobs
from runner.settings import Recognition, RunSettings
from tests.conftest import PROJECT_ROOT

ORIG = PROJECT_ROOT / "configs" / "orig" / "demo_ctc.config"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    return ensure_demo_data(tmp_path_factory.mktemp("small"), DemoSpec(num_seqs=(60, 10, 10)))


def vocab_of(data: Path) -> list[str]:
    vocab = json.loads((data / "vocab.json").read_text())
    return [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def settings_for(work: Path, data: Path | None = None, recognition: Recognition | None = None,
                 **more) -> RunSettings:
    return RunSettings(ORIG, ORIG, work, recognition=recognition,
                       data_env={"CONFIG_BISECT_DEMO_DATA": str(data)} if data else {}, **more)


def test_failed_training_is_recorded_and_the_run_goes_on(small_data, tmp_path):
    broken = tmp_path / "broken.config"
    broken.write_text(ORIG.read_text().replace("max_seqs = 40", "max_seqs = 40 +"))
    jobs = [Job("broken", str(broken), 1, 1), Job("orig", str(ORIG), 1, 1)]
    settings = settings_for(tmp_path / "work", small_data, Recognition(vocab_of(small_data),
                                                                        str(small_data / "test.ref.txt")))
    results = run_jobs(jobs, settings)
    bad, good = results
    assert bad.status == "failed" and "RETURNN exited with" in bad.reason and "SyntaxError" in bad.reason
    assert Path(bad.log).is_file()
    assert good.status == "ok" and good.wer is not None and len(good.segments) == 10
    again = run_jobs(jobs[:1], settings)
    assert again[0].reused and again[0].status == "failed"  # a failed job is finished: not redone by default
    retried = run_jobs(jobs[:1], replace(settings, retry_failed=True))
    assert not retried[0].reused and retried[0].status == "failed"  # trained again (and fails again)


def test_the_keys_cover_every_input_that_changes_a_result(tmp_path):
    """Regression: other --refs (or a vocabulary, data folder, recognition arguments) reused old WERs. A training
    is keyed by what changes the model, its scoring by what changes the WER."""
    refs = tmp_path / "test.ref.txt"
    refs.write_text("test/seq00000 w1 w2\n")
    recognition = Recognition(("w0", "w1", "w2"), str(refs))
    job = Job("orig", str(ORIG), 1, 2)
    data = {"CONFIG_BISECT_DEMO_DATA": "/data/a"}
    key, score_key = job_key(job, data), recognition.key()
    assert job_key(job, data) == key and recognition.key() == score_key
    trainings = [job_key(job, {"CONFIG_BISECT_DEMO_DATA": "/data/b"}), job_key(job, {}),
                 job_key(Job("orig", str(ORIG), 2, 2), data), job_key(Job("orig", str(ORIG), 1, 3), data)]
    assert len({key, *trainings}) == len(trainings) + 1
    other_refs = tmp_path / "other.ref.txt"
    other_refs.write_text("test/seq00000 w1\n")
    scorings = [Recognition(("w0", "w2", "w1"), str(refs)).key(), Recognition(recognition.vocab, str(other_refs)).key(),
                Recognition(recognition.vocab, str(refs), ("++demo_eval_split", "dev")).key()]
    assert len({score_key, *scorings}) == len(scorings) + 1
    # what does not change a result does not change a key: the label, where the config or the references lie
    copy = tmp_path / "copy.config"
    copy.write_text(ORIG.read_text())
    moved_refs = tmp_path / "moved.ref.txt"
    moved_refs.write_text(refs.read_text())
    assert job_key(Job("start", str(copy), 1, 2), data) == key
    assert Recognition(recognition.vocab, str(moved_refs)).key() == score_key
    refs.write_text("test/seq00000 w2 w2\n")  # references edited in place: scored afresh
    assert recognition.key() != score_key
    with pytest.raises(UserError, match="cannot read the references"):
        Recognition(recognition.vocab, str(tmp_path / "missing.ref.txt")).key()


def test_other_references_score_a_finished_training_again_without_training_it_again(small_data, tmp_path):
    """Regression: a job that had finished without references was reused without a WER (blocking `run
    --strategy` for good), and one scored against other references kept their WER."""
    job = Job("orig", str(ORIG), 1, 1)
    unscored = settings_for(tmp_path / "work", small_data)
    (trained,) = run_jobs([job], unscored)
    assert trained.status == "ok" and trained.wer is None and trained.score_key is None and not trained.reused
    stamp = (Path(trained.train_dir) / "result.json").stat().st_mtime
    refs = small_data / "test.ref.txt"
    half = tmp_path / "half.ref.txt"  # the same test split, every reference cut to its first half
    half.write_text("".join(" ".join(line.split()[:1 + len(line.split()[1:]) // 2]) + "\n"
                            for line in refs.read_text().splitlines()))
    full_recognition = Recognition(vocab_of(small_data), str(refs))
    (full,) = run_jobs([job], replace(unscored, recognition=full_recognition))
    (cut,) = run_jobs([job], replace(unscored, recognition=Recognition(vocab_of(small_data), str(half))))
    (again,) = run_jobs([job], replace(unscored, recognition=full_recognition))
    assert all(r.reused and r.status == "ok" and r.key == trained.key for r in (full, cut, again))  # trained once
    assert (Path(trained.train_dir) / "result.json").stat().st_mtime == stamp
    assert full.wer is not None and cut.wer is not None and full.wer != cut.wer
    assert sum(s["ref_words"] for s in cut.segments) < sum(s["ref_words"] for s in full.segments)
    assert full.score_key != cut.score_key and again.score_key == full.score_key
    assert (again.wer, again.segments) == (full.wer, full.segments)
    assert sorted(p.name for p in (Path(trained.train_dir) / "scored").iterdir()) == sorted(
        [full.score_key, cut.score_key])


def test_a_second_runner_is_refused_and_one_process_may_nest(tmp_path):
    with WorkdirLock(tmp_path):
        with WorkdirLock(tmp_path):  # the command holds it, the runner it calls takes it again
            assert run_jobs([], settings_for(tmp_path)) == []
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
        code = ("import sys; from runner.local import WorkdirLock; from common.errors import UserError\n"
                "try:\n    WorkdirLock(__import__('pathlib').Path(sys.argv[1])).__enter__()\n"
                "except UserError as e:\n    print(e)")
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True,
                               text=True, timeout=60)
        assert f"another config-bisect run (pid {os.getpid()}) is using this work folder" in other.stdout
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert free.returncode == 0 and free.stdout == ""  # released when the outer holder let go


RUNNER_SCRIPT = """
import json, sys
from pathlib import Path
from runner.local import Job, run_jobs
from runner.settings import RunSettings
jobs = [Job(f"job{i}", sys.argv[1], i, int(sys.argv[3])) for i in (1, 2)]
settings = RunSettings(Path(sys.argv[1]), Path(sys.argv[1]), Path(sys.argv[2]), parallel=1,
                       data_env={"CONFIG_BISECT_DEMO_DATA": sys.argv[4]})
print(json.dumps([[r.label, r.status, r.reused] for r in run_jobs(jobs, settings)]))
"""


def _wait_for(condition, deadline: float, what: str) -> None:
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _returnn_pid(job_dir: Path) -> int | None:
    try:
        return int((job_dir / steps.PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def test_killed_run_resumes_without_redoing_finished_jobs_and_stops_the_orphan(small_data, tmp_path):
    work = tmp_path / "work"
    cmd = [sys.executable, "-c", RUNNER_SCRIPT, str(ORIG), str(work), "3", str(small_data)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    _wait_for(lambda: len(list(work.glob("jobs/*/result.json"))) == 1, deadline, "the first job to finish")
    second_dir = next(d for d in work.glob("jobs/*") if not (d / "result.json").exists())
    _wait_for(lambda: _returnn_pid(second_dir) is not None, deadline, "the second job's RETURNN to start")
    orphan = _returnn_pid(second_dir)
    first.send_signal(signal.SIGKILL)  # kill -9: no cleanup, the RETURNN child is orphaned
    first.wait()
    # paused, the orphan cannot end by itself before the next run looks at it: only the runner can stop it
    os.kill(orphan, signal.SIGSTOP)
    try:
        assert process_running(orphan), "the orphan must still be there when the next run starts"
        done_before = next(work.glob("jobs/*/result.json"))
        stamp = done_before.stat().st_mtime
        second = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the job starts afresh in its folder: by then the orphan of the killed run must be gone
        _wait_for(lambda: _returnn_pid(second_dir) not in (None, orphan) or second.poll() is not None, deadline,
                  "the job to start again")
        assert not process_running(orphan), "the killed run's RETURNN process was left running"
    finally:
        if process_running(orphan):
            os.kill(orphan, signal.SIGKILL)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-2000:]
    statuses = json.loads(out.strip().splitlines()[-1])
    assert sorted(statuses) == [["job1", "ok", True], ["job2", "ok", False]]
    assert done_before.stat().st_mtime == stamp  # the finished job was not redone
