"""Word error rate by alignment (jiwer), keeping per-segment error counts for the statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import jiwer

from common.errors import UserError


@dataclass(frozen=True)
class SegmentErrors:
    """The alignment counts of one segment (what the bootstrap statistics resample)."""

    tag: str
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass(frozen=True)
class ScoreResult:
    """Totals over all reference segments, and the counts per segment (sorted by tag)."""

    wer: float  # percent
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    segments: list[SegmentErrors]
    missing_hyps: int = 0  # reference segments without a hypothesis line (counted as all deleted)

    def to_json(self) -> dict:
        return asdict(self)


def read_transcripts(path: str | Path) -> dict[str, list[str]]:
    """`seq_tag word word ...` per line; a tag may have no words."""
    result: dict[str, list[str]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read transcripts: {exc.strerror}", path) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        tag, *words = line.split()
        if tag in result:
            raise UserError(f"line {number}: segment {tag} appears twice", path)
        result[tag] = words
    return result


def align_segment(tag: str, ref: list[str], hyp: list[str]) -> SegmentErrors:
    """Levenshtein alignment (jiwer, i.e. RapidFuzz's edit operations; every error costs 1)."""
    if not ref or not hyp:  # jiwer needs words on both sides
        return SegmentErrors(tag, 0, len(ref), len(hyp), len(ref))
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return SegmentErrors(tag, out.substitutions, out.deletions, out.insertions, len(ref))


def score(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> ScoreResult:
    """WER over the reference segments; a segment without hypothesis counts as all deleted."""
    segments = [align_segment(tag, ref, hyps.get(tag, [])) for tag, ref in sorted(refs.items())]
    totals = {k: sum(getattr(s, k) for s in segments) for k in ("substitutions", "deletions", "insertions",
                                                                   "ref_words")}
    errors = totals["substitutions"] + totals["deletions"] + totals["insertions"]
    wer = 100.0 * errors / totals["ref_words"] if totals["ref_words"] else 0.0
    return ScoreResult(wer=wer, segments=segments, missing_hyps=len(set(refs) - set(hyps)), **totals)


def score_files(hyp_file: str | Path, ref_file: str | Path) -> ScoreResult:
    """Score a hypothesis file against a reference file (both `tag word ...` per line)."""
    refs, hyps = read_transcripts(ref_file), read_transcripts(hyp_file)
    unknown = sorted(set(hyps) - set(refs))
    if unknown:
        raise UserError(f"hypotheses for segments without reference, e.g. {unknown[0]}", hyp_file)
    return score(refs, hyps)
