"""Resolve the ORIG/START arguments: files, folders of same-named files, or the bare names orig/start."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from common.errors import UserError

PROJECT_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
CONFIG_SUFFIXES = (".config", ".py", ".json")


def resolve_side(arg: str) -> Path:
    """A path as given, or `configs/<arg>/` for the bare names `orig`/`start` when no such path exists."""
    path = Path(arg)
    if path.exists():
        return path
    for base in (Path.cwd() / "configs", PROJECT_CONFIGS):
        if arg in ("orig", "start") and (base / arg).is_dir():
            return base / arg
    raise UserError("no such file or folder", arg)


def _config_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in CONFIG_SUFFIXES and not p.name.startswith(".")}


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def unpaired_notes(orig: Path, start: Path, only_orig: list[str], only_start: list[str]) -> list[str]:
    """One line per side that holds config files without a same-named partner (they are not compared)."""
    return [f"note: only in {folder}, not compared (no same-named file in {other}): {', '.join(names)}"
            for folder, other, names in ((orig, start, only_orig), (start, orig, only_start)) if names]


def pair_paths(orig_arg: str, start_arg: str, note: Callable[[str], None] = _to_stderr) -> list[tuple[Path, Path]]:
    """(orig file, start file) pairs; folders pair their same-named config files, and `note` is told about the
    files of either folder that have no partner (default: a line on stderr)."""
    orig, start = resolve_side(orig_arg), resolve_side(start_arg)
    if orig.is_file() and start.is_file():
        return [(orig, start)]
    if orig.is_dir() and start.is_dir():
        files_o, files_s = _config_files(orig), _config_files(start)
        common = sorted(set(files_o) & set(files_s))
        if not common:
            raise UserError(f"no same-named config files in {orig} and {start}", start)
        for line in unpaired_notes(orig, start, sorted(set(files_o) - set(files_s)),
                                   sorted(set(files_s) - set(files_o))):
            note(line)
        return [(files_o[name], files_s[name]) for name in common]
    raise UserError("ORIG and START must both be files or both be folders", f"{orig} / {start}")
