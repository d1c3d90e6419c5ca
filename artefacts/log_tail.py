"""The line of a log that says why a program failed."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_CHARS = 300


def last_error_line(text: str) -> str:
    """The last line naming an error or exception (colour codes removed), else the last line."""
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:MAX_CHARS]
    return lines[-1][:MAX_CHARS] if lines else "no output"
