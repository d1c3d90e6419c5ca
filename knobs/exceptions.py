"""One-line descriptions of exceptions raised while loading or building a config: the type and message, and
when the message is empty (a bare `assert`), the failing source line and where it is."""

from __future__ import annotations

import linecache
import traceback
from pathlib import Path

MAX_LENGTH = 300


def _where(exc: BaseException) -> str | None:
    """`assert x == y (returnn/tensor/_dim_extra.py:1931, derive_from)` for the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    frame = frames[-1]
    line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    parts = Path(frame.filename).parts
    short = "/".join(parts[parts.index("returnn"):]) if "returnn" in parts else Path(frame.filename).name
    return f"{line} ({short}:{frame.lineno}, {frame.name})" if line else f"{short}:{frame.lineno}, {frame.name}"


def describe(exc: BaseException, limit: int = MAX_LENGTH) -> str:
    """`Type: message`, first line only; never just `Type:`."""
    message = str(exc).strip()
    first = message.splitlines()[0] if message else (_where(exc) or "(no message)")
    return f"{type(exc).__name__}: {first}"[:limit]
