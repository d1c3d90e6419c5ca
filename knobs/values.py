"""Encoded config values (see `knobs.encoding`): what equality means, short renderings, paths and tree diffs."""

from __future__ import annotations

import json
from typing import Any

from deepdiff import DeepDiff

ABSENT = {"__absent__": True}
_TAGS = ("__function__", "__object__", "__unresolved__", "__imported__", "__absent__", "__float__")


def is_tagged(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in _TAGS)


def is_function(value: Any) -> bool:
    """An encoded config-defined function or class."""
    return isinstance(value, dict) and "__function__" in value


def comparable(value: Any) -> Any:
    """What equality means for an encoded value: functions by fingerprint, unresolved by source."""
    if isinstance(value, dict):
        if "__function__" in value:
            return {"__function__": value["fingerprint"]}
        if "__unresolved__" in value:
            return {"__unresolved__": value["__unresolved__"]}
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, bool):  # keep DeepDiff's numeric comparison away from bools (False vs 1e-16)
        return f"<bool {value}>"
    if isinstance(value, int):  # 1 == 1.0 as in Python; floats are already rounded to 12 digits (encoding)
        return float(value)
    return value


def show(value: Any, limit: int = 60) -> str:
    """Short human rendering of an encoded value."""
    if isinstance(value, dict):
        if "__absent__" in value:
            return "(not set)"
        if "__function__" in value:
            return f"<function {value['__function__']}>"
        if "__unresolved__" in value:
            return "<unresolved>"
        if "__imported__" in value:
            return f"<{value['__imported__']}>"
        if "__object__" in value:
            return value["repr"][:limit]
        if "__float__" in value:
            return value["__float__"]
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_per_epoch(values: list, epochs: list[int], limit: int = 30) -> str:
    """Per-epoch values as runs: `512 (1-5), 640 (6-10), ...`."""
    pieces: list[tuple[Any, list[int]]] = []
    for value, epoch in zip(values, epochs, strict=True):
        if pieces and comparable(pieces[-1][0]) == comparable(value):
            pieces[-1][1].append(epoch)
        else:
            pieces.append((value, [epoch]))
    shown = [f"{show(value, limit)} ({epoch_ranges(runs)})" for value, runs in pieces[:3]]
    return ", ".join(shown) + (f", ... ({len(pieces) - 3} more)" if len(pieces) > 3 else "")


def format_path(parts: list) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def epoch_ranges(epochs: list[int]) -> str:
    """`[1, 2, 3, 7]` -> `"1-3,7"`."""
    ranges: list[str] = []
    start = prev = None
    for e in sorted(epochs):
        if prev is not None and e == prev + 1:
            prev = e
            continue
        if start is not None:
            ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = e
    if start is not None:
        ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(ranges)


def value_at(tree: Any, parts: list) -> Any:
    for p in parts:
        if isinstance(tree, dict) and p in tree:
            tree = tree[p]
        elif isinstance(tree, list) and isinstance(p, int) and p < len(tree):
            tree = tree[p]
        else:
            return ABSENT
    return tree


def tree_changes(orig: Any, start: Any) -> list[tuple[list, Any, Any]]:
    """(path, orig value, start value) of every difference; lists and tagged values are atoms."""
    # exact comparison: DeepDiff's numeric tolerance (ignore_numeric_type_changes) reads 1e-16 and 5e-15 as 0
    dd = DeepDiff(comparable(orig), comparable(start), ignore_private_variables=False, threshold_to_diff_deeper=0,
                  view="tree")
    seen: dict[str, tuple[list, Any, Any]] = {}
    for items in dd.values():
        for item in items:
            parts = item.path(output_format="list")
            cut: list = []
            for p in parts:
                node_o, node_s = value_at(orig, cut), value_at(start, cut)
                if isinstance(p, int) or is_tagged(node_o) or is_tagged(node_s) \
                        or isinstance(node_o, list) or isinstance(node_s, list):
                    break
                cut.append(p)
            key = json.dumps(cut)
            if key not in seen:
                seen[key] = (cut, value_at(orig, cut), value_at(start, cut))
    return list(seen.values())
