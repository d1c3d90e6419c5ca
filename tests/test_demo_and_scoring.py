"""Demo generator determinism and WER on hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import UserError
from demo.task import DemoSpec, ensure_demo_data, utterances
from scoring.wer import score, score_files

SMALL = DemoSpec(num_seqs=(30, 8, 8))


def test_generator_is_deterministic_and_seed_dependent():
    a, b = utterances(SMALL, "train"), utterances(SMALL, "train")
    assert [t for t, _, _ in a] == [t for t, _, _ in b]
    assert all(np.array_equal(x, y) and lx == ly for (_, x, lx), (_, y, ly) in zip(a, b, strict=True))
    other = utterances(DemoSpec(seed=7, num_seqs=SMALL.num_seqs), "train")
    assert not all(np.array_equal(x, y) for (_, x, _), (_, y, _) in zip(a, other, strict=True))
    assert utterances(SMALL, "dev")[0][1].shape[1] == SMALL.feature_dim
    assert {len(labels) for _, _, labels in a} <= {2, 3, 4, 5}


def test_demo_data_written_once_with_references(tmp_path):
    folder = ensure_demo_data(tmp_path, SMALL)
    assert ensure_demo_data(tmp_path, SMALL) == folder
    assert {p.name for p in folder.iterdir()} >= {"train.hdf", "dev.hdf", "test.hdf", "dev.ref.txt", "test.ref.txt"}
    refs = (folder / "test.ref.txt").read_text().splitlines()
    tag, *words = refs[0].split()
    assert len(refs) == 8 and tag == "test/seq00000" and all(w.startswith("w") for w in words)
    assert not list(tmp_path.glob(".demo-*"))  # no temporary folder left behind


def test_wer_hand_checked():
    refs = {"a": "a b c d".split(), "b": "hello world".split(), "c": "x y".split(), "d": "big red dog".split()}
    hyps = {"a": "a c d e".split(),  # b deleted, e inserted (3 substitutions would cost more)
            "b": [],  # 2 deletions
            "c": "x y z".split(),  # 1 insertion
            "d": "big blue dog".split()}  # 1 substitution
    result = score(refs, hyps)
    per = {s.tag: (s.substitutions, s.deletions, s.insertions, s.ref_words) for s in result.segments}
    assert per == {"a": (0, 1, 1, 4), "b": (0, 2, 0, 2), "c": (0, 0, 1, 2), "d": (1, 0, 0, 3)}
    assert (result.substitutions, result.deletions, result.insertions, result.ref_words) == (1, 3, 2, 11)
    assert result.wer == pytest.approx(100 * 6 / 11)


def test_score_files_rejects_unknown_segments(tmp_path):
    (tmp_path / "ref").write_text("s1 a b\n")
    (tmp_path / "hyp").write_text("s1 a b\ns2 c\n")
    with pytest.raises(UserError, match="without reference"):
        score_files(tmp_path / "hyp", tmp_path / "ref")
