"""Sisyphus jobs of a bisection: write a hybrid, train it, recognize and score it, gather the results.

In the style of i6_core: small jobs, explicit outputs, hashed inputs, `tasks()` yielding named tasks with
`rqmt`. Task bodies call the same functions as the local runner (`interpolate.hybrids`, `runner.steps`,
`jobs.gather` with `runner.results`). Hashes depend on what changes results (config content, knobs, seed,
epochs, scorer settings), not on paths or rqmt: inputs are `tk.Path`s whose hash is their file's content
hash (see `jobs.graph.content_path`), and data locations and requirements are left out of the hash
(`jobs.plan.hashed_args`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from sisyphus import Job, Task, tk

from common.atomic import write_atomic
from jobs.engine_settings import DEFAULT_RQMT, join_rqmt
from jobs.plan import hashed_args
from jobs.task_tries import TRAIN_TRIES, current_try

# signals that stop a training from outside; a crash (SIGSEGV, SIGABRT) is a failed training
_STOPPED_FROM_OUTSIDE = (signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP)


class _BisectJob(Job):
    """Leaves data locations and requirements out of the hash (they do not change results)."""

    @classmethod
    def hash(cls, parsed_args: dict[str, Any]) -> str:
        return super().hash(hashed_args(parsed_args))


class _ReturnnJob(_BisectJob):
    """Runs RETURNN in an environment given the i6_core way: `returnn_python_exe` and `returnn_root` are input
    paths and part of the hash, like the environment variables `returnn_env` and the `hardware` (an
    environment's `engine_rqmt`, merged into the task's rqmt). Left at None they stay out of the hash: the job
    runs with the manager's own Python and RETURNN, as before."""

    __sis_hash_exclude__ = {"returnn_python_exe": None, "returnn_root": None, "returnn_env": None, "hardware": None}

    def _set_environment(self, returnn_python_exe: tk.Path | None, returnn_root: tk.Path | None,
                         returnn_env: dict[str, str] | None, hardware: dict[str, Any] | None,
                         rqmt: dict[str, Any] | None) -> None:
        self.returnn_python_exe, self.returnn_root = returnn_python_exe, returnn_root
        self.returnn_env, self.hardware = dict(returnn_env or {}), dict(hardware or {})
        self.rqmt = join_rqmt(DEFAULT_RQMT, rqmt or {}, self.hardware)

    def environment(self):
        from runner.environment import Environment, default_environment

        python = self.returnn_python_exe.get_path() if self.returnn_python_exe else default_environment().python
        return Environment(python, self.returnn_root.get_path() if self.returnn_root else None, self.returnn_env,
                           self.hardware)


class WriteHybridJob(_BisectJob):
    """Write (and prove by round trip) one hybrid config of a pair."""

    def __init__(self, orig: tk.Path, start: tk.Path, knobs: tuple[str, ...], direction: str, suffix: str = ".config",
                 merge_leaks: bool = True, context_files: tuple[tk.Path, ...] = (),
                 settings: tuple[tuple[str, Any], ...] = (), data_env: dict[str, str] | None = None):
        self.orig, self.start, self.knobs, self.direction = orig, start, tuple(sorted(knobs)), direction
        self.merge_leaks, self.context_files, self.settings = merge_leaks, context_files, settings
        self.data_env = data_env or {}
        self.out_config = self.output_path(f"hybrid{suffix}")
        self.out_info = self.output_path("hybrid.json")

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        import os

        from interpolate.hybrids import make_hybrid
        from interpolate.plan import HybridRequest
        from knobs import LoadContext, diff_configs, load_pair, load_rules

        os.environ.update(self.data_env)
        context = LoadContext(context_files=tuple(p.get_path() for p in self.context_files), settings=self.settings)
        rules = load_rules()
        orig, start = load_pair(self.orig.get_path(), self.start.get_path(), context)
        diff = diff_configs(orig, start, rules)
        with tempfile.TemporaryDirectory() as tmp:
            result = make_hybrid(orig, start, diff, HybridRequest(frozenset(self.knobs), self.direction), Path(tmp),
                                 context, rules, self.merge_leaks)
            if result.status != "ok":
                raise RuntimeError(f"hybrid {result.id} {result.status}: {result.reason}")
            shutil.copyfile(result.path, self.out_config.get_path())
        info = {**result.__dict__, "diff": diff.to_json()}  # the diff for the report (what each knob changes)
        write_atomic(self.out_info.get_path(), json.dumps(info, indent=1) + "\n")


