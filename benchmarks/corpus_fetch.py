"""Fetch the real config pairs of the diff corpus (benchmarks/corpus/pairs.json) into a cache folder.

The configs stay out of the project: RETURNN's licence allows distributing its files unmodified only with the
entire package, and rwth-i6/returnn-experiments has no licence file. Each file is read at its pinned commit from
a bare clone: a local mirror (`--mirror-root`, a folder of `<owner>+<name>/repo` git dirs, as the search tool's
`fetch` leaves them) or, when absent, `git clone --bare https://github.com/<owner>/<name>` into the cache.

Run (from the project root): .venv/bin/python -m benchmarks.corpus_fetch [--cache DIR] [--mirror-root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from common.atomic import write_atomic

PAIRS_FILE = Path(__file__).resolve().parent / "corpus" / "pairs.json"
DEFAULT_CACHE = Path(os.environ.get("CONFIG_BISECT_CACHE", Path.home() / ".cache" / "config-bisect")) / "corpus"
DEFAULT_MIRRORS = Path("/work/.mirror")


def load_pairs(path: Path = PAIRS_FILE) -> list[dict]:
    """The pairs, each with the corpus's `shared` expectations (tried after its own)."""
    data = json.loads(path.read_text())
    return [{**pair, "shared": data["shared"]} for pair in data["pairs"]]


def git_dir(repo: str, cache: Path, mirror_root: Path) -> Path:
    """A bare clone of `repo` (owner/name): the mirror's, else one cloned into the cache."""
    mirrored = mirror_root / repo.replace("/", "+") / "repo"
    if mirrored.is_dir():
        return mirrored
    cloned = cache / "git" / repo.replace("/", "+")
    if not cloned.is_dir():
        subprocess.run(["git", "clone", "--quiet", "--bare", f"https://github.com/{repo}", str(cloned)], check=True)
    return cloned


def local_path(cache: Path, repo: str, commit: str, path: str) -> Path:
    return cache / "files" / repo.replace("/", "+") / commit[:12] / path


def fetch_file(repo: str, commit: str, path: str, cache: Path, mirror_root: Path) -> Path:
    """The file `path` of `repo` at `commit`, written once into the cache."""
    target = local_path(cache, repo, commit, path)
    if not target.exists():
        text = subprocess.run(["git", "--git-dir", str(git_dir(repo, cache, mirror_root)), "show", f"{commit}:{path}"],
                              check=True, capture_output=True, text=True).stdout
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text)
    return target


def side_source(pair: dict, side: str) -> tuple[str, str]:
    """(commit, path) of one side: `"orig": "path"` at the pair's commit, or `{"path", "commit"}` for two
    versions of one file."""
    entry = pair[side]
    return (entry["commit"], entry["path"]) if isinstance(entry, dict) else (pair["commit"], entry)


def fetch_pair(pair: dict, cache: Path, mirror_root: Path) -> tuple[Path, Path]:
    orig, start = (fetch_file(pair["repo"], *side_source(pair, side), cache, mirror_root) for side in ("orig", "start"))
    return orig, start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--mirror-root", type=Path, default=DEFAULT_MIRRORS)
    args = parser.parse_args()
    for pair in load_pairs():
        orig, start = fetch_pair(pair, args.cache, args.mirror_root)
        print(f"{pair['id']}: {orig} {start}")


if __name__ == "__main__":
    main()
