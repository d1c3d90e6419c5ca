"""The plan's row in the report: the decision table of `plan -o` read back (and refused when it is not one), the row
of the strategy and GPUs the run used against what the run measured, in the view model, the Markdown and the HTML
(in a real browser)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution.plan_table import PlanRow, PlanTable, load_plan_table, plan_section
from attribution.report import write_report
from attribution.report_model import HOURS_PER_TRAINING, ReportContext, build_model
from attribution.report_plan import plan_view
from common.errors import UserError
from tests.browser_checks import check_report
from tests.test_attribution_report import DIFF, _job
from tests.test_status_report import require_browser

HOURS = 48.0


def plan_row(strategy: str, gpus: int, success: float = 0.9, runs: float = 20.0) -> PlanRow:
    """A row as `plan` computes it: rounds shrink with more GPUs, GPU-hours and days follow from HOURS."""
    rounds = runs / gpus
    return PlanRow(strategy, gpus, success, runs, runs + 10, runs * HOURS, (runs + 10) * HOURS, rounds, rounds + 1,
                   rounds * HOURS / 24, (rounds + 1) * HOURS / 24)


def make_table(recommended: tuple[str, int] = ("adaptive", 4)) -> PlanTable:
    rows = [plan_row(s, g, 0.97 if s == "adaptive" else 0.6, 24.0 if s == "adaptive" else 36.0)
            for g in (2, 4, 8) for s in ("one-at-a-time", "adaptive")]
    for r in rows:
        r.recommended = (r.strategy, r.gpus) == recommended
    return PlanTable("orig.config", "start.config", ["batching", "lr+pretrain", "l2"], 4, HOURS, 0.1, 2, 0,
                     ["one culprit", "two culprits", "a pure pair"], rows, "adaptive is right in 97% of the cases")


def test_the_row_of_the_strategy_and_gpus_the_run_used_stands_against_what_it_measured(tmp_path):
    view = plan_view(plan_section(make_table(), tmp_path / "plan.json", "adaptive", 4), trainings=30, rounds=5)
    assert view.chosen and view.recommended
    plan, run = view.figures
    assert plan.label.startswith("plan: adaptive on 4 GPUs") and plan.success == "97%"
    assert (plan.trainings, plan.gpu_hours, plan.rounds, plan.days) == ("24.0 (34)", "1152 (1632)", "6.0 (7)",
                                                                         "12.0 (14.0)")
    assert (run.label, run.trainings, run.gpu_hours, run.rounds, run.days) == ("this run", "30", "1440", "5", "10.0")
    assert view.lines[0] == "The run used the plan's recommended row: adaptive on 4 GPUs."
    assert view.lines[1].startswith("Why the plan recommends adaptive on 4 GPUs: adaptive is right in 97%")
    assert view.file == str(tmp_path / "plan.json") and "3 units (batching, lr+pretrain, l2); 48 h per training; " \
        "seed noise 0.1 x the gap; 2 trials per case (one culprit, two culprits, a pure pair), seed 0" == \
        view.computed_for


def test_a_row_that_is_not_the_recommended_one_says_so():
    view = plan_view(plan_section(make_table(), "plan.json", "one-at-a-time", 8), trainings=36, rounds=5)
    assert view.chosen and not view.recommended
    assert view.figures[0].label.startswith("plan: one-at-a-time on 8 GPUs")
    assert view.lines[0] == "The run used one-at-a-time on 8 GPUs, not the recommended row (adaptive on 4 GPUs)."


@pytest.mark.parametrize("strategy, jobs, used", [(None, 2, "a fixed list of hybrids, 2 trainings at once"),
                                                  (None, None, "a fixed list of hybrids"),  # submit: the cluster's
                                                  ("adaptive", 3, "adaptive on 3 GPUs")])
def test_settings_the_table_has_no_row_for_show_the_recommended_row_and_say_so(strategy, jobs, used):
    view = plan_view(plan_section(make_table(), "plan.json", strategy, jobs), trainings=12, rounds=None,
                     partial=True)
    assert not view.chosen and not view.recommended
    assert view.figures[0].label.startswith("plan: adaptive on 4 GPUs")
    assert view.lines[0] == (f"The run used other settings ({used}) than any row of the table: shown is the "
                             f"recommended row, adaptive on 4 GPUs.")
    run = view.figures[1]
    assert (run.label, run.trainings, run.gpu_hours, run.rounds, run.days) == ("this run (so far)", "12", "576", "-",
                                                                               "-")


def test_without_a_plan_the_report_has_no_plan_row(tmp_path):
    assert plan_view(None, 10, 1) is None
    results = report_results(tmp_path, None)
    model = build_model(results, "demo", tmp_path)
    assert model.plan is None and model.cost.hours_per_training == HOURS_PER_TRAINING
    md, page = write_report(tmp_path / "report", results, "demo", ReportContext(diff=DIFF))
    assert "plan-row" not in page.read_text() and "The plan's row" not in md.read_text()


def report_results(folder, section: dict | None) -> dict:
    """orig 10 %, start 30 %, batching's knock-in closes the gap (3 + 3 + 1 trainings), with results.json's plan."""
    rng = np.random.default_rng(3)
    jobs = [_job(folder, side, s, p, rng) for side, p in (("orig", 0.10), ("start", 0.30)) for s in (1, 2, 3)]
    jobs.append(_job(folder, "knock-in:batching", 1, 0.10, rng))
    hybrids = [{"label": s, "knobs": [], "direction": None} for s in ("orig", "start")]
    hybrids.append({"label": "knock-in:batching", "knobs": ["batching"], "direction": "knock-in"})
    return {"jobs": jobs, "hybrids": hybrids, "strategy": None, "plan": section}


def test_the_report_counts_gpu_hours_at_the_plans_hours_unless_told_otherwise(tmp_path):
    results = report_results(tmp_path, plan_section(make_table(), "plan.json", None, 2))
    model = build_model(results, "demo", tmp_path)
    assert model.cost.hours_per_training == HOURS and model.cost.gpu_hours == 7 * HOURS
    assert model.plan.figures[1].gpu_hours == "336" and model.plan.figures[1].rounds == "1"
    told = build_model(results, "demo", tmp_path, ReportContext(hours_per_training=80))
    assert told.cost.gpu_hours == 7 * 80 and told.plan.figures[1].gpu_hours == "336"  # the plan's units stay


def test_markdown_and_html_show_the_plans_row_in_the_cost_section(tmp_path):
    results = report_results(tmp_path, plan_section(make_table(), tmp_path / "plan.json", "adaptive", 4))
    md, page = write_report(tmp_path / "report", results, "demo", ReportContext(diff=DIFF))
    md_text, html_text = md.read_text(), page.read_text()
    assert md_text.index("## Cost") < md_text.index("### The plan's row (recommended)")
    assert "| plan: adaptive on 4 GPUs (mean, 95th percentile) | 97% | 24.0 (34) | 1152 (1632) | 6.0 (7) | " \
           "12.0 (14.0) |" in md_text
    assert "| this run | - | 7 | 336 | 1 | 2.0 |" in md_text
    assert "- The run used the plan's recommended row: adaptive on 4 GPUs." in md_text
    section = re.search(r'<section id="plan-row">(.*?)</section>', html_text, re.S).group(1)
    assert html_text.index("<h2>Cost</h2>") < html_text.index('<section id="plan-row">')
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", section)
    assert cells == ["plan: adaptive on 4 GPUs (mean, 95th percentile)", "97%", "24.0 (34)", "1152 (1632)", "6.0 (7)",
                     "12.0 (14.0)", "this run", "-", "7", "336", "1", "2.0"]


def test_the_plans_row_in_a_real_browser(tmp_path):
    require_browser()
    results = report_results(tmp_path, plan_section(make_table(), tmp_path / "plan.json", "one-at-a-time", 2))
    _, page = write_report(tmp_path / "report", results, "demo", ReportContext(diff=DIFF))
    check = check_report(page)
    assert check.console_errors == [] and check.verdict_on_first_screen
    lines = check.plan_row.splitlines()
    assert lines[0] == "The plan's row"  # not the recommended one
    assert "plan: one-at-a-time on 2 GPUs (mean, 95th percentile)\t60%\t36.0 (46)\t1728 (2208)\t18.0 (19)\t" \
           "36.0 (38.0)" in lines
    assert "this run\t-\t7\t336\t1\t2.0" in lines
    assert "The run used one-at-a-time on 2 GPUs, not the recommended row (adaptive on 4 GPUs)." in lines


def test_plan_tables_survive_the_file(tmp_path):
    table = make_table(("one-at-a-time", 8))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(table.to_json()))
    assert load_plan_table(path) == table
    section = plan_section(table, path, "adaptive", 4)
    assert section["file"] == str(path) and PlanTable.from_json(json.loads(json.dumps(section))["table"]) == table


@given(st.lists(st.tuples(st.sampled_from(["adaptive", "ddmin", "greedy"]), st.integers(1, 64),
                          st.floats(0, 1), st.floats(0, 1e4)), min_size=1, max_size=12, unique_by=lambda r: r[:2]),
       st.data())
def test_any_table_plan_writes_reads_back_as_itself(rows, data):
    table = replace(make_table(), rows=[plan_row(s, g, success, runs) for s, g, success, runs in rows])
    table.rows[data.draw(st.integers(0, len(rows) - 1))].recommended = True
    assert PlanTable.from_json(json.loads(json.dumps(table.to_json()))) == table


def broken(change) -> dict:
    data = make_table().to_json()
    change(data)
    return data


NOT_TABLES = [
    ({"orig": "o", "start": "s", "scorer": "test WER", "hybrids": []}, "no `units`"),  # results.json by mistake
    ([1, 2], "a JSON list, not an object"),
    (broken(lambda d: d.pop("seed")), "no `seed`"),
    (broken(lambda d: d.update(gpus=True)), "`gpus` is not an int: True"),
    (broken(lambda d: d.update(hours_per_training="48")), "`hours_per_training` is not a float: '48'"),
    (broken(lambda d: d.update(units=[])), "`units` is not a list of names"),
    (broken(lambda d: d["rows"][0].pop("p95_days")), "row 1 has no `p95_days`"),
    (broken(lambda d: d["rows"][2].update(mean_runs=None)), "`row 3 mean_runs` is not a float: None"),
    (broken(lambda d: d["rows"][0].update(recommended=True)), "not exactly one recommended row"),
    (broken(lambda d: d["recommended"].update(gpus=8)), "not exactly one recommended row"),
    (broken(lambda d: d["recommended"].pop("why")), "`recommended` has no `why`"),
]


@pytest.mark.parametrize("data, cause", NOT_TABLES)
def test_what_is_not_a_plan_table_is_refused_naming_the_file_and_the_cause(data, cause, tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError) as error:
        load_plan_table(path)
    assert error.value.path == str(path) and error.value.cause.startswith("not a plan table (")
    assert cause in error.value.cause and "`config-bisect plan ORIG START ... -o PLAN.json`" in error.value.cause


def test_unreadable_files_and_other_units_are_refused(tmp_path):
    with pytest.raises(UserError, match="cannot read the plan table: No such file or directory"):
        load_plan_table(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{'units': ")
    with pytest.raises(UserError, match=r"bad.json: not a plan table \(not valid JSON"):
        load_plan_table(tmp_path / "bad.json")
    table = make_table()
    table.check_units(["l2", "batching", "lr+pretrain"], "plan.json")  # the order does not matter
    with pytest.raises(UserError) as error:
        table.check_units(["batching", "lr", "pretrain", "l2"], "plan.json")
    assert str(error.value) == ("plan.json: the plan table was computed for other units (batching, lr+pretrain, l2) "
                                "than this pair's (batching, lr, pretrain, l2): run `config-bisect plan` on this pair")
