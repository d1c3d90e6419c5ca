"""Read RETURNN's learning-rate file (`learning_rate_file`, e.g. `newbob.data`) without executing it.

RETURNN writes `{epoch: EpochData(learningRate=<float>, error={<key>: <float>, ...}), ...}` after every epoch
(LearningRateControl.save, `better_repr`) and reads it back with `eval`. Here the text is parsed with `ast` and
only these nodes are accepted: dict literals, number and string constants, unary minus, the names `nan` and
`inf`, and the calls `EpochData(...)`, `float(...)`, `np.float64(...)` (also `numpy.`/`float32`). Anything else
(a name, an attribute, `__import__(...)`, a list, ...) is an error naming its line. Nothing is evaluated.

Formats: `float('nan')`/`float('inf')` (current), bare `nan`/`inf` (older), `np.float64(x)` (numpy 2),
`error=<float>` (very old; RETURNN reads it as `{"old_format_score": x}`), and `:meta:<name>` keys inside
`error` (since 2023-11: effective learning rate, train steps, epoch time; the PyTorch engine also stores
strings such as the host name), which are split off into `EpochScores.meta`. RETURNN also stores an entry
for the next epoch's learning rate before that epoch is trained: its `scores` are empty.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError

_NUMBER_CALLS = {"float", "np.float64", "numpy.float64", "np.float32", "numpy.float32"}
_META = ":meta:"


@dataclass
class EpochScores:
    """One epoch of a learning-rate file: the stored learning rate, the scores, the `:meta:` values."""

    learning_rate: float | None
    scores: dict[str, float]
    meta: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def effective_learning_rate(self) -> float | None:
        """The learning rate the training used: the meta value where stored (it wins over `learningRate`,
        e.g. in pretrain epochs without LR control), else the stored one."""
        value = self.meta.get("effective_learning_rate", self.learning_rate)
        return float(value) if isinstance(value, int | float) else self.learning_rate


class _Malformed(ValueError):
    """A node the format does not allow; carries its line."""

    def __init__(self, node: ast.AST, what: str):
        super().__init__(f"line {getattr(node, 'lineno', '?')}: {what}")


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _describe(node: ast.AST) -> str:
    text = ast.unparse(node)
    return repr(text if len(text) <= 50 else text[:47] + "...")


def _number(node: ast.AST) -> float:
    """A number: constant, -number, nan, inf, float(...)/np.float64(...) of a number or of 'nan'/'inf'."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):  # not bool
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _number(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name) and node.id in ("nan", "inf"):
        return float(node.id)
    if isinstance(node, ast.Call) and _call_name(node.func) in _NUMBER_CALLS:
        if len(node.args) != 1 or node.keywords:
            raise _Malformed(node, f"{_describe(node)} must have exactly one argument")
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            try:
                return float(arg.value)
            except ValueError:
                raise _Malformed(node, f"{_describe(node)} is not a number") from None
        return _number(arg)
    raise _Malformed(node, f"{_describe(node)} is not allowed here (expected a number)")


def _scores(node: ast.AST) -> tuple[dict[str, float], dict[str, float | int | str]]:
    """`error=`: a dict of key -> number (`:meta:` values may also be strings), or an old bare number."""
    if not isinstance(node, ast.Dict):
        return {"old_format_score": _number(node)}, {}
    scores: dict[str, float] = {}
    meta: dict[str, float | int | str] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise _Malformed(value if key is None else key, f"score key {_describe(key or value)} is not a string")
        if key.value.startswith(_META):
            is_plain = isinstance(value, ast.Constant) and type(value.value) in (str, int)  # kept as written
            meta[key.value[len(_META):]] = value.value if is_plain else _number(value)
        else:
            scores[key.value] = _number(value)
    return scores, meta


def _epoch_data(node: ast.AST) -> EpochScores:
    if not (isinstance(node, ast.Call) and _call_name(node.func) == "EpochData"):
        raise _Malformed(node, f"{_describe(node)} is not allowed here (expected EpochData(...))")
    if len(node.args) > 2:
        raise _Malformed(node, "EpochData(...) takes at most two arguments (learningRate, error)")
    args = dict(zip(("learningRate", "error"), node.args, strict=False))
    for keyword in node.keywords:
        if keyword.arg not in ("learningRate", "error") or keyword.arg in args:
            raise _Malformed(keyword.value, f"EpochData(...) has an unexpected argument {keyword.arg!r}")
        args[keyword.arg] = keyword.value
    learning_rate, error = (None if _is_none(args.get(k)) else args[k] for k in ("learningRate", "error"))
    scores, meta = ({}, {}) if error is None else _scores(error)
    return EpochScores(None if learning_rate is None else _number(learning_rate), scores, meta)


def _is_none(node: ast.AST | None) -> bool:
    return node is None or (isinstance(node, ast.Constant) and node.value is None)


def parse_lr_text(text: str) -> dict[int, EpochScores]:
    """Epoch -> EpochScores from the text of a learning-rate file; `ValueError` (naming the line) if malformed."""
    if not text.strip():
        raise ValueError("the file is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"line {exc.lineno}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("nested too deeply to be a learning-rate file") from None
    if not isinstance(tree.body, ast.Dict):
        raise _Malformed(tree.body, "expected a dict {epoch: EpochData(...), ...}")
    epochs: dict[int, EpochScores] = {}
    for key, value in zip(tree.body.keys, tree.body.values, strict=True):
        if not (isinstance(key, ast.Constant) and type(key.value) is int and key.value >= 0):
            raise _Malformed(value if key is None else key, f"epoch {_describe(key or value)} is not an integer")
        if key.value in epochs:
            raise _Malformed(key, f"epoch {key.value} appears twice")
        epochs[key.value] = _epoch_data(value)
    return dict(sorted(epochs.items()))


def read_lr_file(path: str | Path) -> dict[int, EpochScores]:
    """Epoch -> EpochScores of a RETURNN learning-rate file; `UserError(cause, path)` if unreadable or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read learning-rate file: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise UserError("not a RETURNN learning-rate file: not UTF-8 text", path) from None
    try:
        return parse_lr_text(text)
    except ValueError as exc:
        raise UserError(f"not a RETURNN learning-rate file: {exc}", path) from None


def best_epoch(epochs: dict[int, EpochScores], key: str) -> tuple[int, float] | None:
    """(epoch, value) with the lowest finite `key` score (the earlier epoch on ties); None if no epoch has one."""
    candidates = [(v.scores[key], e) for e, v in epochs.items() if key in v.scores and math.isfinite(v.scores[key])]
    if not candidates:
        return None
    value, epoch = min(candidates)
    return epoch, value

