"""results.json, the console and the report: one verdict rule, one schema (`runner.results`), written by `run` and
by the Sisyphus gather job alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.effects import NO_BASELINE, knob_effects
from attribution.scenario import parse_scenario
from attribution.simulator import SEGMENT_WORDS, Simulator
from attribution.statistics import Interval, classify
from runner.local import JobResult
from runner.results import Bisection, results_payload, write_bisection_report, write_results
from runner.steps import LR_FILE
from runner.summary import label_runs, run_score

SCHEMA = {"orig", "start", "scorer", "headline", "verdict", "gap", "hybrids", "jobs", "trainings",
          "dev_curves_part_from_start", "strategy", "environments", "plan"}
HYBRID_KEYS = {"label", "knobs", "direction", "runs", "failed", "wer_mean", "wer_std", "vs_start", "vs_orig", "effect",
               "effect_low", "effect_high", "gap_share", "verdict", "sentence"}
KNOBS = ["batching", "l2", "dropout"]
# start is 10 % WER worse than orig: batching 7 of it, l2 3 (significant, but less than half), dropout nothing
SCENARIO = parse_scenario({"knobs": KNOBS, "orig_wer": 10.0, "effects": {"batching": 7.0, "l2": 3.0},
                           "seed_std": 0.1, "segment_count": 200})


def job_results(label: str, runs: list, first_seed: int = 1) -> list[JobResult]:
    """Simulated runs (shared per-segment errors, as real systems have) as the runner reports them."""
    results = []
    for seed, run in enumerate(runs, start=first_seed):
        segments = [{"tag": f"test/seq{i:05d}", "substitutions": int(e), "deletions": 0, "insertions": 0,
                     "ref_words": SEGMENT_WORDS} for i, e in enumerate(run.segment_errors)]
        results.append(JobResult(label, f"{label}.config", seed, f"key-{label}-{seed}", "ok", wer=run.wer,
                                 segments=segments))
    return results


def simulated_bisection(seed: int) -> Bisection:
    """orig, start (3 seeds each) and the knock-in of each knob (1 seed), as the local runner reports them."""
    simulate = Simulator(SCENARIO, np.random.default_rng(seed))
    start = frozenset(KNOBS)
    orig_runs, start_runs = simulate([(frozenset(), 3), (start, 3)])
    runs = job_results("orig", orig_runs) + job_results("start", start_runs)
    labels = {"orig": ([], None), "start": ([], None)}
    for knob in KNOBS:
        label = f"knock-in:{knob}"
        labels[label] = ([knob], "knock-in")
        runs += job_results(label, simulate([(start - {knob}, 1)])[0])
    return Bisection("orig.config", "start.config", "test WER", runs, labels)


@pytest.fixture
def bisection() -> Bisection:
    """The simulated bisection with one more seed of dropout's knock-in, which failed."""
    simulated = simulated_bisection(5)
    simulated.runs.append(JobResult("knock-in:dropout", "d.config", 2, "key-d-2", "failed", "RETURNN exited with 1",
                                    "log.txt"))
    return simulated


def test_results_json_has_the_documented_schema_and_the_verdicts(bisection, tmp_path):
    payload = write_results(tmp_path / "results.json", bisection)
    assert json.loads((tmp_path / "results.json").read_text()) == payload
    assert set(payload) == SCHEMA and all(set(h) == HYBRID_KEYS for h in payload["hybrids"])
    rows = {h["label"]: h for h in payload["hybrids"]}
    assert [h["label"] for h in payload["hybrids"]] == list(bisection.labels)
    assert payload["gap"]["estimate"] == pytest.approx(10, abs=0.5) and payload["gap"]["low"] > 0
    assert (rows["knock-in:batching"]["verdict"], rows["knock-in:l2"]["verdict"],
            rows["knock-in:dropout"]["verdict"]) == ("explains", "explains", "noise")
    assert rows["knock-in:batching"]["gap_share"] == pytest.approx(0.7, abs=0.05)
    assert rows["knock-in:l2"]["gap_share"] == pytest.approx(0.3, abs=0.05)
    assert (rows["knock-in:dropout"]["runs"], rows["knock-in:dropout"]["failed"]) == (2, 1)
    assert rows["orig"]["effect"] is None and rows["orig"]["vs_orig"] == 0
    assert rows["knock-in:batching"]["vs_start"] == pytest.approx(-7, abs=0.5)
    # regression: the console rule (>= 50 % of the gap) left out l2's significant 30 % that the report named
    assert payload["verdict"][1:] == [rows["knock-in:batching"]["sentence"], rows["knock-in:l2"]["sentence"]]
    assert payload["headline"] == rows["knock-in:batching"]["sentence"]
    assert payload["trainings"] == {"total": 10, "run": 10, "reused": 0}
    assert payload["strategy"] is None and payload["environments"] is None and payload["plan"] is None


def test_the_report_says_what_results_json_says(bisection, tmp_path):
    payload = results_payload(bisection)
    md, _ = write_bisection_report(tmp_path, payload, "demo")
    report = md.read_text()
    assert f"**{payload['headline']} (gap start − orig {payload['gap']['estimate']:+.2f} % WER" in report
    for row in payload["hybrids"]:
        if row["sentence"]:
            assert row["sentence"] in report


