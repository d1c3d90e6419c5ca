"""The diff corpus (benchmarks/corpus/pairs.json) on the pairs the shared fixtures hold: every changed path
in its hand-written category. The whole corpus is fetched and scored by benchmarks/diff_corpus.py, out of CI."""

from __future__ import annotations

import pytest

from benchmarks.corpus_fetch import load_pairs, side_source
from benchmarks.diff_corpus import covers, report, score_diff
from knobs import compare
from knobs.records import Change, Knob, PairDiff
from tests.conftest import RETURNN_CONFIGS, requires_fixtures

# corpus pairs whose files are in the shared fixtures (same repository and commit)
FIXTURE_DIRS = {"2021-swb-conformer-hybrid/": "conformer2021", "2020-rnn-transducer/configs/": "rnnt2020"}


def fixture_file(pair: dict, side: str):
    commit, path = side_source(pair, side)
    assert pair["repo"] == "rwth-i6/returnn-experiments" and commit.startswith("228366187864")
    folder = next(v for k, v in FIXTURE_DIRS.items() if path.startswith(k))
    return RETURNN_CONFIGS / folder / path.rsplit("/", 1)[-1]


@requires_fixtures()
@pytest.mark.parametrize("pair_id", ["swb-conformer-12l-vs-no-focal", "swb-conformer-12l-vs-6l",
                                     "rnnt2020-rna-vs-rna-rep"])
def test_fixture_pairs_of_the_corpus_are_all_in_the_expected_category(pair_id):
    pair = next(p for p in load_pairs() if p["id"] == pair_id)
    score = score_diff(pair, compare(str(fixture_file(pair, "orig")), str(fixture_file(pair, "start"))))
    assert score.rows and score.wrong == []
    # statements that fail on this machine (the RNA configs' cluster paths, an old DimensionTag call) say why
    assert all(u.split(": ", 2)[2].split(":")[0].endswith("Error") for u in score.unresolved)


def test_an_expectation_covers_the_paths_below_its_key_and_misses_count_against():
    assert covers("train", "train.class") and covers("network.*", "network.a.unit.b")
    assert not covers("train", "trainer") and not covers("network.aux_*", "network.source")

    diff = PairDiff("o", "s", [Knob("data", "data", [Change("train.class", "a", "b", category="data")]),
                               Knob("model", "model", [Change("network.out.loss", "ce", "ctc", category="model")])],
                    [], [], [])
    pair = {"id": "p", "expect": [["train", "data", "dataset"], ["network.*.loss", "loss", "loss"]],
            "shared": [["log*", "runtime", "logging"]]}
    score = score_diff(pair, diff)
    assert score.right == 1 and score.wrong == [("network.out.loss", "loss", "model")]
    lines = report([score], verbose=True)
    assert "right category: 1/2 = 50.0 % of paths; mean over pairs 50.0 %" in lines
    assert "  p: network.out.loss: expected loss, got model" in lines
