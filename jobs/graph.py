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
from knobs.environment import switched_sides
from runner.environment import FIELDS


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
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> spec; {}: the tool's Python
    environment_fields: dict[str, list[str]] = field(default_factory=dict)  # environment knob -> spec fields
    environment_report: dict[str, Any] = field(default_factory=dict)  # for the gathered results (PairEnvironments)


def _alias(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def environment_spec(plan: Plan, sides: dict[str, str] | None, base_side: str) -> dict[str, Any] | None:
    """The environment (spec) whose fields come from `sides` (None: all from `base_side`); None without
    environment files."""
    if not plan.environments:
        return None
    sides = sides or dict.fromkeys(FIELDS, base_side)
    return {name: plan.environments[sides[name]][name] for name in FIELDS}


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
        run = {"seed": seed, "score": train.out_result, "learning_rates": train.out_learning_rates}
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


def _hybrid_job(orig: str, start: str, knobs: tuple[str, ...], direction: str, plan: Plan, root: str,
                merge_leaks: bool = True) -> tuple[WriteHybridJob, str]:
    write = WriteHybridJob(content_path(orig), content_path(start), tuple(sorted(knobs)), direction,
                           ".py" if orig.endswith(".py") else ".config", merge_leaks,
                           context_files=tuple(content_path(f) for f in plan.context_files),
                           settings=plan.settings, data_env=plan.data_env)
    label = f"{direction}.{'+'.join(sorted(knobs))}"
    write.add_alias(f"{root}/{label}/hybrid")
    return write, label


def _hybrid_entry(orig: str, start: str, knobs: tuple[str, ...], direction: str, plan: Plan, root: str,
                  merge_leaks: bool = True) -> dict[str, Any]:
    """A hybrid's gather entry (without runs) and its config: the hybrid of its config knobs (WriteHybridJob), or
    the base config when it switches environment knobs only; environment knobs choose its environment."""
    label = f"{direction}.{'+'.join(sorted(knobs))}"
    config_knobs = tuple(sorted(k for k in knobs if k not in plan.environment_fields))
    switched = frozenset(knobs) - set(config_knobs)
    base_side = "start" if direction == "knock-in" else "orig"
    if config_knobs:
        write, _ = _hybrid_job(orig, start, config_knobs, direction, plan, root, merge_leaks)
        entry = {"label": label, "info": write.out_info, "config": write.out_config}
    else:
        entry = {"label": label, "info": None, "config": content_path(start if base_side == "start" else orig)}
    environment = environment_spec(plan, switched_sides(switched, direction, plan.environment_fields)
                                   if switched else None, base_side)
    if switched:  # the gather job names it by all its knobs (the config's hybrid.json knows the config knobs only)
        entry.update(knobs=sorted(knobs), direction=direction)
    return {**entry, "environment": environment, "label": label}


def _gather(entries: list[dict[str, Any]], root: str, title: str, finding: dict | None = None,
            environments: dict[str, Any] | None = None) -> GatherResultsJob:
    gather = GatherResultsJob(entries, title, finding, environments or None)
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
                                             root, environment_spec(plan, None, label))})
    for knobs, direction in plan.requests:
        entry = _hybrid_entry(orig, start, knobs, direction, plan, root)
        runs = _scored_runs(entry.pop("config"), entry["label"], range(1, plan.seeds + 1), plan, root,
                            entry.pop("environment"))
        entries.append({**entry, "runs": runs})
    return _gather(entries, root, f"config-bisect: {Path(orig).name}", environments=plan.environment_report)


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
            entry = {"label": label, "info": None, "config": content_path(self.start if hybrid else self.orig),
                     "environment": environment_spec(self.plan, None, label)}
        else:
            entry = _hybrid_entry(self.orig, self.start, tuple(request.knobs), request.direction, self.plan,
                                  self.root, merge_leaks=False)
        return self.entries.setdefault(entry["label"], {**entry, "runs": []})

    def __call__(self, hybrids: list[frozenset[str]], seeds: int) -> list[list[Any]]:
        batch = []
        for hybrid in hybrids:
            entry = self._entry(hybrid)
            runs = _scored_runs(entry["config"], entry["label"], self.seeds.take(hybrid, seeds), self.plan,
                                self.root, entry["environment"])
            entry["runs"] += runs
            self.pending += [run["score"] for run in runs if not run["score"].available()]
            batch.append(runs)
        if self.pending:
            raise RunsPending()
        return [[_Run(read_score(run["score"].get_path())["wer"]) for run in runs] for runs in batch]

    def gather_entries(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in entry.items() if k not in ("config", "environment")}
                for entry in self.entries.values()]


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
                       finding.to_json(), plan.environment_report)


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
