"""Read `*.train.info.txt` score summaries: `epoch   N key: value` lines, one score per line.

The format of the score summaries published with RWTH i6 experiments (e.g. returnn-experiments
`2020-rnn-transducer/configs/scores/`): per epoch lines such as `epoch   1 dev_score: 87.35`,
`epoch   1 learning_rate: 0.0008`, and summary lines that do not start with `epoch` (`num params: ...`,
`average epoch time '...': 1:01:20`), which are skipped. A line that starts with `epoch` must have the form.
"""

from __future__ import annotations

import re
from pathlib import Path

from common.errors import UserError

_LINE = re.compile(r"^epoch\s+(\d+)\s+(\S+):\s+(\S+)$")


def looks_like_train_info(text: str) -> bool:
    """True if the first non-empty line is an `epoch N key: value` line."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return bool(_LINE.match(first))


def parse_train_info(text: str) -> dict[int, dict[str, float]]:
    """Epoch -> {key: value}; `ValueError` naming the line for a malformed `epoch` line or a repeated score."""
    epochs: dict[int, dict[str, float]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("epoch"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"line {number} is not 'epoch N key: value': {line[:60]!r}")
        epoch, key = int(match[1]), match[2]
        try:
            value = float(match[3])
        except ValueError:
            raise ValueError(f"line {number}: {match[3]!r} is not a number") from None
        scores = epochs.setdefault(epoch, {})
        if key in scores:
            raise ValueError(f"line {number}: epoch {epoch} has a second {key!r}")
        scores[key] = value
    if not epochs:
        raise ValueError("no 'epoch N key: value' lines")
    return dict(sorted(epochs.items()))


def read_train_info(path: str | Path) -> dict[int, dict[str, float]]:
    """Epoch -> {key: value} of a `*.train.info.txt` file; `UserError(cause, path)` if unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise UserError("not a score file: not UTF-8 text", path) from None
    try:
        return parse_train_info(text)
    except ValueError as exc:
        raise UserError(f"not a score file: {exc}", path) from None
