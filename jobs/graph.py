"""Build the Sisyphus graph of a bisection: hybrids, trainings per seed, scoring, and the gathered result.

Call `build_bisection(...)` from a Sisyphus config's `py()`; it registers `bisect/<pair>/results.json`.
Aliases are readable: `bisect/<pair>/<hybrid>/seed<k>/{train,score}`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sisyphus import tk

from jobs.bisect_jobs import GatherResultsJob, RecognizeScoreJob, TrainJob, WriteHybridJob


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
    rqmt: dict[str, Any] = field(default_factory=dict)
    context_files: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()


def _alias(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", text)


def build_bisection(orig: str, start: str, plan: Plan, pair: str | None = None) -> GatherResultsJob:
    """Create all jobs of `plan` for the pair and register the gathered results."""
    pair = _alias(pair or Path(orig).stem)
    orig_path, start_path = content_path(orig), content_path(start)
    refs = content_path(plan.refs) if plan.refs else None
    entries: list[dict[str, Any]] = []

    def trainings(config: tk.Path, label: str, seeds: int) -> list[dict[str, Any]]:
        scores = []
        for seed in range(1, seeds + 1):
            train = TrainJob(config, seed, plan.epochs, data_env=plan.data_env, rqmt=plan.rqmt)
            train.add_alias(f"bisect/{pair}/{label}/seed{seed}/train")
            if refs is None:
                scores.append({"seed": seed, "score": train.out_result})
                continue
            score = RecognizeScoreJob(config, train.out_train_dir, train.out_result, plan.vocab, refs,
                                      plan.recognition_args, data_env=plan.data_env, rqmt=plan.rqmt)
            score.add_alias(f"bisect/{pair}/{label}/seed{seed}/score")
            scores.append({"seed": seed, "score": score.out_score})
        return scores

    for label, path in (("orig", orig_path), ("start", start_path)):
        entries.append({"label": label, "info": None, "scores": trainings(path, label, plan.baseline_seeds)})
    suffix = ".py" if orig.endswith(".py") else ".config"
    for knobs, direction in plan.requests:
        write = WriteHybridJob(orig_path, start_path, tuple(sorted(knobs)), direction, suffix,
                               context_files=tuple(content_path(f) for f in plan.context_files),
                               settings=plan.settings, data_env=plan.data_env)
        label = f"{direction}.{'+'.join(sorted(knobs))}"
        write.add_alias(f"bisect/{pair}/{label}/hybrid")
        entries.append({"label": label, "info": write.out_info,
                        "scores": trainings(write.out_config, label, plan.seeds)})
    gather = GatherResultsJob(entries)
    gather.add_alias(f"bisect/{pair}/results")
    tk.register_output(f"bisect/{pair}/results.json", gather.out_results)
    tk.register_output(f"bisect/{pair}/report.txt", gather.out_report)
    return gather


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