class TrainJob(_ReturnnJob):
    """Train a config with RETURNN and a seed (outputs: the RETURNN folder with checkpoints, LR file, log; train.json
    with the outcome and the environment facts RETURNN's log states).

    Resumable like i6_core's ReturnnTrainingJob: a task stopped from outside (scancel, the time limit, a node
    failure) is resubmitted by Sisyphus, and RETURNN continues from the last checkpoint in its model folder.
    A failed training (RETURNN exits non-zero, or its outputs show no usable model: `runner.steps.train`) is an
    error of the first try, which Sisyphus runs again (`tries`); the retry continues from the last checkpoint as
    a resumed task does. Failing on the last try, the job finishes with the failure in train.json (status
    "failed", reason, RETURNN's exit code, log, tries), so that the bisection goes on without it. Any other error
    (an input that cannot be read, a bug of ours) stays an error of the job."""

    def __init__(self, config: tk.Path, seed: int, num_epochs: int | None = None,
                 data_env: dict[str, str] | None = None, rqmt: dict[str, Any] | None = None,
                 returnn_python_exe: tk.Path | None = None, returnn_root: tk.Path | None = None,
                 returnn_env: dict[str, str] | None = None, hardware: dict[str, Any] | None = None):
        self.config, self.seed, self.num_epochs = config, seed, num_epochs
        self.data_env = data_env or {}
        self._set_environment(returnn_python_exe, returnn_root, returnn_env, hardware, rqmt)
        self.out_train_dir = self.output_path("train", directory=True)
        self.out_learning_rates = self.output_path("train/learning_rates")
        self.out_result = self.output_path("train.json")

    def tasks(self):
        yield Task("run", resume="run", rqmt=self.rqmt, tries=TRAIN_TRIES)

    def run(self) -> None:
        from runner import steps

        train_dir = Path(self.out_train_dir.get_path())
        _keep_earlier_stdout(train_dir / "returnn.stdout.txt")
        # no timeout of ours: the cluster's time limit bounds a training
        result = steps.train(self.config.get_path(), train_dir, self.seed, self.num_epochs,
                             env=self.data_env, environment=self.environment(), timeout=None)
        if result.returncode is not None and -result.returncode in _STOPPED_FROM_OUTSIDE:
            # RETURNN was stopped along with this task (scancel, the time limit) or alone (the OOM killer): end
            # the same way, so that Sisyphus sees an interrupted task and resumes it instead of a failed training
            if -result.returncode != signal.SIGKILL:  # (SIGKILL cannot be handled: always the default)
                signal.signal(-result.returncode, signal.SIG_DFL)
            os.kill(os.getpid(), -result.returncode)
        tries = current_try(train_dir.parents[1])  # the job folder holds Sisyphus' logs of the earlier tries
        if result.status != "ok" and tries < TRAIN_TRIES:
            raise RuntimeError(f"training failed (try {tries} of {TRAIN_TRIES}; Sisyphus runs it again): "
                               f"{result.reason} (log: {result.log})")
        write_atomic(self.out_result.get_path(), json.dumps({**result.to_json(), "tries": tries}, indent=1) + "\n")


