"""Score curves: the real train.info fixture, the noise band and the parting rule on constructed curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from artefacts.curves import (
    MIN_PARTED_EPOCHS,
    Curve,
    compare_curves,
    curves_png,
    jitter,
    read_curve,
    read_scores,
    replicate_band,
)
from artefacts.train_info import read_train_info
from bisect_cli.main import cli
from common.errors import UserError

SCORES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "train-scores"
INFO = SCORES / "rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.train.info.txt"
needs_fixture = pytest.mark.skipif(not INFO.is_file(), reason=f"shared fixture not found: {INFO}")


def noisy(trend, sigma: float, seed: int, epochs: int = 40) -> dict[int, float]:
    rng = np.random.default_rng(seed)
    return {e: trend(e) + float(rng.normal(scale=sigma)) for e in range(1, epochs + 1)}


def falling(e: int) -> float:
    return 6 + 80 * math.exp(-e / 5)


@needs_fixture
def test_train_info_fixture():
    epochs = read_train_info(INFO)
    assert len(epochs) == 250 and epochs[1]["dev_score"] == pytest.approx(87.35103010632963)
    assert set(epochs[1]) == {"dev_score", "devtrain_score", "learning_rate", "train_score"}
    assert [e for e, s in epochs.items() if "eval_score" in s] == [250]
    assert read_scores(INFO) == epochs  # detected by content
    curve = read_curve(INFO)
    assert curve.label == INFO.name and len(curve.values) == 250


@pytest.mark.parametrize(("text", "message"), [
    ("epoch   1 dev_score: 3.0\nnum params: 5\nepoch two dev_score: 2\n", r"line 3 is not 'epoch N key: value'"),
    ("epoch 1 dev_score: 3.0\nepoch 2 dev_score: low\n", r"line 2: 'low' is not a number"),
    ("epoch 1 dev_score: 3.0\nepoch 1 dev_score: 2.0\n", r"line 2: epoch 1 has a second 'dev_score'"),
])
def test_malformed_train_info(tmp_path, text, message):
    bad = tmp_path / "bad.train.info.txt"
    bad.write_text(text)
    with pytest.raises(UserError, match=message):
        read_train_info(bad)
    with pytest.raises(UserError, match="malformed score file: " + message):
        read_curve(bad)


def test_neither_format_and_missing_key(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_text("num params: 5\nsomething else\n")
    with pytest.raises(UserError, match="neither a RETURNN learning-rate file .* nor a score file"):
        read_curve(junk)
    info = tmp_path / "run.train.info.txt"
    info.write_text("epoch 1 dev_score: 3.0\nepoch 1 train_score: 4.0\n")
    with pytest.raises(UserError, match=r"no 'dev_error' scores \(there are: dev_score, train_score\)"):
        read_curve(info, "dev_error")
    result = CliRunner().invoke(cli, ["curves", str(info), str(junk)])
    assert result.exit_code == 2 and f"{junk}: neither a RETURNN learning-rate file" in result.output


def test_jitter_estimates_the_noise_not_the_trend():
    white = list(noisy(lambda e: 0.0, 1.0, seed=1, epochs=400).values())
    assert jitter(white) == pytest.approx(1.0, rel=0.15)
    steep = noisy(falling, 0.1, seed=2, epochs=100)  # monotone almost everywhere: a running median sees nothing
    assert jitter([steep[e] for e in sorted(steep)]) == pytest.approx(0.1, rel=0.3)
    smooth = [falling(e) for e in range(10, 110)]
    assert jitter(smooth) < 1e-3
    assert jitter([1.0, 2.0, 3.0, 4.0]) is None  # too short to tell noise from trend


def test_parted_never_parted_and_crossing():
    a = Curve("a", noisy(falling, 0.1, seed=3))
    same_config = Curve("b", noisy(falling, 0.1, seed=4))
    parted = Curve("parted", {e: v + (1.5 if e >= 12 else 0.0) for e, v in noisy(falling, 0.1, seed=5).items()})
    meets_again = Curve("meets", {e: v + (1.5 if 12 <= e < 30 else 0.0) for e, v in noisy(falling, 0.1, 6).items()})
    jumps_over = Curve("jumps", {e: v + (1.5 if 12 <= e < 25 else -1.5 if e >= 25 else 0.0)
                                 for e, v in noisy(falling, 0.1, seed=7).items()})
    comparison = compare_curves(a, parted)
    assert comparison.parted_from == 12 and comparison.band_source == "jitter"
    assert 0.2 < comparison.band < 1.0  # 2*sqrt(2)*0.1 = 0.28, a bit more for the steep start
    assert comparison.final_gap == pytest.approx(parted.values[40] - a.values[40])
    assert comparison.best_gap == pytest.approx(min(parted.values.values()) - min(a.values.values()))
    assert compare_curves(a, same_config).parted_from is None
    assert compare_curves(a, meets_again).parted_from is None
    assert compare_curves(a, jumps_over).parted_from == 25  # apart on the other side from 25 on
    late = Curve("late", {e: v + (1.5 if e > 40 - MIN_PARTED_EPOCHS + 1 else 0.0) for e, v in a.values.items()})
    assert compare_curves(a, late).parted_from is None  # a short final run is not a parting


def test_replicate_band_widens_and_is_per_epoch():
    replicates = [Curve(f"r{s}", {e: v + offset for e, v in noisy(falling, 0.1, seed=s).items()})
                  for s, offset in ((10, 0.0), (11, 0.6), (12, -0.6))]  # seeds differ by persistent offsets
    band = replicate_band(replicates)
    assert set(band) == set(range(1, 41)) and min(band.values()) > 1.0  # the jitter band is ~0.3
    assert replicate_band(replicates[:1]) is None
    other = Curve("other", {e: v + 0.8 for e, v in replicates[0].values.items()})
    assert compare_curves(replicates[0], other).parted_from == 1  # beyond the jitter ...
    with_replicates = compare_curves(replicates[0], other, band)
    assert with_replicates.parted_from is None and with_replicates.band_source == "replicates"  # ... not the seeds
    two = replicate_band([Curve("x", {1: 1.0, 2: 0.5}), Curve("y", {1: 1.0, 2: 0.7})])
    assert two[1] == 0 and two[2] == pytest.approx(2 * math.sqrt(2) * math.sqrt(0.02))


def test_nan_and_inf_epochs_are_not_compared():
    a = Curve("a", noisy(falling, 0.1, seed=20))
    diverged = Curve("diverged", {**{e: a.values[e] + 2.0 for e in range(1, 31)},
                                  **{e: math.nan for e in range(31, 41)}, 17: math.inf})
    comparison = compare_curves(a, diverged)
    assert comparison.epochs == [e for e in range(1, 31) if e != 17] and comparison.final_epoch == 30
    assert comparison.parted_from == 1 and comparison.final_gap == pytest.approx(2.0)
    assert any("diverged: non-finite score in epoch 17, 31, 32, 33, 34 ..." in n for n in comparison.notes)
    assert curves_png([a, diverged], "dev_score")[:4] == b"\x89PNG"
    with pytest.raises(UserError, match="has no finite score"):
        compare_curves(a, Curve("dead", {1: math.nan, 2: math.inf}))
    short = compare_curves(Curve("s", {1: 1.0, 2: 0.5}), Curve("t", {1: 2.0, 2: 1.5}))
    assert short.band_source == "none" and short.parted_from is None


def test_curves_cli_with_replicates(tmp_path):
    def write(name: str, values: dict[int, float]) -> Path:
        path = tmp_path / name
        path.write_text("".join(f"epoch {e:3d} dev_score: {v!r}\n" for e, v in values.items()))
        return path

    start = [write(f"start{s}.train.info.txt", noisy(falling, 0.1, seed=s)) for s in (30, 31, 32)]
    hybrid = write("hybrid.train.info.txt", {e: v + (2.0 if e >= 9 else 0.0)
                                             for e, v in noisy(falling, 0.1, seed=33).items()})
    png = tmp_path / "plot.png"
    result = CliRunner().invoke(cli, ["curves", str(start[0]), str(hybrid), "--replicate", str(start[1]),
                                      "--replicate", str(start[2]), "--png", str(png), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["dev_score"]
    assert data["replicates"] == ["start31.train.info.txt", "start32.train.info.txt"]
    (comparison,) = data["comparisons"]
    assert comparison["b"] == "hybrid.train.info.txt" and comparison["band_source"] == "replicates"
    assert comparison["parted_from"] == 9 and png.read_bytes()[:4] == b"\x89PNG"
    text = CliRunner().invoke(cli, ["curves", str(start[0]), str(hybrid)])
    assert text.exit_code == 0
    assert "hybrid.train.info.txt vs start30.train.info.txt: apart from epoch 9 on" in text.output
    assert text.output.splitlines()[1].split() == ["epoch", "start30.train.info.txt", "hybrid.train.info.txt"]
    one = CliRunner().invoke(cli, ["curves", str(start[0])])
    assert one.exit_code == 2 and "at least two files" in one.output
