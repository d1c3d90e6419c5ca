"""WER by alignment: hand-checked counts, and the same totals as an independent edit-distance table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from scoring.wer import align_segment, score, score_files


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
    assert result.missing_hyps == 0


def test_files_missing_and_unknown_segments(tmp_path):
    (tmp_path / "ref").write_text("s1 a b\ns2 c d e\ns3\n")
    (tmp_path / "hyp").write_text("s1 a x\ns3 f\n")  # s2 has no hypothesis: all deleted
    result = score_files(tmp_path / "hyp", tmp_path / "ref")
    assert [(s.tag, s.substitutions, s.deletions, s.insertions) for s in result.segments] == [
        ("s1", 1, 0, 0), ("s2", 0, 3, 0), ("s3", 0, 0, 1)]
    assert result.missing_hyps == 1 and result.wer == pytest.approx(100 * 5 / 5)
    (tmp_path / "hyp").write_text("s1 a b\ns9 c\n")
    with pytest.raises(UserError, match="without reference"):
        score_files(tmp_path / "hyp", tmp_path / "ref")
    (tmp_path / "ref").write_text("s1 a\ns1 b\n")
    with pytest.raises(UserError, match="line 2: segment s1 appears twice"):
        score_files(tmp_path / "hyp", tmp_path / "ref")


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Plain Levenshtein table, independent of jiwer."""
    table = np.zeros((len(ref) + 1, len(hyp) + 1), dtype=int)
    table[:, 0], table[0, :] = np.arange(len(ref) + 1), np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, start=1):
        for j, h in enumerate(hyp, start=1):
            table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + (r != h))
    return int(table[-1, -1])


words = st.lists(st.sampled_from("abcde"), max_size=8)


@settings(max_examples=200, deadline=None)
@given(ref=words, hyp=words)
def test_counts_match_edit_distance(ref, hyp):
    seg = align_segment("t", ref, hyp)
    assert seg.errors == edit_distance(ref, hyp)
    assert seg.ref_words == len(ref)
    # an alignment uses every reference word once (hit, substituted or deleted) and every hypothesis word once
    assert seg.substitutions + seg.deletions <= len(ref) and seg.substitutions + seg.insertions <= len(hyp)
    assert len(ref) - seg.deletions == len(hyp) - seg.insertions
