"""Read RETURNN's learning-rate file (`{epoch: EpochData(learningRate=..., error={...}), ...}`) safely:
the text is parsed with `ast` and only literals, `EpochData(...)`, `float(...)`/`np.float64(...)`, `nan`
and `inf` are accepted; nothing in the file is executed."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError

_NUMBER_CALLS = {"float", "np.float64", "numpy.float64", "np.float32", "numpy.float32"}


@dataclass
class EpochScores:
    learning_rate: float | None
    scores: dict[str, float]
    meta: dict[str, float] = field(default_factory=dict)


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    raise ValueError(f"unexpected {type(node).__name__}")


def _value(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    if isinstance(node, ast.Name) and node.id in ("nan", "inf"):
        return float(node.id)
    if isinstance(node, ast.Dict):
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Call) and _name(node.func) in _NUMBER_CALLS and len(node.args) == 1:
        return float(_value(node.args[0]))
    if isinstance(node, ast.Call) and _name(node.func) == "EpochData":
        kwargs = {kw.arg: _value(kw.value) for kw in node.keywords}
        return EpochScores(kwargs.get("learningRate"), *_split_meta(kwargs.get("error", {})))
    raise ValueError(f"line {getattr(node, 'lineno', '?')}: {ast.dump(node)[:60]} is not allowed here")


def _split_meta(error) -> tuple[dict, dict]:
    if not isinstance(error, dict):  # very old files: error=<float>
        return {"old_format_score": float(error)}, {}
    scores = {k: float(v) for k, v in error.items() if not k.startswith(":meta:")}
    meta = {k[len(":meta:"):]: v for k, v in error.items() if k.startswith(":meta:")}
    return scores, meta


def read_lr_file(path: str | Path) -> dict[int, EpochScores]:
    try:
        text = Path(path).read_text()
        tree = ast.parse(text.strip() or "{}", mode="eval")
        data = _value(tree.body)
    except OSError as exc:
        raise UserError(f"cannot read learning-rate file: {exc.strerror}", path) from None
    except (SyntaxError, ValueError, TypeError) as exc:
        raise UserError(f"not a RETURNN learning-rate file: {exc}", path) from None
    if not isinstance(data, dict) or not all(isinstance(e, int) and isinstance(v, EpochScores)
                                             for e, v in data.items()):
        raise UserError("not a RETURNN learning-rate file: expected {epoch: EpochData(...)}", path)
    return dict(sorted(data.items()))


def best_epoch(epochs: dict[int, EpochScores], key: str) -> tuple[int, float] | None:
    """(epoch, value) with the lowest finite `key` score, or None when no epoch has it."""
    candidates = [(v.scores[key], e) for e, v in epochs.items() if key in v.scores and math.isfinite(v.scores[key])]
    if not candidates:
        return None
    value, epoch = min(candidates)
    return epoch, value
