"""What the code of a loaded config calls and reads: the functions that build its networks, the config names a
value was computed from, and which functions act only in training."""

from __future__ import annotations

import re

from knobs.encoding import TRAIN_ONLY
from knobs.loader import LoadedConfig
from knobs.values import is_function

# config functions RETURNN calls by their name (not through a value that names them)
HOOKS = frozenset({"get_network", "get_model", "train_step", "forward_step", "dynamic_learning_rate"})


def is_config_function(config: LoadedConfig, name: str) -> bool:
    return is_function(config.value(name))


def dependencies(config: LoadedConfig, name: str, seen: set[str] | None = None) -> set[str]:
    """Config names that the value of `name` was computed from or reads, transitively."""
    seen = set() if seen is None else seen
    entry = config.values.get(name)
    if entry is None or name in seen:
        return set()
    seen.add(name)
    value = entry["value"]
    direct = set(value["refs"]) if is_function(value) else set(entry.get("refs", []))
    direct &= set(config.values)
    result = set(direct)
    for dep in direct:
        result |= dependencies(config, dep, seen)
    return result


def called(config: LoadedConfig, names: set[str]) -> set[str]:
    """The config functions called, transitively, starting from `names`."""
    result: set[str] = set()
    todo = [n for n in names if is_config_function(config, n)]
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        todo += [c for c in config.value(name)["calls"] if is_config_function(config, c)]
    return result


def _pretrain_function(config: LoadedConfig) -> list[str]:
    pretrain = config.value("pretrain")
    if isinstance(pretrain, dict) and isinstance(pretrain.get("construction_algo"), dict):
        return [pretrain["construction_algo"].get("__function__", "")]
    return []


def network_builders(config: LoadedConfig) -> set[str]:
    """Functions called to compute `network` (at top level) or the per-epoch pretrain networks."""
    entry = config.values.get("network", {})
    starts = set(entry.get("calls", []))
    starts.update(_pretrain_function(config))
    if is_config_function(config, "get_network"):
        starts.add("get_network")
    return called(config, starts)


def builder_inputs(config: LoadedConfig, key_category) -> set[str]:
    """Top-level values that are no RETURNN setting (`key_category` gives None) and that only network
    builders read (`model_dim` read by `conformer_network()`): without the builders, nothing reads them."""
    builders = network_builders(config)
    readers: dict[str, set[str]] = {}
    for name, entry in config.values.items():
        refs = entry["value"]["refs"] if is_function(entry["value"]) else entry.get("refs", [])
        for ref in refs:
            readers.setdefault(ref, set()).add(name)
    return {name for name, users in readers.items() if name in config.values and users <= builders
            and not is_config_function(config, name) and key_category(name) is None}


def train_only_functions(config: LoadedConfig) -> set[str]:
    """Config functions whose code acts only in training (a train-flag condition), or calls one that does."""
    direct = {name for name, entry in config.values.items() if is_function(entry["value"])
              and (entry["value"].get("train_only") or TRAIN_ONLY.search(entry.get("source") or ""))}
    users = {name for name, entry in config.values.items() if is_function(entry["value"])
             and called(config, set(entry["value"]["calls"])) & direct}
    return direct | users


def _named_in(value, names: set[str]) -> set[str]:
    """The names of `names` that a (loaded, encoded) value refers to: a function value, or an identifier in a
    string (an `eval` layer's `typed_value('transform')`)."""
    if is_function(value):
        return {value["__function__"]} & names
    if isinstance(value, dict):
        return set().union(*(_named_in(v, names) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_named_in(v, names) for v in value))
    if isinstance(value, str):
        return set(re.findall(r"[A-Za-z_]\w*", value)) & names
    return set()


def runtime_functions(config: LoadedConfig) -> set[str]:
    """Config functions RETURNN may call: named by a setting's value (a layer's `eval`, a loss function, the
    pretrain construction), or a hook by name, and the functions those call."""
    functions = {name for name, entry in config.values.items() if is_function(entry["value"])}
    named = {n for name, entry in config.values.items() if name not in functions
             for n in _named_in(entry["value"], functions)}
    return called(config, named | (functions & HOOKS))
