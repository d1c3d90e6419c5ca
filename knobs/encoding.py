"""Turn the values of a loaded RETURNN config into JSON-able trees that can be diffed.

Runs inside the loader subprocess. Literals stay literals (tuples become lists, numpy scalars become
Python numbers, floats are rounded to 12 significant digits so that `numpy.linspace` and hand-written
lists compare equal). Everything else becomes a tagged dict:

- `{"__function__": name, "source_hash": ..., "fingerprint": ..., "refs": [...], "calls": [...],
  "train_only": bool}` for functions and classes (`train_only`: the code branches on the train flag):
  `source_hash` is over the normalized source (docstrings, comments, whitespace ignored),
  `fingerprint` adds the encodings of the config globals it reads, transitively (late binding: a
  function that reads `learning_rate` changes when `learning_rate` does).
- `{"__object__": type name, "repr": ...}` for other objects (memory addresses removed).
- `{"__unresolved__": source, "error": ...}` for names whose defining statement failed.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import inspect
import json
import math
import re
import textwrap
import types
from typing import Any

FLOAT_DIGITS = 12
# RETURNN code that acts only in training: `network.train_flag`, `cond_on_train`, `tf.cond(is_training, ...)`
TRAIN_ONLY = re.compile(r"\btrain_flag\b|\bcond_on_train\b|\bis_training\b|\bget_global_train_flag")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# Names RETURNN puts into the config namespace itself; never user settings.
NAMESPACE_NAMES = frozenset({"config", "__builtins__", "__file__", "__name__", "__package__", "__doc__"})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def round_float(x: float) -> float | dict:
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return float(f"{x:.{FLOAT_DIGITS}g}")


def is_encodable_global(name: str, value: Any) -> bool:
    """Whether a top-level name is a config setting (not a module or RETURNN's own namespace entry)."""
    return name not in NAMESPACE_NAMES and not isinstance(value, types.ModuleType)


def global_refs(fn: Any) -> list[str]:
    """Global names a function or class reads (LOAD_GLOBAL/LOAD_NAME), including nested code objects."""
    code_objects = []
    if isinstance(fn, types.FunctionType):
        code_objects.append(fn.__code__)
    elif isinstance(fn, type):
        code_objects.extend(
            v.__code__ for v in vars(fn).values() if isinstance(v, types.FunctionType)
        )
    names: set[str] = set()
    while code_objects:
        code = code_objects.pop()
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                names.add(ins.argval)
        code_objects.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return sorted(names)


def called_names(tree: ast.AST) -> list[str]:
    """Names called directly (`f(...)`) anywhere in a syntax tree."""
    return sorted({n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)})


def function_calls(fn: Any) -> list[str]:
    try:
        return called_names(ast.parse(textwrap.dedent(inspect.getsource(fn))))
    except (OSError, TypeError, SyntaxError):
        return []


def acts_only_in_training(fn: Any) -> bool:
    """The function's code branches on RETURNN's train flag (SpecAugment-style masking, warping)."""
    try:
        return bool(TRAIN_ONLY.search(inspect.getsource(fn)))
    except (OSError, TypeError):
        return False


def normalized_source_hash(fn: Any) -> str:
    """Hash of the AST of `fn` without docstrings; comments and whitespace never reach the AST."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        code = getattr(fn, "__code__", None)
        if code is None:
            return _sha(repr(fn))
        return _sha(repr((code.co_code, code.co_consts, code.co_names)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return _sha(ast.dump(tree, include_attributes=False))


class Encoder:
    """Encodes values of one config namespace; caches function fingerprints."""

    def __init__(self, namespace: dict[str, Any], unresolved: dict[str, dict] | None = None):
        self.namespace = namespace
        self.unresolved = unresolved or {}
        self._fingerprints: dict[int, str] = {}

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > 60:
            return {"__object__": "deep", "repr": "<nested too deep>"}
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return round_float(value)
        try:
            import numpy

            if isinstance(value, numpy.generic):
                return self.encode(value.item(), depth + 1)
            if isinstance(value, numpy.ndarray):
                return [self.encode(v, depth + 1) for v in value.tolist()]
        except ImportError:  # pragma: no cover - numpy comes with RETURNN
            pass
        if isinstance(value, list | tuple):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {self.encode_key(k): self.encode(v, depth + 1) for k, v in value.items()}
        if isinstance(value, set | frozenset):
            return sorted((self.encode(v, depth + 1) for v in value), key=json.dumps)
        if isinstance(value, types.FunctionType | type):
            return self.encode_function(value)
        return {"__object__": type(value).__name__, "repr": _ADDRESS.sub("", repr(value))[:300]}

    @staticmethod
    def encode_key(key: Any) -> str:
        return key if isinstance(key, str) else repr(key)

    def encode_function(self, fn: Any) -> dict:
        module = getattr(fn, "__module__", None)
        if module != "__returnn_config__":  # imported, not defined by the config: compare by name
            return {"__imported__": f"{module}.{getattr(fn, '__qualname__', '?')}"}
        namespace = self._globals_of(fn)
        refs = [n for n in global_refs(fn) if n in namespace or n in self.unresolved]
        return {
            "__function__": getattr(fn, "__qualname__", getattr(fn, "__name__", "?")),
            "source_hash": normalized_source_hash(fn),
            "fingerprint": self.fingerprint(fn, ()),
            "refs": refs,
            "calls": [n for n in function_calls(fn) if n in refs],
            "train_only": acts_only_in_training(fn),
        }

    def _globals_of(self, fn: Any) -> dict[str, Any]:
        """Where a function looks up its globals: the config namespace, or its own (a hybrid's donor module)."""
        return fn.__globals__ if isinstance(fn, types.FunctionType) else self.namespace

    def fingerprint(self, fn: Any, stack: tuple[int, ...]) -> str:
        """Normalized source plus the encodings of the config globals it reads, transitively."""
        key = id(fn)
        if key in self._fingerprints:
            return self._fingerprints[key]
        if key in stack:
            return "<cycle>"
        parts = [normalized_source_hash(fn)]
        namespace = self._globals_of(fn)
        for name in global_refs(fn):
            if name not in namespace and name in self.unresolved:
                parts.append(f"{name}=unresolved:{self.unresolved[name]['source']}")
                continue
            if name not in namespace or not is_encodable_global(name, namespace[name]):
                continue
            value = namespace[name]
            if isinstance(value, types.FunctionType | type) and value.__module__ == "__returnn_config__":
                parts.append(f"{name}={self.fingerprint(value, (*stack, key))}")
            else:
                parts.append(f"{name}={json.dumps(self.encode(value), sort_keys=True, default=str)}")
        result = _sha("\n".join(parts))
        self._fingerprints[key] = result
        return result


def python_literal(value: Any) -> str | None:
    """`repr(value)` when it evaluates back to an equal value, else None (used to write hybrids)."""
    try:
        text = repr(value)
        return text if ast.literal_eval(text) == value else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
