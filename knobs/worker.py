"""Loader subprocess: executes one RETURNN config the way RETURNN does and writes a JSON snapshot.

Run as `python -m knobs.worker REQUEST.json RESULT.json` in a throw-away working directory (see
`knobs.loader`). Python configs are executed one top-level statement at a time in the `typed_dict`
of a `returnn.config.Config` (with `config`, `__file__`, `__name__` set and the config registered as
global config), so that a failing statement leaves the names it assigns *unresolved* and loading
goes on. Then the per-epoch view (network, `#config` overrides, scheduled learning rate) is computed
with RETURNN's own pretrain module; no TF graph is built.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

from knobs.encoding import Encoder, called_names, is_encodable_global, python_literal
from knobs.exceptions import describe
from knobs.schedule import lr_per_epoch
from knobs.text_format import ConfigFormatError, config_format, load_non_python, warning


def assigned_names(stmt: ast.stmt) -> list[str]:
    """Top-level names a statement binds (for marking them unresolved when it fails)."""
    names: list[str] = []
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not stmt:
            names.append(node.name)
    return list(dict.fromkeys(names))


_MUTATING_METHODS = frozenset({"update", "append", "extend", "insert", "setdefault", "pop", "remove", "clear"})


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def mutated_names(stmt: ast.stmt) -> list[str]:
    """Top-level names a statement changes in place: `train["x"] = ...`, `net.update(...)`, `a.b += 1`."""
    targets: list[ast.AST] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, ast.AugAssign | ast.AnnAssign):
        targets = [stmt.target]
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) \
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr in _MUTATING_METHODS:
        targets = [stmt.value.func.value]
    names = [_base_name(t) for t in targets if isinstance(t, ast.Subscript | ast.Attribute)
             or isinstance(stmt, ast.Expr)]
    return [n for n in dict.fromkeys(names) if n]


def referenced_names(stmt: ast.stmt) -> list[str]:
    return sorted({n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)})


def exec_statements(config: Any, path: Path, text: str) -> tuple[dict, dict]:
    """Execute a Python config statement by statement in `config.typed_dict`.

    Returns (unresolved by name, statement info by name).
    """
    ns = config.typed_dict
    ns["config"] = config
    ns["__file__"] = str(path)
    ns["__name__"] = "__returnn_config__"
    ns["__package__"] = "returnn"  # as util/basic.py:custom_exec
    tree = ast.parse(text, filename=str(path))
    unresolved: dict[str, dict] = {}
    statements: dict[str, dict] = {}
    for stmt in tree.body:
        source = ast.get_source_segment(text, stmt) or ""
        names = assigned_names(stmt)
        before = {n: ns.get(n, _MISSING) for n in names}
        code = compile(ast.Module(body=[stmt], type_ignores=[]), str(path), "exec")
        try:
            exec(code, ns, ns)  # noqa: S102 - executing the config is the point
        except (Exception, SystemExit) as exc:
            error = describe(exc)
            for n in names:
                if ns.get(n, _MISSING) is before[n]:
                    unresolved[n] = {"name": n, "source": source, "error": error, "line": stmt.lineno}
                    ns.pop(n, None)
            if not names:
                unresolved[f"<line {stmt.lineno}>"] = {"name": None, "source": source, "error": error,
                                                       "line": stmt.lineno}
            continue
        for n in names:
            unresolved.pop(n, None)
            statements[n] = {"source": source, "line": stmt.lineno, "refs": referenced_names(stmt),
                             "calls": called_names(stmt)}
        for n in mutated_names(stmt):
            if n in statements and n not in names:  # the value now also depends on what this statement read
                entry = statements[n]  # (its "source" stays the defining statement: what hybrids carry)
                entry["refs"] = sorted(set(entry["refs"]) | set(referenced_names(stmt)) - {n})
                entry["calls"] = sorted(set(entry["calls"]) | set(called_names(stmt)))
    return unresolved, statements


_MISSING = object()


_SET_BY_IMPORTS = frozenset({"TF2_BEHAVIOR", "TPU_ML_PLATFORM"})  # importing TensorFlow sets these


def load_config(path: Path, context_files: list[str], settings: dict[str, Any]
                ) -> tuple[Any, dict, dict, list[dict], dict[str, str]]:
    """Load like RETURNN: context files first, `--set` values, then the config itself. Returns the config, the
    unresolved names, the statements, warnings and the environment variables the config set."""
    import returnn  # noqa: F401 - registers the old module names (TFUtil, ...) via __old_mod_loader__
    from returnn.config import Config, global_config_ctx, set_global_config

    config = Config()
    warnings: list[dict] = []
    environ_before = dict(os.environ)
    with global_config_ctx(config):
        for ctx_file in context_files:
            config.load_file(ctx_file)
        for key, value in settings.items():
            config.typed_dict[key] = value
        config.typed_dict.setdefault("task", "train")
        text = path.read_text()
        fmt = config_format(path, text)
        unresolved: dict = {}
        statements: dict = {}
        if fmt == "py":
            if (path.parent / "__init__.py").exists():
                warnings.append(warning("package-module", "RETURNN imports a .py file inside a package as a "
                                         "module; executed it statement by statement instead",
                                         "nothing to do: the values are the same unless the module relies on "
                                         "its package"))
            set_global_config(config)
            unresolved, statements = exec_statements(config, path, text)
        else:
            warnings += load_non_python(config, path, text, fmt)
        # settings from --set win, as command-line options do in RETURNN
        for key, value in settings.items():
            config.typed_dict[key] = value
    set_global_config(None)
    environ = {k: v for k, v in os.environ.items() if environ_before.get(k) != v and k not in _SET_BY_IMPORTS}
    return config, unresolved, statements, warnings, environ


def network_usage_names(net: Any, function_names: set[str]) -> set[str]:
    """Config functions a network refers to: as values or by name inside eval strings."""
    found: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list | tuple):
            for v in x:
                walk(v)
        elif isinstance(x, types.FunctionType | type):
            found.add(x.__name__)
        elif isinstance(x, str):
            for token in _IDENT.findall(x):
                if token in function_names:
                    found.add(token)

    walk(net)
    return found


_IDENT = re.compile(r"[A-Za-z_]\w*")
_META_KEYS = ("#config", "#info", "#repetition")


def per_epoch_view(config: Any, encoder: Encoder, num_epochs: int) -> dict:
    """Network, `#config` overrides and scheduled LR for epochs 1..num_epochs."""
    from returnn.pretrain import pretrain_from_config

    td = config.typed_dict
    pretrain = pretrain_from_config(config) if td.get("pretrain") else None
    get_network = td.get("get_network") if callable(td.get("get_network")) else None
    num_pretrain = pretrain.get_train_num_epochs() if pretrain else 0
    raw_nets: list[dict] = []
    for epoch in range(1, num_epochs + 1):
        if pretrain is not None:
            net = (pretrain.get_network_json_for_epoch(epoch) if epoch <= num_pretrain
                   else pretrain.get_final_network_json())
        elif get_network is not None:
            net = get_network(epoch=epoch)
        else:
            net = td.get("network") or {}
        raw_nets.append(net)
    overrides = [dict(net.get("#config") or {}) for net in raw_nets]
    override_keys = sorted({k for o in overrides for k in o if k != "learning_rate"})
    net_index: dict[str, int] = {}
    nets: list[Any] = []
    epochs: list[dict] = []
    previous_full = None
    for epoch, (net, override) in enumerate(zip(raw_nets, overrides, strict=True), start=1):
        clean = {k: v for k, v in net.items() if k not in _META_KEYS}
        encoded = encoder.encode(clean)
        key = json.dumps(encoded, sort_keys=True)
        if key not in net_index:
            net_index[key] = len(nets)
            nets.append(encoded)
        # RETURNN rebuilds the network (copying params, resetting the optimizer state) whenever the
        # epoch's whole net dict, `#` entries included, differs from the previous epoch's
        # (tf/engine.py:Engine.need_init_new_network).
        full = json.dumps(encoder.encode({k: v for k, v in net.items() if k != "#repetition"}), sort_keys=True)
        epochs.append({
            "epoch": epoch,
            "pretrain": bool(pretrain) and epoch <= num_pretrain,
            "net": net_index[key],
            "rebuild": previous_full is not None and full != previous_full,
            "config": {k: encoder.encode(override.get(k, td.get(k))) for k in override_keys},
            "config_literals": {k: python_literal(override[k]) for k in override_keys if k in override},
            "config_learning_rate": encoder.encode(override.get("learning_rate")),
            "info": encoder.encode(net.get("#info")),
        })
        previous_full = full
    lrs = lr_per_epoch(config, num_epochs, num_pretrain if pretrain else None,
                       [o.get("learning_rate") for o in overrides])
    for record, lr in zip(epochs, lrs, strict=True):
        record["learning_rate"] = encoder.encode(lr)
    function_names = {n for n, v in td.items() if isinstance(v, types.FunctionType | type)}
    used_by_network = set()
    for net in raw_nets[:1] + raw_nets[-1:]:
        used_by_network |= network_usage_names(net, function_names)
    return {"num_epochs": num_epochs, "num_pretrain_epochs": num_pretrain, "networks": nets,
            "epochs": epochs, "override_keys": override_keys,
            "functions_used_by_network": sorted(used_by_network)}


def snapshot(request: dict) -> dict:
    path = Path(request["path"])
    text = path.read_text()
    config, unresolved, statements, warnings, environ = load_config(
        path, request.get("context_files", []), request.get("settings", {}))
    td = config.typed_dict
    encoder = Encoder(td, unresolved)
    values: dict[str, Any] = {}
    for name, value in list(td.items()):
        if not is_encodable_global(name, value):
            continue
        values[name] = {
            "value": encoder.encode(value),
            "literal": python_literal(value),
            **({key: statements[name][key] for key in ("source", "refs", "calls")} if name in statements else {}),
        }
    for name, info in unresolved.items():
        if info["name"]:
            values[name] = {"value": {"__unresolved__": info["source"], "error": info["error"]},
                            "literal": None, "source": info["source"], "refs": [], "calls": []}
    num_epochs = request.get("epochs") or config.int("num_epochs", 5)
    result = {
        "path": str(path),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "format": config_format(path, text),
        "values": values,
        "unresolved": list(unresolved.values()),
        "warnings": warnings,
        "environ": environ,
        # statements that bound modules (`import numpy`): a hybrid carrying donor code needs them
        "imports": {n: info["source"] for n, info in statements.items() if isinstance(td.get(n), types.ModuleType)},
    }
    try:
        result["per_epoch"] = per_epoch_view(config, encoder, int(num_epochs))
    except Exception as exc:  # a broken pretrain construction must not hide the static diff
        result["per_epoch"] = None
        result["warnings"].append(warning(
            "per-epoch-view-failed", f"per-epoch view failed: {describe(exc)}",
            "the network, #config values and LR are compared as static values only; a context file (--context) "
            "or --set for what the config reads from its setup may help"))
    return result


def main(argv: list[str]) -> int:
    request_file, result_file = argv
    request = json.loads(Path(request_file).read_text())
    try:
        result = snapshot(request)
    except ConfigFormatError as exc:
        print(f"ConfigFormatError: {exc}", file=sys.stderr)
        return 1
    tmp = Path(result_file + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    tmp.replace(result_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
