"""How often the diff engine puts a changed path in the category a researcher would, on real config pairs.

The corpus (benchmarks/corpus/pairs.json) holds pairs of public configs at pinned commits (RETURNN's demos,
successive versions of one demo, the published ablations of the 2021 SWB Conformer hybrid, the 2020 RNA
transducer siblings) and, per pair, the expected category of every changed path as hand-written glob rules,
each with its reasoning. `benchmarks/corpus_fetch.py` brings the files into a cache (they are not stored in
the project). Prints: pairs, changed paths, % in the expected category (over paths and the mean over pairs),
the per-category confusion matrix, paths no expectation covers, expectations nothing matched, pairs that
fail to load, and the unresolved statements with their reasons.

Run (from the project root):
    .venv/bin/python -m benchmarks.diff_corpus [--cache DIR] [--mirror-root DIR] [--pair ID ...] [-v]
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from benchmarks.corpus_fetch import DEFAULT_CACHE, DEFAULT_MIRRORS, fetch_pair, load_pairs
from common.errors import UserError
from knobs import compare
from knobs.records import PairDiff
from knobs.rules import CATEGORIES

UNCOVERED = "(no expectation)"


@dataclass
class PairScore:
    """The engine's category against the expected one for every changed path of one pair."""

    pair_id: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (path, expected, got)
    unmatched_expectations: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    load_error: str | None = None

    @property
    def right(self) -> int:
        return sum(1 for _, expected, got in self.rows if expected == got)

    @property
    def wrong(self) -> list[tuple[str, str, str]]:
        return [row for row in self.rows if row[1] != row[2]]


def covers(pattern: str, path: str) -> bool:
    """The glob matches the path, or a path it matches is a prefix of this one (`train` covers `train.class`)."""
    return fnmatchcase(path, pattern) or any(fnmatchcase(path[:i], pattern) for i, ch in enumerate(path)
                                             if ch in ".[")


def expected_category(path: str, expectations: list[list[str]]) -> str:
    """The category of the first expectation that covers `path`."""
    return next((category for pattern, category, _ in expectations if covers(pattern, path)), UNCOVERED)


def score_diff(pair: dict, diff: PairDiff) -> PairScore:
    """Every categorised change of `diff` (helper values and equivalences are set aside by the engine and not
    counted) against the pair's expectations (its own, then the shared ones: `load_pairs`)."""
    expectations = pair["expect"] + pair.get("shared", [])
    score = PairScore(pair["id"])
    used: set[str] = set()
    for knob in diff.knobs:
        for change in knob.changes:
            expected = expected_category(change.path, expectations)
            used.update(p for p, c, _ in expectations if c == expected and covers(p, change.path))
            score.rows.append((change.path, expected, change.category))
    score.unmatched_expectations = [p for p, _, _ in pair["expect"] if p not in used]
    score.unresolved = [f"{u['side']}: {u.get('name') or u['source'].splitlines()[0][:60]} (line {u.get('line')}): "
                        f"{u['error']}" for u in diff.unresolved]
    return score


def confusion(scores: list[PairScore]) -> Counter:
    return Counter((expected, got) for s in scores for _, expected, got in s.rows)


def render_confusion(matrix: Counter) -> list[str]:
    """Rows: expected category; columns: the engine's; only categories that occur."""
    used = [c for c in (*CATEGORIES, UNCOVERED) if any(c in key for key in matrix)]
    width = max(len(c) for c in used) + 1
    lines = ["expected \\ got".ljust(width) + "".join(c[:9].rjust(10) for c in used)]
    for expected in used:
        if any(key[0] == expected for key in matrix):
            lines.append(expected.ljust(width) + "".join(str(matrix.get((expected, got), "")).rjust(10)
                                                         for got in used))
    return lines


def report(scores: list[PairScore], verbose: bool) -> list[str]:
    loaded = [s for s in scores if s.load_error is None]
    paths = sum(len(s.rows) for s in loaded)
    right = sum(s.right for s in loaded)
    per_pair = [s.right / len(s.rows) for s in loaded if s.rows]
    lines = [f"pairs: {len(scores)} ({len(scores) - len(loaded)} failed to load)",
             f"changed paths: {paths}",
             f"right category: {right}/{paths} = {100 * right / max(paths, 1):.1f} % of paths; "
             f"mean over pairs {100 * sum(per_pair) / max(len(per_pair), 1):.1f} %", "",
             "per pair (right/paths):"]
    lines += [f"  {s.pair_id}: " + (f"LOAD FAILED: {s.load_error}" if s.load_error else f"{s.right}/{len(s.rows)}")
              for s in scores]
    lines += ["", "confusion (paths):", *("  " + line for line in render_confusion(confusion(loaded))), ""]
    wrong = [(s.pair_id, row) for s in loaded for row in s.wrong]
    lines.append(f"wrong or uncovered paths: {len(wrong)}")
    lines += [f"  {pid}: {path}: expected {expected}, got {got}" for pid, (path, expected, got) in
              (wrong if verbose else wrong[:40])]
    unmatched = [(s.pair_id, p) for s in loaded for p in s.unmatched_expectations]
    lines.append(f"expectations that matched no changed path: {len(unmatched)}")
    lines += [f"  {pid}: {pattern}" for pid, pattern in unmatched]
    unresolved = [(s.pair_id, u) for s in loaded for u in s.unresolved]
    lines.append(f"unresolved statements: {len(unresolved)}")
    lines += [f"  {pid}: {u}" for pid, u in unresolved]
    return lines


def run_pair(pair: dict, cache: Path, mirror_root: Path) -> PairScore:
    orig, start = fetch_pair(pair, cache, mirror_root)
    try:
        diff = compare(str(orig), str(start))
    except UserError as exc:
        return PairScore(pair["id"], load_error=str(exc))
    return score_diff(pair, diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--mirror-root", type=Path, default=DEFAULT_MIRRORS)
    parser.add_argument("--pair", action="append", help="only these pair ids")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every wrong path")
    args = parser.parse_args()
    pairs = [p for p in load_pairs() if not args.pair or p["id"] in args.pair]
    scores = [run_pair(pair, args.cache, args.mirror_root) for pair in pairs]
    print("\n".join(report(scores, args.verbose)))


if __name__ == "__main__":
    main()
