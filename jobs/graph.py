"""Build the Sisyphus graph of a bisection: hybrids, trainings per seed, scoring, and the gathered result.

Call `build_bisection(...)` from a Sisyphus config's `py()` (a fixed list of hybrids), or await
`bisect_with_strategy(...)` from an async `py()` (a strategy chooses the hybrids as results come in); both
register `<prefix>/<pair>/results.json` and `<prefix>/<pair>/report/report.{md,html}` (prefix `bisect` unless an
existing setup gives its own, see `jobs.setup_api`).
Aliases are readable: `<prefix>/<pair>/<hybrid>/seed<k>/{train,score}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sisyphus import tk

from attribution.strategies import STRATEGIES, SeedNumbers
from interpolate.units import request_for
from jobs.bisect_jobs import GatherResultsJob, RecognizeScoreJob, TrainJob, WriteHybridJob, read_score


def content_path(path: str | Path) -> tk.Path:
    """A `tk.Path` hashed by the file's content, not by where it lies."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return tk.Path(str(Path(path).resolve()), hash_overwrite=f"sha256:{digest}")


@dataclass
class Plan:
    """What to train: knob groups per direction, seeds, epochs, and how to score."""

    requests: list[tuple[tuple[str, ...], str]]  # (knobs, direction)
    seeds: int = 1
    baseline_seeds: int = 3
    epochs: int | None = None
    vocab: tuple[str, ...] = ()
    refs: str | None = None
    recognition_args: tuple[str, ...] = ()
    data_env: dict[str, str] = field(default_factory=dict)
    rqmt: dict[str, Any] = field(default_factory=dict)  # of a training
    score_rqmt: dict[str, Any] | None = None  # of a scoring; None: the training's
    context_files: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()


def _alias(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def _scored_runs(config: tk.Path, label: str, seeds: range, plan: Plan, root: str) -> list[dict[str, Any]]:
    """Train (and score, with references) `config` once per seed: [{"seed", "score", "learning_rates"}]."""
    refs = content_path(plan.refs) if plan.refs else None
    runs = []
    for seed in seeds:
        train = TrainJob(config, seed, plan.epochs, data_env=plan.data_env, rqmt=plan.rqmt)
        train.add_alias(f"{root}/{label}/seed{seed}/train")
        run = {"seed": seed, "score": train.out_result, "learning_rates": train.out_learning_rates}
        if refs is not None:
            score = RecognizeScoreJob(config, train.out_train_dir, train.out_result, plan.vocab, refs,
                                      plan.recognition_args, data_env=plan.data_env,
                                      rqmt=plan.rqmt if plan.score_rqmt is None else plan.score_rqmt)
            score.add_alias(f"{root}/{label}/seed{seed}/score")
            run["score"] = score.out_score
        runs.append(run)
    return runs


def _hybrid_job(orig: str, start: str, knobs: tuple[str, ...], direction: str, plan: Plan, root: str,
                merge_leaks: bool = True) -> tuple[WriteHybridJob, str]:
    write = WriteHybridJob(content_path(orig), content_path(start), tuple(sorted(knobs)), direction,
                           ".py" if orig.endswith(".py") else ".config", merge_leaks,
                           context_files=tuple(content_path(f) for f in plan.context_files),
                           settings=plan.settings, data_env=plan.data_env)
    label = f"{direction}.{'+'.join(sorted(knobs))}"
    write.add_alias(f"{root}/{label}/hybrid")
    return write, label


def _gather(entries: list[dict[str, Any]], root: str, title: str, finding: dict | None = None) -> GatherResultsJob:
    gather = GatherResultsJob(entries, title, finding)
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
    for label, path in (("orig", orig), ("start", start)):
        entries.append({"label": label, "info": None,
                        "runs": _scored_runs(content_path(path), label, range(1, plan.baseline_seeds + 1), plan,
                                             root)})
    for knobs, direction in plan.requests:
        write, label = _hybrid_job(orig, start, knobs, direction, plan, root)
        entries.append({"label": label, "info": write.out_info,
                        "runs": _scored_runs(write.out_config, label, range(1, plan.seeds + 1), plan, root)})
    return _gather(entries, root, f"config-bisect: {Path(orig).name}")


class RunsPending(Exception):
    """The strategy asked for runs that have not finished yet."""


class SisyphusEvaluate:
    """A strategy's `evaluate(hybrids, seeds)` over Sisyphus jobs: finished scores are read, the others are
    collected in `pending` (and RunsPending is raised once the whole batch has been looked at)."""

    def __init__(self, orig: str, start: str, plan: Plan, units: dict[str, frozenset[str]], root: str):
        self.orig, self.start, self.plan, self.units, self.root = orig, start, plan, units, root
        self.seeds = SeedNumbers()
        self.entries: dict[str, dict[str, Any]] = {}
        self.pending: list[tk.Path] = []

    def _entry(self, hybrid: frozenset[str]) -> dict[str, Any]:
        request = request_for(hybrid, self.units)
        if request is None:
            label = "start" if hybrid else "orig"
            entry = {"label": label, "info": None, "config": content_path(self.start if hybrid else self.orig)}
        else:
            write, label = _hybrid_job(self.orig, self.start, tuple(request.knobs), request.direction, self.plan,
                                       self.root, merge_leaks=False)
            entry = {"label": label, "info": write.out_info, "config": write.out_config}
        return self.entries.setdefault(label, {**entry, "runs": []})

    def __call__(self, hybrids: list[frozenset[str]], seeds: int) -> list[list[Any]]:
        batch = []
        for hybrid in hybrids:
            entry = self._entry(hybrid)
            runs = _scored_runs(entry["config"], entry["label"], self.seeds.take(hybrid, seeds), self.plan,
                                self.root)
            entry["runs"] += runs
            self.pending += [run["score"] for run in runs if not run["score"].available()]
            batch.append(runs)
        if self.pending:
            raise RunsPending()
        return [[_Run(read_score(run["score"].get_path())["wer"]) for run in runs] for runs in batch]

    def gather_entries(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k != "config"} for entry in self.entries.values()]


@dataclass
class _Run:
    wer: float


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
            finding = STRATEGIES[strategy](list(unit_knobs), evaluate)
        except RunsPending:
            await tk.async_run(evaluate.pending)
            continue
        return _gather(evaluate.gather_entries(), root, f"config-bisect ({strategy}): {Path(orig).name}",
                       finding.to_json())


async def confirm_culprits(orig: str, start: str, plan: Plan, pair: str | None = None, extra_seeds: int = 2,
                           min_share: float = 0.5) -> GatherResultsJob:
    """Asynchronous workflow: run `plan`, wait for its gathered result, then spend `extra_seeds` more seeds
    only on the hybrids that moved at least `min_share` of the gap (the decision still uncertain with one
    seed). Trainings already done are the same jobs (same config, same seed), so only new seeds run."""
    first = build_bisection(orig, start, plan, pair)
    await tk.async_run(first.out_results)
    results = json.loads(Path(first.out_results.get_path()).read_text())
    movers = [(tuple(h["knobs"]), h["direction"]) for h in results["hybrids"]
              if h["direction"] is not None and h["gap_share"] is not None and h["gap_share"] >= min_share]
    confirm = replace(plan, requests=movers, seeds=plan.seeds + extra_seeds)
    return build_bisection(orig, start, confirm, f"{_alias(pair or Path(orig).stem)}_confirm")
