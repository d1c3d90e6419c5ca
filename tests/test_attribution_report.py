"""The report: one view model rendered as Markdown and self-contained HTML, in the order a reader needs it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution.report import write_report
from attribution.report_charts import ORIG_COLOUR, START_COLOUR, colours_for
from attribution.report_model import ReportContext, build_model
from attribution.simulator import SEGMENT_WORDS

SECTIONS = ["Knobs: effect on the WER", "Interactions and aliasing", "Hybrids", "Training curves",
            "Environments and reproducibility", "Cost"]
DIFF = {"knobs": [
    {"name": "batching", "category": "batching", "coupled_with": [], "coupling": [],
     "changes": [{"path": "accum_grad_multiple_step", "orig": 1, "start": 3, "epochs": None}]},
    {"name": "l2", "category": "l2", "coupled_with": [], "coupling": [],
     "changes": [{"path": "l2", "orig": 1e-4, "start": 1e-3, "epochs": None}]},
    {"name": "lr", "category": "lr", "coupled_with": ["pretrain"], "coupling": ["pretrain's #config sets lr"],
     "changes": [{"path": "learning_rates", "orig": [0.001], "start": [0.002], "epochs": "1-3"}]},
    {"name": "pretrain", "category": "pretrain", "coupled_with": ["lr"], "coupling": ["pretrain's #config sets lr"],
     "changes": [{"path": "pretrain.repetitions", "orig": 1, "start": 2, "epochs": None}]},
    {"name": "search", "category": "search", "coupled_with": [], "coupling": [],
     "changes": [{"path": "beam_size", "orig": 12, "start": 8, "epochs": None}]}],
    "warnings": ["orig: the config is in RETURNN's text format",
                 {"code": "accum-nondeterministic", "message": "gradient accumulation differs between runs",
                  "advice": "set behavior_version = 15 or newer", "side": "start"}]}


def _job(folder: Path, label: str, seed: int, p: float, rng, status: str = "ok") -> dict:
    """One training: WER and per-segment errors drawn with error rate `p`, a config and a log file."""
    errors = rng.binomial(SEGMENT_WORDS, p, size=60)
    config, log = folder / f"{label.replace(':', '_')}.config", folder / "jobs" / f"{label}-{seed}" / "returnn.log"
    config.write_text("#!rnn.py\n")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("RETURNN starting up\n")
    segments = [{"substitutions": int(e), "deletions": 0, "insertions": 0, "ref_words": SEGMENT_WORDS}
                for e in errors]
    done = status == "ok"
    return {"label": label, "seed": seed, "status": status, "wer": 100 * errors.sum() / (60 * SEGMENT_WORDS)
            if done else None, "segments": segments if done else [], "config": str(config), "log": str(log),
            "reason": None if done else "RETURNN exited with 1: ValueError: bad", "seconds": 30.0}


@pytest.fixture
def results(tmp_path) -> dict:
    """orig 10 %, start 30 % WER; batching closes the gap from either side, l2 is noise, lr+pretrain only in
    knock-in, a failed knock-out of lr+pretrain."""
    rng = np.random.default_rng(5)
    jobs = [_job(tmp_path, side, s, p, rng) for side, p in (("orig", 0.10), ("start", 0.30)) for s in (1, 2, 3)]
    rates = {"knock-in:batching": 0.10, "knock-out:batching": 0.30, "knock-in:l2": 0.30, "knock-out:l2": 0.10,
             "knock-in:lr+pretrain": 0.30}
    jobs += [_job(tmp_path, label, 1, p, rng) for label, p in rates.items()]
    jobs.append(_job(tmp_path, "knock-out:lr+pretrain", 1, 0.1, rng, status="failed"))
    hybrids = [{"label": s, "knobs": [], "direction": None} for s in ("orig", "start")]
    hybrids += [{"label": label, "knobs": label.split(":")[1].split("+"), "direction": label.split(":")[0]}
                for label in [*rates, "knock-out:lr+pretrain"]]
    return {"jobs": jobs, "hybrids": hybrids}


def test_the_report_leads_with_the_verdict_and_the_config_lines_to_change(results, tmp_path):
    out = tmp_path / "report"
    md, page = write_report(out, results, "demo", ReportContext(diff=DIFF))
    html_text, md_text = page.read_text(), md.read_text()
    verdict = re.search(r'<p id="verdict"[^>]*>(.*?)</p>', html_text, re.S).group(1)
    assert verdict.startswith("batching (knock-in) explains") and "of the" in verdict
    assert re.search(r"gap start − orig \+\d+\.\d\d % WER, 95 % interval \[\+\d", verdict)
    assert re.search(r"noise floor ±\d+\.\d\d", verdict)
    assert f"**{verdict}**" in md_text  # one source: the same sentence in both
    assert "<code>accum_grad_multiple_step</code> 3 → 1" in html_text  # what to set in start
    positions = [html_text.index(f"<h2>{s}</h2>") for s in SECTIONS]
    assert html_text.index('id="verdict"') < positions[0] and positions == sorted(positions)
    assert [md_text.index(f"## {s}\n") for s in SECTIONS] == sorted(md_text.index(f"## {s}\n") for s in SECTIONS)
    assert (out / "report_forest.png").read_bytes()[:4] == b"\x89PNG"


def test_the_html_is_self_contained_and_its_links_lead_to_the_configs_and_logs(results, tmp_path):
    out = tmp_path / "report"
    _, page = write_report(out, results, "demo", ReportContext(diff=DIFF))
    html_text = page.read_text()
    assert "<link" not in html_text and "<script" not in html_text
    images = re.findall(r'<img[^>]* src="([^"]*)"', html_text)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    hrefs = re.findall(r'href="([^"]*)"', html_text)
    assert len(hrefs) == len(results["jobs"]) + len(results["hybrids"])  # a log per training, a config per hybrid
    for href in hrefs:
        assert "://" not in href and not href.startswith("/")  # relative: the folder can move as a whole
        assert (out / unquote(href)).resolve().is_file(), href  # a colon in a name is escaped: not a scheme


def test_every_hybrid_and_seed_is_in_the_table_with_its_status(results, tmp_path):
    model = build_model(results, "demo", tmp_path, ReportContext(diff=DIFF))
    rows = {h.label: h for h in model.hybrids}
    assert list(rows) == [h["label"] for h in results["hybrids"]]
    assert [s.text for s in rows["orig"].seeds] == [f"{j['wer']:.2f}" for j in results["jobs"][:3]]
    assert rows["orig"].interval.startswith("[") and rows["orig"].status == "3 done"
    failed = rows["knock-out:lr+pretrain"]
    assert failed.status == "1 failed" and failed.mean == "-" and "ValueError: bad" in failed.seeds[0].reason
    assert model.cost.trainings == 12 and model.cost.failed == 1 and model.cost.gpu_hours == 12 * 80


def test_knobs_are_ordered_by_verdict_and_each_shows_its_changes(results, tmp_path):
    model = build_model(results, "demo", tmp_path, ReportContext(diff=DIFF))
    assert [k.name for k in model.knobs][0] == "batching" and model.knobs[0].kind == "explains"
    assert {k.name: k.kind for k in model.knobs}["l2"] == "noise"
    assert [(c.path, c.orig, c.start) for c in model.knobs[0].changes] == [("accum_grad_multiple_step", "1", "3")]
    lr = next(k for k in model.knobs if k.name == "lr+pretrain")
    assert [c.epochs for c in lr.changes] == ["1-3", "all"]
    assert [k.name for k in model.untested] == ["search"]  # never switched: still listed with its change


def test_interactions_and_aliasing_are_said_in_words(results, tmp_path):
    sentences = build_model(results, "demo", tmp_path, ReportContext(diff=DIFF)).interactions
    assert any(s.startswith("lr and pretrain can only be switched together (pretrain's #config sets lr)") and
               "aliased" in s for s in sentences)
    assert any("Knock-in and knock-out agree within their intervals for batching, l2" in s for s in sentences)
    # make batching's knock-out do nothing: its two directions disagree, so it interacts
    rng = np.random.default_rng(1)
    results["jobs"] = [j if j["label"] != "knock-out:batching" else _job(tmp_path, j["label"], 1, 0.10, rng)
                       for j in results["jobs"]]
    sentences = build_model(results, "demo", tmp_path, ReportContext(diff=DIFF)).interactions
    assert any(s.startswith("batching: switched into start it moves the WER by") and "interacts" in s
               for s in sentences)


def test_warnings_of_both_forms_are_shown_with_their_advice(results, tmp_path):
    md, page = write_report(tmp_path / "r", results, "demo", ReportContext(diff=DIFF))
    html_text, md_text = page.read_text(), md.read_text()
    assert "orig: the config is in RETURNN&#39;s text format" in html_text
    assert "(accum-nondeterministic):</b> start: gradient accumulation differs between runs" in html_text
    assert "set behavior_version = 15 or newer" in html_text
    assert "- **Warning (accum-nondeterministic):** start: gradient accumulation differs between runs — set " \
           "behavior_version = 15 or newer" in md_text


def test_a_partial_report_says_so_first(results, tmp_path):
    results["jobs"].append({"label": "knock-out:l2", "seed": 2, "status": "running", "log": None})
    context = ReportContext(diff=DIFF, partial="11 of 13 trainings finished, 1 running",
                            pending=["The strategy waits for knock-out:l2 seed 2 (round 3)."])
    md, page = write_report(tmp_path / "r", results, "demo", context)
    html_text = page.read_text()
    banner = html_text.index("Partial report:</b> 11 of 13 trainings finished, 1 running.")
    assert banner < html_text.index('id="verdict"') and "waits for knock-out:l2 seed 2" in html_text
    assert re.search(r'id="verdict"[^>]*>So far: batching', html_text)
    assert md.read_text().startswith("# demo\n\n> **Partial report:** 11 of 13 trainings finished")


def test_without_finished_baselines_there_is_no_verdict_yet(tmp_path):
    jobs = [{"label": "orig", "seed": 1, "status": "running", "log": None}]
    model = build_model({"jobs": jobs, "hybrids": [{"label": "orig", "knobs": [], "direction": None}]}, "t",
                        tmp_path, ReportContext(partial="0 of 1 trainings finished"))
    assert model.verdict.startswith("No verdict yet") and model.forest is None and not model.knobs


def test_curves_come_from_the_learning_rate_files_beside_the_logs(results, tmp_path):
    for job in results["jobs"]:
        scores = [0.9, 0.5, 0.3, 0.2, 0.15, 0.12] if job["label"] != "knock-in:batching" else [0.9, 0.4] + [0.1] * 4
        epochs = (f"{e + 1}: EpochData(learningRate=0.001, error={{'dev_error': {v + 0.001 * job['seed']}}})"
                  for e, v in enumerate(scores))
        lr_text = "{" + ", ".join(epochs) + "}\n"
        Path(job["log"]).with_name("learning_rates").write_text(lr_text)
    model = build_model(results, "demo", tmp_path, ReportContext(diff=DIFF))
    assert model.curve_key == "dev_error" and model.curves[:4] == b"\x89PNG"


@given(st.integers(min_value=1, max_value=16))
def test_every_hybrid_gets_its_own_colour_never_orig_s_or_start_s(count):
    names = [f"knob{i}" for i in range(count)]
    colours = colours_for(names)
    hybrid_colours = [colours[n] for n in names]
    assert len(set(hybrid_colours)) == count
    assert colours["orig"] == ORIG_COLOUR and colours["start"] == START_COLOUR
    assert not {ORIG_COLOUR, START_COLOUR} & set(hybrid_colours)


def test_relative_config_paths_are_resolved_where_the_run_started(results, tmp_path, monkeypatch):
    for job in results["jobs"]:
        job["config"] = str(Path(job["config"]).relative_to(tmp_path))  # as `run configs/...` records them
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "report").mkdir()
    monkeypatch.chdir(elsewhere)  # `config-bisect report` run from another folder
    model = build_model(results, "demo", tmp_path / "report", ReportContext(paths_base=str(tmp_path)))
    for row in model.hybrids:
        assert (tmp_path / "report" / unquote(row.config_href)).is_file(), row.config_href
