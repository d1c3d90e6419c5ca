"""Build the Sisyphus graph of a bisection: hybrids, trainings per seed, scoring, and the gathered result.

Call `build_bisection(...)` from a Sisyphus config's `py()` (a fixed list of hybrids), or await
`bisect_with_strategy(...)` from an async `py()` (a strategy chooses the hybrids as results come in); both
register `<prefix>/<pair>/results.json` and `<prefix>/<pair>/report/report.{md,html}` (prefix `bisect` unless an
existing setup gives its own, see `jobs.setup_api`).
Aliases are readable: `<prefix>/<pair>/<hybrid>/seed<k>/{train,score}`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sisyphus import tk

from attribution.strategies import STRATEGIES, SeedNumbers, strategy_options
from interpolate.units import request_for
from jobs.bisect_jobs import GatherResultsJob, RecognizeScoreJob, TrainJob, WriteHybridJob
from jobs.gather import read_score
from jobs.plan import (
    CONFIRM_SHARE,
    Plan,
    PlannedHybrid,
    confirm_plan,
    content_digest,
    environment_spec,
    fixed_plan,
    plan_hybrid,
)

__all__ = ["Plan", "bisect_with_strategy", "build_bisection", "confirm_culprits"]


def content_path(path: str | Path) -> tk.Path:
    """A `tk.Path` hashed by the file's content, not by where it lies."""
    return tk.Path(str(Path(path).resolve()), hash_overwrite=content_digest(path))


