"""The one exception type that means "the user gave us bad input"."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input: the CLI prints it as one line and exits with status 2.

    `path` names the file (or option) at fault, `cause` says what is wrong with it.
    """

    def __init__(self, cause: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        self.cause = cause
        super().__init__(f"{self.path}: {cause}" if self.path else cause)