class RecognizeScoreJob(_ReturnnJob):
    """Recognize the test split with the final checkpoint of a training (in the training's environment) and score
    it per segment. A failed training gets a score without a WER (nothing is recognized); a recognition that
    fails is an error of the job."""

    def __init__(self, config: tk.Path, train_dir: tk.Path, train_result: tk.Path, vocab: tuple[str, ...],
                 refs: tk.Path, extra_args: tuple[str, ...] = (), data_env: dict[str, str] | None = None,
                 rqmt: dict[str, Any] | None = None, returnn_python_exe: tk.Path | None = None,
                 returnn_root: tk.Path | None = None, returnn_env: dict[str, str] | None = None,
                 hardware: dict[str, Any] | None = None):
        self.config, self.train_dir, self.train_result = config, train_dir, train_result
        self.vocab, self.refs, self.extra_args = tuple(vocab), refs, tuple(extra_args)
        self.data_env = data_env or {}
        self._set_environment(returnn_python_exe, returnn_root, returnn_env, hardware, rqmt)
        self.out_hyp = self.output_path("test.hyp.txt")
        self.out_score = self.output_path("score.json")

    def tasks(self):
        yield Task("run", rqmt=self.rqmt)

    def run(self) -> None:
        from jobs.gather import unscored
        from runner import steps

        trained = json.loads(Path(self.train_result.get_path()).read_text())
        if trained["status"] != "ok":
            write_atomic(self.out_score.get_path(), json.dumps(unscored(trained), indent=1) + "\n")
            return
        work = Path(self.out_hyp.get_path()).parent.parent / "work"
        hyp, scored = steps.recognize_and_score(self.config.get_path(), work, self.train_dir.get_path(),
                                                trained["final_epoch"], list(self.vocab), self.refs.get_path(),
                                                extra_args=self.extra_args, env=self.data_env,
                                                environment=self.environment(), timeout=None)
        shutil.copyfile(hyp, self.out_hyp.get_path())
        payload = {**scored.to_json(), "seed_result": trained}
        write_atomic(self.out_score.get_path(), json.dumps(payload, indent=1) + "\n")


class GatherResultsJob(_BisectJob):
    """Gather every score into results.json (WER per hybrid over seeds, verdict) and the report (report.md with
    its PNGs, a self-contained report.html), like `config-bisect run`."""

    __sis_hash_exclude__ = {"environments": None, "plan_section": None}

    def __init__(self, entries: list[dict[str, Any]], title: str = "config-bisect", finding: dict | None = None,
                 environments: dict[str, Any] | None = None, plan_section: dict[str, Any] | None = None):
        """:param entries: [{"label", "config", "info" (WriteHybridJob.out_info or None), optionally "knobs" and
            "direction" (a hybrid that switches environment knobs), "runs": [{"seed", "score"[, "environment" (its
            spec)]}]}] (see `jobs.gather.gathered_runs`)
        :param finding: a strategy's answer (`Finding.to_json()`), if any
        :param environments: `PairEnvironments.report(...)`: results.json gets an `environments` section
        :param plan_section: results.json's `plan` (submit --plan): the report shows the plan's row"""
        self.entries, self.title, self.finding, self.environments = entries, title, finding, environments
        self.plan_section = plan_section
        self.out_results = self.output_path("results.json")
        self.out_report = self.output_path("report.txt")
        self.out_report_dir = self.output_path("report", directory=True)

    def tasks(self):
        yield Task("run", mini_task=True)

    def run(self) -> None:
        from jobs.gather import gather_results

        gather_results(_with_paths(self.entries), Path(self.out_results.get_path()), Path(self.out_report.get_path()),
                       Path(self.out_report_dir.get_path()), self.title, self.finding, self.environments,
                       self.plan_section)


def _keep_earlier_stdout(stdout: Path) -> None:
    """RETURNN's output of an earlier try (or of a part stopped from outside) kept as returnn.stdout.<k>.txt: the
    next run writes returnn.stdout.txt anew."""
    if stdout.exists():
        earlier = len(list(stdout.parent.glob("returnn.stdout.*.txt")))
        stdout.rename(stdout.with_name(f"returnn.stdout.{earlier + 1}.txt"))


def _with_paths(value: Any) -> Any:
    """`value` with every `tk.Path` replaced by its path (a string)."""
    if isinstance(value, tk.Path):
        return value.get_path()
    if isinstance(value, dict):
        return {k: _with_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_with_paths(v) for v in value]
    return value
