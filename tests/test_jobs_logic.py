"""The Sisyphus half of a bisection that needs no Sisyphus (runs in CI): the plan of what to train, reading scores,
the gather job's aggregation (the same results.json as `run`), the hashed arguments, the hybrids a confirmation
stage trains, and how `submit` judges a finished manager run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bisect_cli.submit_cmd import finished_results
from common.errors import UserError
from jobs.gather import gather_results, read_score
from jobs.plan import Plan, confirm_plan, content_digest, fixed_plan, hashed_args, movers
from runner.environment import FIELDS
from runner.results import Bisection, results_payload
from runner.steps import TrainResult
from tests.conftest import PROJECT_ROOT
from tests.test_results import KNOBS, simulated_bisection

ORIG_SPEC = {"python": "/venvs/a/bin/python", "returnn_root": "/returnn/2024", "env": {}, "engine_rqmt": {}}
START_SPEC = {"python": "/venvs/b/bin/python", "returnn_root": None, "env": {}, "engine_rqmt": {}}


def test_jobs_package_and_its_plain_modules_import_no_sisyphus():
    code = ("import sys, jobs, jobs.plan, jobs.gather, jobs.engine_settings, jobs.slurm_state, jobs.setup_api, "
            "bisect_cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sisyphus'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_fixed_plan_trains_the_baselines_and_each_request_in_its_environment():
    plan = Plan(requests=[(("batching",), "knock-in"), (("l2", "environment"), "knock-out"),
                          (("environment",), "knock-in")], seeds=2, baseline_seeds=3,
                environments={"orig": ORIG_SPEC, "start": START_SPEC},
                environment_fields={"environment": ["python", "returnn_root"]})
    planned = fixed_plan(plan)
    assert [(p.label, list(p.seeds)) for p in planned] == [
        ("orig", [1, 2, 3]), ("start", [1, 2, 3]), ("knock-in.batching", [1, 2]),
        ("knock-out.environment+l2", [1, 2]), ("knock-in.environment", [1, 2])]
    assert planned[0].environment == ORIG_SPEC and planned[1].environment == START_SPEC
    batching, mixed, environment_only = (p.hybrid for p in planned[2:])
    assert (batching.config_knobs, batching.environment, batching.switches_environment) == (("batching",), START_SPEC,
                                                                                            False)
    # knock-out: orig's config with l2 from start, trained in start's environment (the switched knob's side)
    assert (mixed.config_knobs, mixed.base_side, mixed.environment) == (("l2",), "orig", START_SPEC)
    assert (environment_only.config_knobs, environment_only.environment) == ((), ORIG_SPEC)
    assert fixed_plan(Plan(requests=[(("l2",), "knock-in")]))[2].environment is None  # the tool's own Python
    assert set(ORIG_SPEC) == set(FIELDS)


def test_hashed_arguments_leave_out_data_locations_and_requirements(tmp_path):
    args = {"config": "c", "seed": 1, "num_epochs": 2, "data_env": {"D": "/data"}, "rqmt": {"gpu": 1}}
    assert hashed_args(args) == {"config": "c", "seed": 1, "num_epochs": 2}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.config").write_text("lr = 1\n")
    (tmp_path / "y.config").write_text("lr = 1\n")
    assert content_digest(tmp_path / "a" / "x.config") == content_digest(tmp_path / "y.config")
    (tmp_path / "y.config").write_text("lr = 2\n")
    assert content_digest(tmp_path / "a" / "x.config") != content_digest(tmp_path / "y.config")


@pytest.fixture
def simulated() -> Bisection:
    return simulated_bisection(11)


def sisyphus_outputs(bisection: Bisection, folder: Path) -> list[dict]:
    """The gather entries of the same runs as the Sisyphus jobs leave them: hybrid.json per hybrid, train.json and
    score.json per run (the formats WriteHybridJob, TrainJob and RecognizeScoreJob write)."""
    entries = []
    for label, (knobs, direction) in bisection.labels.items():
        info = None
        if direction is not None:
            info = folder / f"WriteHybridJob.{label}" / "hybrid.json"
            info.parent.mkdir(parents=True)
            info.write_text(json.dumps({"id": label, "knobs": knobs, "direction": direction}))
        runs = []
        for r in (r for r in bisection.runs if r.label == label):
            train_dir = folder / f"TrainJob.{label}.{r.seed}" / "output" / "train"
            trained = TrainResult("ok", None, str(train_dir / "returnn.stdout.txt"), str(train_dir), 2, 5.0,
                                  {"key": "dev_error", "epoch": 2, "value": 0.2})
            score = folder / f"RecognizeScoreJob.{label}.{r.seed}" / "output" / "score.json"
            score.parent.mkdir(parents=True)
            score.write_text(json.dumps({"wer": r.wer, "segments": r.segments, "seed_result": trained.to_json()}))
            runs.append({"seed": r.seed, "score": str(score)})
        entries.append({"label": label, "config": f"{label}.config", "info": str(info) if info else None,
                        "runs": runs})
    return entries


def test_the_gather_job_writes_what_run_writes(simulated, tmp_path):
    entries = sisyphus_outputs(simulated, tmp_path / "work")
    out = tmp_path / "output"
    gathered = gather_results(entries, out / "results.json", out / "report.txt", out / "report", "t")
    local = results_payload(simulated)
    assert set(gathered) == set(local)
    for key in ("headline", "verdict", "gap", "hybrids", "scorer", "trainings"):
        assert gathered[key] == local[key], key
    assert [(j["label"], j["seed"], j["wer"]) for j in gathered["jobs"]] == [(j["label"], j["seed"], j["wer"])
                                                                             for j in local["jobs"]]
    assert gathered["jobs"][0]["key"] == "TrainJob.orig.1" and gathered["orig"] == "orig.config"
    assert gathered["jobs"][0]["score_key"] == "RecognizeScoreJob.orig.1" and gathered["jobs"][0]["final_epoch"] == 2
    assert json.loads((out / "results.json").read_text()) == gathered
    text = (out / "report.txt").read_text()
    assert "knock-in:batching: " in text and text.rstrip().endswith(gathered["verdict"][-1])
    assert (out / "report" / "report.md").read_text().count(gathered["headline"]) >= 1


def test_read_score_without_references_judges_the_best_dev_error(tmp_path):
    trained = TrainResult("ok", None, "log", str(tmp_path / "TrainJob.x" / "output" / "train"), 2, 1.0,
                          {"key": "dev_error", "epoch": 2, "value": 0.25})
    (tmp_path / "train.json").write_text(json.dumps(trained.to_json()))
    score = read_score(tmp_path / "train.json")
    assert score == {"wer": None, "segments": [], "seed_result": trained.to_json()}
    entries = [{"label": side, "config": f"{side}.config", "info": None,
                "runs": [{"seed": 1, "score": str(tmp_path / "train.json")}]} for side in ("orig", "start")]
    payload = gather_results(entries, tmp_path / "r.json", tmp_path / "r.txt", tmp_path / "report", "t")
    assert payload["scorer"] == "dev error" and payload["hybrids"][0]["wer_mean"] == pytest.approx(25.0)


def test_a_hybrid_that_switches_the_environment_is_named_by_all_its_knobs(simulated, tmp_path):
    entries = sisyphus_outputs(simulated, tmp_path)
    entry = next(e for e in entries if e["label"] == "knock-in:l2")
    entry.update(knobs=["environment", "l2"], direction="knock-in")
    payload = gather_results(entries, tmp_path / "r.json", tmp_path / "r.txt", tmp_path / "report", "t")
    assert "knock-in:environment+l2" in [h["label"] for h in payload["hybrids"]]


def test_the_confirmation_stage_trains_more_seeds_of_the_movers_only(simulated):
    results = results_payload(simulated)
    plan = Plan(requests=[((k,), "knock-in") for k in KNOBS], seeds=1)
    assert movers(results) == [(("batching",), "knock-in")]  # 70 % of the gap; l2's 30 % and dropout are not
    assert movers(results, min_share=0.2) == [(("batching",), "knock-in"), (("l2",), "knock-in")]
    confirm = confirm_plan(plan, results, extra_seeds=2)
    assert (confirm.requests, confirm.seeds, plan.seeds) == ([(("batching",), "knock-in")], 3, 1)
    assert [list(p.seeds) for p in fixed_plan(confirm)] == [[1, 2, 3], [1, 2, 3], [1, 2, 3]]  # seed 1: the same job


def test_submit_reports_failed_jobs_and_missing_results(tmp_path):
    setup = tmp_path / "setup"
    (setup / "work" / "jobs" / "RecognizeScoreJob.abc").mkdir(parents=True)
    with pytest.raises(UserError, match=r"did not finish \(manager said: waiting for 3 jobs\)"):
        finished_results(setup, "demo", False, "waiting for 3 jobs")
    (setup / "work" / "jobs" / "RecognizeScoreJob.abc" / "error.run.1").write_text("")
    results = setup / "output" / "bisect" / "demo" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text("{}")
    with pytest.raises(UserError, match=f"failed jobs: {setup / 'work' / 'jobs' / 'RecognizeScoreJob.abc'}"):
        finished_results(setup, "demo", False, "")  # the manager exits 0 even when a job failed
    (setup / "work" / "jobs" / "RecognizeScoreJob.abc" / "error.run.1").unlink()
    assert finished_results(setup, "demo", False, "") == results
    with pytest.raises(UserError, match="the confirmation stage did not finish"):
        finished_results(setup, "demo", True, "")
    confirmed = setup / "output" / "bisect" / "demo_confirm" / "results.json"
    confirmed.parent.mkdir(parents=True)
    confirmed.write_text("{}")
    assert finished_results(setup, "demo", True, "") == confirmed


def test_the_sisyphus_config_keeps_the_order_of_the_units_and_the_plan():
    """Regression: pprint sorted the units, so the strategy in Sisyphus split them in another order than `run` and
    asked other questions over the same WERs."""
    import ast

    from bisect_cli.submit_cmd import config_text

    units = {"lr": ["lr"], "l2": ["l2"], "dropout": ["dropout"]}
    text = config_text(Path("orig.config"), Path("start.config"), {"requests": [], "seeds": None, "jobs": 2}, "ff",
                       strategy="adaptive", units=units)
    line = next(line for line in text.splitlines() if line.startswith("UNITS = "))
    assert list(ast.literal_eval(line.partition(" = ")[2].partition("  #")[0])) == ["lr", "l2", "dropout"]
    plan = text[text.index("PLAN = Plan(**") + len("PLAN = Plan(**"):]
    assert list(ast.literal_eval(plan[:plan.index("})") + 1])) == ["requests", "seeds", "jobs"]


def test_submit_carries_the_plan_to_the_gather_jobs_results_and_report(simulated, tmp_path, monkeypatch):
    """`submit --plan`: the table and the settings used go into the config's Plan (the graph hands
    `plan.plan_section` to GatherResultsJob), and the gather job's results.json and report show the plan's row."""
    import ast

    from click.testing import CliRunner

    from attribution.plan_table import load_plan_table, plan_section
    from bisect_cli.main import cli

    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "cache"))
    pair = [str(PROJECT_ROOT / "configs" / side / "demo_ctc.config") for side in ("orig", "start")]
    saved, setup = tmp_path / "plan.json", tmp_path / "setup"
    planned = CliRunner().invoke(cli, ["plan", *pair, "--gpus", "4", "--hours-per-training", "80", "--trials", "1",
                                       "-o", str(saved)])
    assert planned.exit_code == 0, planned.output
    result = CliRunner().invoke(cli, ["submit", *pair, "-o", str(setup), "--strategy", "adaptive", "--jobs", "4",
                                      "--plan", str(saved), "--dry-run"])
    assert result.exit_code == 0, result.output
    tree = ast.parse((setup / "config" / "bisect.py").read_text())
    call = next(n.value for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "PLAN")
    plan = Plan(**ast.literal_eval(call.keywords[0].value))
    assert plan.plan_section == plan_section(load_plan_table(saved), saved, "adaptive", 4)
    out = tmp_path / "output"
    payload = gather_results(sisyphus_outputs(simulated, tmp_path / "work"), out / "results.json",
                             out / "report.txt", out / "report", "t", plan_section=plan.plan_section)
    assert payload["plan"] == plan.plan_section == json.loads((out / "results.json").read_text())["plan"]
    report = (out / "report" / "report.md").read_text()
    assert "### The plan's row" in report and "| plan: adaptive on 4 GPUs (mean, 95th percentile) |" in report
    count = len(simulated.runs)  # trainings, at the plan's 80 h each; one round of 80 h
    assert f"| this run | - | {count} | {count * 80} | 1 | {80 / 24:.1f} |" in report