def test_without_references_the_best_dev_error_is_judged(tmp_path):
    def trained(label: str, seed: int, dev_error: float) -> JobResult:
        return JobResult(label, "c", seed, "k", "ok", best_dev={"key": "dev_error", "epoch": 2, "value": dev_error})

    runs = [trained("orig", s, v) for s, v in ((1, 0.30), (2, 0.31))] + [
        trained("start", s, v) for s, v in ((1, 0.60), (2, 0.61))] + [trained("knock-out:lr", 1, 0.605)]
    labels = {"orig": ([], None), "start": ([], None), "knock-out:lr": (["lr"], "knock-out")}
    payload = results_payload(Bisection("o", "s", "dev error", runs, labels))
    rows = {h["label"]: h for h in payload["hybrids"]}
    assert rows["orig"]["wer_mean"] == pytest.approx(30.5) and run_score(runs[0]) == pytest.approx(30.0)
    assert rows["knock-out:lr"]["verdict"] == "explains" and payload["scorer"] == "dev error"


def test_no_verdict_until_both_baselines_finished(tmp_path):
    runs = [JobResult("orig", "c", 1, "k", "failed", "no epoch was trained"),
            *job_results("start", Simulator(SCENARIO, np.random.default_rng(0))([(frozenset(KNOBS), 1)])[0])]
    bisection = Bisection("o", "s", "test WER", runs, {"orig": ([], None), "start": ([], None)})
    payload = write_results(tmp_path / "results.json", bisection)
    assert payload["verdict"] == [NO_BASELINE] and payload["headline"] == NO_BASELINE and payload["gap"] is None
    assert write_bisection_report(tmp_path, payload, "t") is None and not (tmp_path / "report.md").exists()


def test_one_seed_per_baseline_writes_null_for_what_is_unknown(tmp_path):
    orig_runs, start_runs = Simulator(SCENARIO, np.random.default_rng(1))([(frozenset(), 1), (frozenset(KNOBS), 1)])
    runs = job_results("orig", orig_runs) + job_results("start", start_runs)
    for run in runs:
        run.segments = []  # no per-segment errors: a t interval, which one seed per side cannot give
    write_results(tmp_path / "results.json", Bisection("o", "s", "test WER", runs,
                                                       {"orig": ([], None), "start": ([], None)}))
    text = (tmp_path / "results.json").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON: other tools read it too
    gap = json.loads(text)["gap"]
    assert gap["low"] is None and gap["high"] is None and gap["seed_std"] is None
    assert "not distinguishable from noise" in json.loads(text)["verdict"][0]


@settings(max_examples=30, deadline=None)
@given(st.floats(-5, 5), st.floats(0.01, 3), st.floats(-8, 8))
def test_the_rule_is_the_interval_and_the_sign_of_the_gap(estimate, half_width, gap_estimate):
    effect = Interval(estimate, estimate - half_width, estimate + half_width)
    gap = Interval(gap_estimate, gap_estimate - 1, gap_estimate + 1)
    kind = classify(effect, gap)
    if effect.low <= 0 <= effect.high:
        assert kind == "noise"
    else:
        assert kind == ("explains" if estimate * gap_estimate > 0 else "against")


def test_each_effect_row_follows_the_rule(bisection):
    effects = knob_effects(label_runs(bisection.runs, bisection.labels))
    for effect in effects.effects:
        assert effect.verdict == classify(effect.interval, effects.gap)
        assert math.isclose(effect.share, effect.interval.estimate / effects.gap.estimate)


def _lr_file(folder: Path, dev_errors: list[float]) -> str:
    folder.mkdir(parents=True)
    epochs = ",\n".join(f"{e}: EpochData(learningRate=0.01, error={{'dev_error': {v!r}}})"
                        for e, v in enumerate(dev_errors, start=1))
    (folder / LR_FILE).write_text("{\n" + epochs + ",\n}\n")
    return str(folder)


def test_results_say_from_which_epoch_each_dev_curve_parts_from_start_s(tmp_path):
    def curve(offset: float, better_from: int | None = None) -> list[float]:
        return [0.9 - 0.02 * e + offset - (0.4 if better_from and e >= better_from else 0) for e in range(1, 9)]

    runs = [JobResult("start", "s", seed, "k", "ok", best_dev={"key": "dev_error", "epoch": 8, "value": 0.7},
                      train_dir=_lr_file(tmp_path / f"start{seed}", curve(0.003 * seed))) for seed in (1, 2, 3)]
    runs += [JobResult("orig", "o", 1, "k", "ok", best_dev={"key": "dev_error", "epoch": 8, "value": 0.7},
                       train_dir=_lr_file(tmp_path / "orig", curve(0.006))),
             JobResult("knock-in:lr", "h", 1, "k", "ok", best_dev={"key": "dev_error", "epoch": 8, "value": 0.3},
                       train_dir=_lr_file(tmp_path / "hybrid", curve(0.003, better_from=3)))]
    labels = {"orig": ([], None), "start": ([], None), "knock-in:lr": (["lr"], "knock-in")}
    payload = results_payload(Bisection("o", "s", "dev error", runs, labels))
    assert payload["dev_curves_part_from_start"] == {"orig": None, "knock-in:lr": 3}