def _alias(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def environment_args(spec: dict[str, Any] | None) -> dict[str, Any]:
    """TrainJob/RecognizeScoreJob arguments of an environment: its paths are job inputs (hashed)."""
    if spec is None:
        return {}
    return {"returnn_python_exe": tk.Path(spec["python"]),
            "returnn_root": tk.Path(spec["returnn_root"]) if spec["returnn_root"] else None,
            "returnn_env": spec["env"] or None, "hardware": spec["engine_rqmt"] or None}


def _scored_runs(config: tk.Path, label: str, seeds: range, plan: Plan, root: str,
                 environment: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train (and score, with references) `config` once per seed in `environment` (a spec; None: the tool's
    Python): [{"seed", "score", "learning_rates"[, "environment"]}]."""
    refs = content_path(plan.refs) if plan.refs else None
    runs = []
    for seed in seeds:
        train = TrainJob(config, seed, plan.epochs, data_env=plan.data_env, rqmt=plan.rqmt,
                         **environment_args(environment))
        train.add_alias(f"{root}/{label}/seed{seed}/train")
        run = {"seed": seed, "score": train.out_result}
        if environment is not None:
            run["environment"] = environment
        if refs is not None:
            score = RecognizeScoreJob(config, train.out_train_dir, train.out_result, plan.vocab, refs,
                                      plan.recognition_args, data_env=plan.data_env,
                                      rqmt=plan.rqmt if plan.score_rqmt is None else plan.score_rqmt,
                                      **environment_args(environment))
            score.add_alias(f"{root}/{label}/seed{seed}/score")
            run["score"] = score.out_score
        runs.append(run)
    return runs


def _hybrid_entry(orig: str, start: str, hybrid: PlannedHybrid, plan: Plan, root: str,
                  merge_leaks: bool = True) -> dict[str, Any]:
    """A hybrid's gather entry (without runs): the hybrid of its config knobs (WriteHybridJob), or the base config
    when it switches environment knobs only; its environment under "environment"."""
    if hybrid.config_knobs:
        write = WriteHybridJob(content_path(orig), content_path(start), hybrid.config_knobs, hybrid.direction,
                               ".py" if orig.endswith(".py") else ".config", merge_leaks,
                               context_files=tuple(content_path(f) for f in plan.context_files),
                               settings=plan.settings, data_env=plan.data_env)
        write.add_alias(f"{root}/{hybrid.direction}.{'+'.join(hybrid.config_knobs)}/hybrid")
        entry = {"info": write.out_info, "config": write.out_config}
    else:
        entry = {"info": None, "config": content_path(start if hybrid.base_side == "start" else orig)}
    if hybrid.switches_environment:  # the gather job names it by all its knobs (hybrid.json knows the config's)
        entry.update(knobs=list(hybrid.knobs), direction=hybrid.direction)
    return {**entry, "label": hybrid.alias, "environment": hybrid.environment}


def _gather(entries: list[dict[str, Any]], root: str, title: str, plan: Plan, finding: dict | None = None
            ) -> GatherResultsJob:
    gather = GatherResultsJob(entries, title, finding, plan.environment_report or None, plan.plan_section or None)
    gather.add_alias(f"{root}/results")
    tk.register_output(f"{root}/results.json", gather.out_results)
    tk.register_output(f"{root}/report.txt", gather.out_report)
    tk.register_output(f"{root}/report", gather.out_report_dir)
    return gather


def build_bisection(orig: str, start: str, plan: Plan, pair: str | None = None, prefix: str = "bisect"
                    ) -> GatherResultsJob:
    """Create all jobs of `plan` for the pair and register the gathered results under `prefix`."""
    root = f"{prefix}/{_alias(pair or Path(orig).stem)}"
    entries: list[dict[str, Any]] = []
    for planned in fixed_plan(plan):
        if planned.hybrid is None:
            entry = {"label": planned.label, "info": None, "config": content_path(orig if planned.label == "orig"
                                                                                  else start)}
        else:
            entry = _hybrid_entry(orig, start, planned.hybrid, plan, root)
            entry.pop("environment")
        runs = _scored_runs(entry["config"], planned.label, planned.seeds, plan, root, planned.environment)
        entries.append({**entry, "runs": runs})
    return _gather(entries, root, f"config-bisect: {Path(orig).name}", plan)


class RunsPending(Exception):
    """The strategy asked for runs that have not finished yet."""


class SisyphusEvaluate:
    """A strategy's `evaluate(requests)` (one round) over Sisyphus jobs: finished scores are read (a training that
    failed on its last try has a score without a WER: the strategy goes on without it), the others are collected in
    `pending` (and RunsPending is raised once the whole batch has been looked at)."""

    def __init__(self, orig: str, start: str, plan: Plan, units: dict[str, frozenset[str]], root: str):
        self.orig, self.start, self.plan, self.units, self.root = orig, start, plan, units, root
        self.seeds = SeedNumbers()
        self.entries: dict[str, dict[str, Any]] = {}
        self.pending: list[tk.Path] = []

    def _entry(self, hybrid: frozenset[str]) -> dict[str, Any]:
        request = request_for(hybrid, self.units)
        if request is None:
            label = "start" if hybrid else "orig"
            entry = {"label": label, "info": None, "config": content_path(self.start if hybrid else self.orig),
                     "environment": environment_spec(self.plan, None, label)}
        else:
            entry = _hybrid_entry(self.orig, self.start, plan_hybrid(request.knobs, request.direction, self.plan),
                                  self.plan, self.root, merge_leaks=False)
        return self.entries.setdefault(entry["label"], {**entry, "runs": []})

    def __call__(self, requests: list[tuple[frozenset[str], int]]) -> list[list[Any]]:
        """One round: per (hybrid, count), `count` new seeds, submitted together."""
        batch = []
        for hybrid, count in requests:
            entry = self._entry(hybrid)
            runs = _scored_runs(entry["config"], entry["label"], self.seeds.take(hybrid, count), self.plan,
                                self.root, entry["environment"])
            entry["runs"] += runs
            self.pending += [run["score"] for run in runs if not run["score"].available()]
            batch.append(runs)
        if self.pending:
            raise RunsPending()
        return [[_Run(read_score(run["score"].get_path())["wer"]) for run in runs] for runs in batch]

    def gather_entries(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k != "environment"} for entry in self.entries.values()]


@dataclass
class _Run:
    wer: float | None  # None: the training failed


async def bisect_with_strategy(orig: str, start: str, plan: Plan, strategy: str, units: dict[str, list[str]],
                               pair: str | None = None, prefix: str = "bisect") -> GatherResultsJob:
    """Asynchronous workflow: `strategy` (see attribution.strategies) chooses the hybrids and seeds as the
    scores come in. Each pass replays the strategy from the beginning over the finished scores (strategies
    are deterministic given the WERs, and a finished job is the same job on every pass), then waits for the
    runs it asks for next; the last pass gathers every run and the strategy's finding."""
    root = f"{prefix}/{_alias(pair or Path(orig).stem)}"
    unit_knobs = {name: frozenset(knobs) for name, knobs in units.items()}
    while True:
        evaluate = SisyphusEvaluate(orig, start, plan, unit_knobs, root)
        try:
            options = strategy_options(strategy, plan.seeds, plan.jobs)
            finding = STRATEGIES[strategy](list(unit_knobs), evaluate, **options)
        except RunsPending:
            await tk.async_run(evaluate.pending)
            continue
        return _gather(evaluate.gather_entries(), root, f"config-bisect ({strategy}): {Path(orig).name}", plan,
                       finding.to_json())


async def confirm_culprits(orig: str, start: str, plan: Plan, pair: str | None = None, extra_seeds: int = 2,
                           min_share: float = CONFIRM_SHARE) -> GatherResultsJob:
    """Asynchronous workflow: run `plan`, wait for its gathered result, then spend `extra_seeds` more seeds
    only on the hybrids that moved at least `min_share` of the gap (the decision still uncertain with one
    seed). Trainings already done are the same jobs (same config, same seed), so only new seeds run."""
    first = build_bisection(orig, start, plan, pair)
    await tk.async_run(first.out_results)
    results = json.loads(Path(first.out_results.get_path()).read_text())
    confirm = confirm_plan(plan, results, extra_seeds, min_share)
    return build_bisection(orig, start, confirm, f"{_alias(pair or Path(orig).stem)}_confirm")
