"""Where a bisection stands: one record per (hybrid, seed) training, whatever ran it (the local runner or
Sisyphus), and what follows from the records: which hybrids are done, running, waiting or failed, and the time
left. Records have the keys of a finished job's `JobResult` (label, seed, status, wer, segments, config, log,
reason, seconds, environment), so a report reads both alike; `status` is also "running" or "waiting" here."""

from __future__ import annotations

import heapq
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from attribution.replay import Replay
from runner.run_plan import RunPlan

DONE, RUNNING, WAITING, FAILED = "ok", "running", "waiting", "failed"
STATE_NAMES = {DONE: "done", RUNNING: "running", WAITING: "waiting", FAILED: "failed"}


@dataclass
class RunRecord:
    label: str
    seed: int
    status: str  # DONE ("ok"), RUNNING, WAITING or FAILED
    wer: float | None = None
    reason: str | None = None  # failed: why, with the last error line of its log
    detail: str | None = None  # running: "training, epoch 3"; waiting: "queued", "interrupted: ..."
    config: str | None = None
    log: str | None = None
    seconds: float | None = None  # done: how long it took; running: how long it has run so far
    segments: list[dict] = field(default_factory=list)
    environment: dict | None = None  # the facts its RETURNN log states

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Progress:
    engine: str  # "local" or "sisyphus"
    folder: str
    records: list[RunRecord]  # in the order the trainings were planned or asked for
    labels: dict[str, tuple[list[str], str | None]]  # label -> (knobs, direction); None: orig/start
    plan: RunPlan | None = None
    replay: Replay | None = None  # a strategy's questions so far
    slots: int | None = None  # trainings at once; None: unknown (a cluster)
    notes: list[str] = field(default_factory=list)
    diff: dict | None = None  # the pair's knob diff (`PairDiff.to_json()`), where the folder keeps it
    wall_seconds: float | None = None  # first training started to last one finished (or now, while some run)

    @property
    def complete(self) -> bool:
        """Nothing runs or waits, and a strategy (if any) has its finding."""
        pending = any(r.status in (RUNNING, WAITING) for r in self.records)
        return not pending and (self.replay is None or self.replay.finding is not None)


def hybrid_states(records: list[RunRecord]) -> dict[str, list[str]]:
    """Hybrid ids by state, each id in one list: failed if a seed failed, else running if one runs, else waiting
    if one waits, else done."""
    by_label: dict[str, set[str]] = {}
    for record in records:
        by_label.setdefault(record.label, set()).add(record.status)
    states: dict[str, list[str]] = {name: [] for name in STATE_NAMES.values()}
    for label, seen in by_label.items():
        for status in (FAILED, RUNNING, WAITING, DONE):
            if status in seen:
                states[STATE_NAMES[status]].append(label)
                break
    return states


def seconds_per_training(records: list[RunRecord]) -> float | None:
    """The median time of the finished trainings (train and score)."""
    took = [r.seconds for r in records if r.status == DONE and r.seconds]
    return statistics.median(took) if took else None


def makespan(running: list[float], waiting: int, each: float, slots: int) -> float:
    """Seconds until the last training ends when `slots` run at once: the running ones need `running` more
    seconds each, then `waiting` more of `each` seconds start as slots free up."""
    free = sorted(running)[:slots] + [0.0] * max(0, slots - len(running))
    heapq.heapify(free)
    queue = sorted(running)[slots:] + [each] * waiting
    end = max(free) if free else 0.0
    for duration in queue:
        finish = heapq.heappop(free) + duration
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def time_left(progress: Progress) -> tuple[float | None, str]:
    """(seconds, how the estimate was made) for the trainings known so far; None before any has finished."""
    each = seconds_per_training(progress.records)
    running = [r for r in progress.records if r.status == RUNNING]
    waiting = sum(r.status == WAITING for r in progress.records)
    if not running and not waiting:
        return 0.0, "nothing is running or waiting"
    if each is None:
        return None, "no training has finished yet"
    slots = progress.slots or max(1, len(running))
    left = makespan([max(each - (r.seconds or 0.0), 0.1 * each) for r in running], waiting, each, slots)
    how = f"{each:.0f} s per training (median of the finished ones), {slots} at once"
    if progress.slots is None:
        how += " (as many as run now)"
    if progress.replay is not None and progress.replay.finding is None:
        how += "; for the batch the strategy waits for: later batches depend on its answers"
    return left, how
