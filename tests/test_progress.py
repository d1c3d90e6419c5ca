"""Where a bisection stands: replaying a strategy over finished runs, hybrid states, the time left."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.replay import Answer, replay_strategy
from attribution.scenario import parse_scenario
from attribution.simulator import Simulator
from attribution.strategies import STRATEGIES, SeedNumbers
from interpolate.hybrids import hybrid_id
from interpolate.units import request_for
from runner.progress import DONE, FAILED, RUNNING, WAITING, Progress, RunRecord, hybrid_states, makespan, time_left

KNOBS = ["a", "b", "c", "d"]
UNITS = {k: frozenset({k}) for k in KNOBS}


def _label(hybrid: frozenset[str]) -> str:
    request = request_for(hybrid, UNITS)
    return hybrid_id(request) if request else ("start" if hybrid else "orig")


class Recorder:
    """Wraps the simulator: remembers each run's WER under (label, seed) and the runs of each round."""

    def __init__(self, simulator: Simulator):
        self.simulator, self.seeds = simulator, SeedNumbers()
        self.wers: dict[tuple[str, int], float] = {}
        self.batches: list[list[tuple[str, int]]] = []

    def __call__(self, requests):
        answers = self.simulator(requests)
        batch = []
        for (hybrid, count), runs in zip(requests, answers, strict=True):
            for seed, run in zip(self.seeds.take(hybrid, count), runs, strict=True):
                self.wers[(_label(hybrid), seed)] = run.wer
                batch.append((_label(hybrid), seed))
        self.batches.append(batch)
        return answers


def _recorded(strategy: str, seed: int):
    scenario = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": {"b": 2.0}, "seed_std": 0.5})
    recorder = Recorder(Simulator(scenario, np.random.default_rng(seed)))
    return STRATEGIES[strategy](list(KNOBS), recorder), recorder


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(sorted(STRATEGIES)), st.integers(0, 1000), st.data())
def test_a_replay_retraces_the_questions_up_to_the_first_unanswered_batch(strategy, seed, data):
    finding, recorder = _recorded(strategy, seed)
    full = replay_strategy(strategy, UNITS, lambda label, s: Answer("ok", recorder.wers[(label, s)]), hybrid_id)
    assert full.finding is not None and full.finding.to_json() == finding.to_json()
    assert full.rounds == len(recorder.batches) and full.asked == []
    assert full.runs == [run for batch in recorder.batches for run in batch]
    cut = data.draw(st.integers(0, len(recorder.batches) - 1))  # the batch still training
    pending = set(recorder.batches[cut])
    partial = replay_strategy(strategy, UNITS, lambda label, s: Answer(RUNNING) if (label, s) in pending or (
        (label, s) in {r for b in recorder.batches[cut + 1:] for r in b}) else Answer("ok", recorder.wers[(label, s)]),
        hybrid_id)
    assert partial.finding is None and partial.rounds == cut
    assert set(partial.asked) == pending - {r for b in recorder.batches[:cut] for r in b}


def test_a_failed_run_is_an_answer_without_a_wer_as_in_run():
    _, recorder = _recorded("one-at-a-time", 3)
    failed = recorder.batches[0][0]
    replay = replay_strategy("one-at-a-time", UNITS, lambda label, s: Answer(FAILED) if (label, s) == failed
                             else Answer("ok", recorder.wers[(label, s)]), hybrid_id)
    assert replay.finding is not None and replay.finding.failed == 1 and replay.asked == []
    assert failed in replay.runs  # asked once, answered without a WER; the strategy went on to its finding


def test_replay_passes_only_the_keyword_arguments_a_strategy_takes():
    finding, recorder = _recorded("adaptive", 4)
    replay = replay_strategy("adaptive", UNITS, lambda label, s: Answer("ok", recorder.wers[(label, s)]), hybrid_id,
                             {"seeds": 2})  # adaptive takes no `seeds`: `run --strategy adaptive --seeds 2` works
    assert replay.finding.to_json() == finding.to_json()


STATUSES = st.sampled_from([DONE, RUNNING, WAITING, FAILED])


@given(st.lists(st.tuples(st.sampled_from(["orig", "start", "knock-in:a", "knock-out:a"]), STATUSES), max_size=12))
def test_each_hybrid_is_in_exactly_one_state_list(runs):
    records = [RunRecord(label, i, status) for i, (label, status) in enumerate(runs)]
    states = hybrid_states(records)
    listed = [label for labels in states.values() for label in labels]
    assert sorted(listed) == sorted({label for label, _ in runs})
    for label in listed:
        seen = {status for lab, status in runs if lab == label}
        expected = next(s for s in (FAILED, RUNNING, WAITING, DONE) if s in seen)
        assert label in states[{DONE: "done", RUNNING: "running", WAITING: "waiting", FAILED: "failed"}[expected]]


def test_makespan_schedules_the_waiting_trainings_on_the_free_slots():
    assert makespan([10, 20], 2, 30, 2) == 50  # slots free at 10 and 20: the waiting ones end at 40 and 50
    assert makespan([10, 20], 2, 30, 1) == 90  # one at a time
    assert makespan([], 3, 30, 2) == 60
    assert makespan([5], 0, 30, 4) == 5


def test_time_left_counts_what_runs_and_waits():
    records = [RunRecord("orig", 1, DONE, seconds=100), RunRecord("start", 1, DONE, seconds=120),
               RunRecord("knock-in:a", 1, RUNNING, seconds=60), RunRecord("knock-in:b", 1, WAITING)]
    left, basis = time_left(Progress("local", "w", records, {}, slots=2))
    assert left == pytest.approx(110) and "110 s per training" in basis and "2 at once" in basis
    assert time_left(Progress("local", "w", records[:2], {}, slots=2))[0] == 0
    assert time_left(Progress("local", "w", records[2:], {}, slots=2))[0] is None  # nothing finished yet
