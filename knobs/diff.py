"""Split the difference of two loaded configs into named knobs.

Pure functions over `LoadedConfig` snapshots: static values are normalized (`knobs.normalize`) and
diffed with DeepDiff; the learning rate, `#config` overrides and the network are compared per epoch
and reported as epoch ranges; every change gets one category from the rule table; changes of one
category form one knob; knobs whose code reads each other's values are marked coupled.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from deepdiff import DeepDiff

from knobs.loader import LoadedConfig
from knobs.normalize import DEFAULTS, LR_INPUT_KEYS, normalize_static
from knobs.rules import CATEGORIES, RuleTable

ABSENT = {"__absent__": True}
NO_EFFECT = frozenset({"runtime"})
REBUILD_NOTE = "true: the network is rebuilt at the start of the epoch (parameters copied, optimizer state reset)"


@dataclass
class Change:
    path: str
    orig: Any
    start: Any
    epochs: str | None = None  # None: every epoch (or not epoch-dependent)
    category: str = "other"
    note: str | None = None
    parts: list = field(default_factory=list)  # the path as keys (layer names may contain dots)

    def epoch_list(self, num_epochs: int) -> list[int]:
        """The epochs of this change as numbers (all epochs when `epochs` is None)."""
        if self.epochs is None:
            return list(range(1, num_epochs + 1))
        result: list[int] = []
        for piece in self.epochs.split(","):
            first, _, last = piece.partition("-")
            result.extend(range(int(first), int(last or first) + 1))
        return result


@dataclass
class Knob:
    name: str
    category: str
    changes: list[Change]
    switchable: bool = True
    coupled_with: list[str] = field(default_factory=list)
    coupling: list[str] = field(default_factory=list)  # why, one sentence per coupling
    summary: str = ""
    affects_results: bool = True


@dataclass
class PairDiff:
    orig: str
    start: str
    knobs: list[Knob]
    equivalent: list[dict]
    unresolved: list[dict]
    warnings: list[str]
    epochs: int | None = None
    helpers: list[Change] = field(default_factory=list)  # values RETURNN never reads; shown, not knobs

    def to_json(self) -> dict:
        return asdict(self)

    def knob(self, name: str) -> Knob | None:
        return next((k for k in self.knobs if k.name == name), None)


# ---------------------------------------------------------------- value helpers

def is_tagged(value: Any) -> bool:
    return isinstance(value, dict) and any(
        k in value for k in ("__function__", "__object__", "__unresolved__", "__imported__", "__absent__",
                             "__float__"))


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


def format_path(parts: list) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def epoch_ranges(epochs: list[int]) -> str:
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
    dd = DeepDiff(comparable(orig), comparable(start), ignore_numeric_type_changes=True,
                  ignore_private_variables=False, threshold_to_diff_deeper=0, view="tree")
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


# ---------------------------------------------------------------- classification

class Classifier:
    """Assigns categories using the rule table and how config functions are used."""

    def __init__(self, rules: RuleTable, configs: tuple[LoadedConfig, LoadedConfig]):
        self.rules = rules
        self.configs = configs
        self._function_category: dict[str, str] = {}

    def key(self, key: str) -> str:
        category = self.rules.key_category(key)
        if category is not None:
            return category
        if any(self._is_function(c.value(key)) for c in self.configs):
            return self.function(key)
        users = self._referencing_functions(key)
        runtime_users = [u for u in users if u not in self._builders()]
        users = runtime_users or users
        return self.function(users[0]) if users else self.rules.default_key

    def _builders(self) -> set[str]:
        """Functions evaluated while loading to build the network (their globals are baked in)."""
        return {d for c in self.configs for d in network_builders(c)}

    def network_path(self, parts: list, pretrain_only: bool) -> str:
        """Category of `network.<layer>...`: innermost matching attribute, else model/pretrain."""
        for attribute in reversed(parts[1:]):
            category = self.rules.attribute_category(str(attribute))
            if category is not None:
                return category
        return "pretrain" if pretrain_only else self.rules.default_layer

    def config_function_in(self, *values: Any) -> str | None:
        """The first config-defined function that the values are, or name in an eval string."""
        names = [n for c in self.configs for n, e in c.values.items() if self._is_function(e["value"])]
        for value in values:
            if self._is_function(value) and value["__function__"] in names:
                return value["__function__"]
            if isinstance(value, str):
                found = [n for n in names if n in _identifiers(value)]
                if found:
                    return found[0]
        return None

    @staticmethod
    def _is_function(value: Any) -> bool:
        return isinstance(value, dict) and "__function__" in value

    def _referencing_functions(self, name: str) -> list[str]:
        users = []
        for config in self.configs:
            for fname, entry in config.values.items():
                value = entry["value"]
                if self._is_function(value) and name in value["refs"] and fname != name:
                    users.append(fname)
        return sorted(set(users))

    def function(self, name: str, stack: tuple[str, ...] = ()) -> str:
        """A function's category is that of its user: a config key, a network layer, another function."""
        if name in self._function_category:
            return self._function_category[name]
        if name in stack:
            return self.rules.default_key
        category = self.rules.key_category(name)
        if category is None:
            category = self._category_from_users(name, (*stack, name))
        self._function_category[name] = category
        return category

    def _category_from_users(self, name: str, stack: tuple[str, ...]) -> str:
        for config in self.configs:
            for key, entry in config.values.items():
                if key != name and not self._is_function(entry["value"]) and _mentions(entry["value"], name) \
                        and key != "network":
                    category = self.rules.key_category(key)
                    if category is not None:
                        return category
            for net in _networks(config):
                layer = _innermost_layer_using(net, name)
                if layer is not None:
                    return self.rules.function_user_category(*layer)
        users = self._referencing_functions(name)
        for user in users:
            if user not in stack:
                return self.function(user, stack)
        return self.rules.default_key


def _networks(config: LoadedConfig) -> list[dict]:
    if config.per_epoch:
        nets = config.per_epoch["networks"]
        return [nets[0], nets[-1]] if nets else []
    net = config.value("network")
    return [net] if isinstance(net, dict) else []


def _mentions(value: Any, name: str) -> bool:
    if isinstance(value, dict):
        if value.get("__function__") == name:
            return True
        return any(_mentions(v, name) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, name) for v in value)
    if isinstance(value, str):
        return name in _identifiers(value)
    return False


def _identifiers(text: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z_]\w*", text))


def _innermost_layer_using(net: dict, name: str) -> tuple[str, dict] | None:
    for layer_name, layer in net.items():
        if not isinstance(layer, dict) or not _mentions(layer, name):
            continue
        for sub in ("unit", "subnetwork"):
            if isinstance(layer.get(sub), dict) and _mentions(layer[sub], name):
                inner = _innermost_layer_using(layer[sub], name)
                if inner is not None:
                    return inner
        return layer_name, layer
    return None


# ---------------------------------------------------------------- the diff

def _static_values(config: LoadedConfig) -> dict[str, Any]:
    return {name: entry["value"] for name, entry in config.values.items()}


def _per_epoch_keys(config: LoadedConfig) -> set[str]:
    return set(config.per_epoch["override_keys"]) if config.per_epoch else set()


def _epoch_change_groups(path_values: dict[str, dict[int, tuple[Any, Any]]], last_epoch: int,
                         ) -> list[tuple[str, Any, Any, list[int], bool]]:
    """Runs of consecutive epochs in which a path differs: (path, orig, start, epochs, covers_last).

    Within a run, one value pair is reported as is; values that change from epoch to epoch (a warmup)
    are reported as per-epoch lists.
    """
    groups = []
    for path, by_epoch in path_values.items():
        runs: list[list[int]] = []
        for epoch in sorted(by_epoch):
            o, s = by_epoch[epoch]
            if comparable(o) == comparable(s):
                continue
            if runs and runs[-1][-1] == epoch - 1:
                runs[-1].append(epoch)
            else:
                runs.append([epoch])
        for run in runs:
            pieces = _constant_pieces(run, by_epoch)
            if len(pieces) <= MAX_PIECES_PER_RUN:
                for piece in pieces:
                    o, s = by_epoch[piece[0]]
                    groups.append((path, o, s, piece, last_epoch in piece))
            else:  # values move every few epochs (a warmup): one change with per-epoch lists
                o, s = [by_epoch[e][0] for e in run], [by_epoch[e][1] for e in run]
                groups.append((path, o, s, run, last_epoch in run))
    return groups


MAX_PIECES_PER_RUN = 3


def _constant_pieces(run: list[int], by_epoch: dict[int, tuple[Any, Any]]) -> list[list[int]]:
    pieces: list[list[int]] = []
    previous = None
    for epoch in run:
        key = json.dumps([comparable(v) for v in by_epoch[epoch]], sort_keys=True, default=str)
        if key != previous:
            pieces.append([])
            previous = key
        pieces[-1].append(epoch)
    return pieces


def diff_configs(orig: LoadedConfig, start: LoadedConfig, rules: RuleTable) -> PairDiff:
    """The knob diff of two loaded configs."""
    classifier = Classifier(rules, (orig, start))
    static_o, static_s = _static_values(orig), _static_values(start)
    per_epoch_keys = _per_epoch_keys(orig) | _per_epoch_keys(start)
    have_epochs = bool(orig.per_epoch and start.per_epoch)
    construction_notes: list[dict] = []
    if have_epochs:
        # what RETURNN uses of these is compared per epoch: the LR, the #config values, the networks
        # (so code that only constructs them is compared by its effect, not by its text)
        builders = network_builders(orig) | network_builders(start)
        for side in (static_o, static_s):
            for key in (*per_epoch_keys, *LR_INPUT_KEYS, "network", *builders):
                side.pop(key, None)
            if isinstance(side.get("pretrain"), dict):
                side["pretrain"] = {k: v for k, v in side["pretrain"].items()
                                    if k not in ("construction_algo", "repetitions")}
        differing = sorted(b for b in builders
                           if comparable(orig.value(b, ABSENT)) != comparable(start.value(b, ABSENT)))
        if differing:
            construction_notes.append({
                "what": "network construction code",
                "orig": ", ".join(b for b in differing if b in orig.values) or "(none)",
                "start": ", ".join(b for b in differing if b in start.values) or "(none)",
                "why": "functions that only build the per-epoch networks and #config are compared by what they "
                       "build (the per-epoch view), not by their source"})
    norm_o, norm_s, equivalent, defaulted = normalize_static(static_o, static_s)
    equivalent += construction_notes
    changes: list[Change] = []
    for parts, o, s in tree_changes(norm_o, norm_s):
        if len(parts) > 1 and _is_global_function_ref(o, s, orig, start):
            continue  # e.g. pretrain.construction_algo: reported where the function is defined
        key = str(parts[0])
        note = _function_note(o, s) or next(
            (f"{side} does not set it: RETURNN's default" for side in ("orig", "start")
             if len(parts) == 1 and (side, key) in defaulted), None)
        changes.append(Change(format_path(parts), o, s, None, classifier.key(key), note, parts=list(parts)))
    if have_epochs:
        changes += _per_epoch_changes(orig, start, classifier, per_epoch_keys, equivalent)
    helpers = [c for c in changes if _is_helper(c, orig, start)]
    changes = [c for c in changes if c not in helpers]
    knobs = _group_into_knobs(changes, orig, start)
    unresolved = [{"side": side, **u} for side, cfg in (("orig", orig), ("start", start)) for u in cfg.unresolved]
    warnings = [f"{side}: {w}" for side, cfg in (("orig", orig), ("start", start)) for w in cfg.warnings]
    epochs = orig.per_epoch["num_epochs"] if have_epochs else None
    return PairDiff(orig.path, start.path, knobs, equivalent, unresolved, warnings, epochs, helpers)


def _is_helper(change: Change, orig: LoadedConfig, start: LoadedConfig) -> bool:
    """A top-level value that is no RETURNN setting and that no config function reads, but from which other
    values were computed (e.g. `l2 = 1e-4` used in the network dict): RETURNN never reads it, its effect is
    already in the values computed from it."""
    if change.category != "other" or len(change.parts) != 1:
        return False
    name = change.parts[0]
    configs = (orig, start)
    if any(_is_function(c, name) for c in configs):
        return False
    read_by_function = any(name in e["value"].get("refs", []) for c in configs for e in c.values.values()
                           if isinstance(e["value"], dict) and "__function__" in e["value"])
    used_by_statement = any(name in e.get("refs", []) for c in configs for n, e in c.values.items() if n != name)
    return used_by_statement and not read_by_function


def _is_global_function_ref(o: Any, s: Any, orig: LoadedConfig, start: LoadedConfig) -> bool:
    """Both values are the config's own top-level function of the same name."""
    return all(isinstance(v, dict) and "__function__" in v and v["__function__"] in cfg.values
               for v, cfg in ((o, orig), (s, start))) and o["__function__"] == s["__function__"]


def _function_note(o: Any, s: Any) -> str | None:
    if isinstance(o, dict) and isinstance(s, dict) and "__function__" in o and "__function__" in s:
        if o["source_hash"] == s["source_hash"]:
            return "same source; reads config globals that differ"
        return "source differs"
    return None


def _per_epoch_changes(orig: LoadedConfig, start: LoadedConfig, classifier: Classifier,
                       per_epoch_keys: set[str], equivalent: list[dict]) -> list[Change]:
    eo, es = orig.per_epoch["epochs"], start.per_epoch["epochs"]
    n = min(len(eo), len(es))
    last = n
    scalar_paths: dict[str, dict[int, tuple[Any, Any]]] = defaultdict(dict)
    for i in range(n):
        scalar_paths["learning_rate"][i + 1] = (eo[i]["learning_rate"], es[i]["learning_rate"])
        scalar_paths["pretrain.rebuild"][i + 1] = (eo[i]["rebuild"], es[i]["rebuild"])
        for key in sorted(per_epoch_keys):
            o = eo[i]["config"].get(key, orig.value(key, DEFAULTS.get(key, ABSENT)))
            s = es[i]["config"].get(key, start.value(key, DEFAULTS.get(key, ABSENT)))
            scalar_paths[key][i + 1] = (o, s)
    changes: list[Change] = []
    for path, o, s, epochs, _ in _epoch_change_groups(scalar_paths, last):
        note = REBUILD_NOTE if path == "pretrain.rebuild" else None
        changes.append(Change(path, o, s, None if len(epochs) == n else epoch_ranges(epochs),
                              classifier.key(path), note, parts=path.split(".")))
    if not any(c.path == "learning_rate" for c in changes):
        spelled = [{k: cfg.value(k) for k in LR_INPUT_KEYS if k in cfg.values} for cfg in (orig, start)]
        config_lrs = [_config_lr_spelled(cfg)[:n] for cfg in (orig, start)]
        if comparable(spelled[0]) != comparable(spelled[1]) or config_lrs[0] != config_lrs[1]:
            equivalent.append({"what": "learning_rate schedule", "orig": show(spelled[0], 200),
                               "start": show(spelled[1], 200),
                               "why": "same scheduled learning rate in every epoch (pretrain #config vs "
                                      "learning_rates; learning_rate_control.py, tf/engine.py)"})
    nets_o, nets_s = orig.per_epoch["networks"], start.per_epoch["networks"]
    cache: dict[tuple[int, int], list] = {}
    net_paths: dict[str, dict[int, tuple[Any, Any]]] = defaultdict(dict)
    path_parts: dict[str, list] = {}
    for i in range(n):
        pair = (eo[i]["net"], es[i]["net"])
        if pair not in cache:
            cache[pair] = tree_changes(nets_o[pair[0]], nets_s[pair[1]])
        for parts, o, s in cache[pair]:
            if _is_global_function_ref(o, s, orig, start):
                continue
            path = format_path(["network", *parts])
            path_parts[path] = ["network", *parts]
            net_paths[path][i + 1] = (o, s)
    for path, o, s, epochs, covers_last in _epoch_change_groups(net_paths, last):
        function = classifier.config_function_in(o, s)
        category = classifier.function(function) if function else \
            classifier.network_path(path_parts[path], pretrain_only=not covers_last)
        changes.append(Change(path, o, s, None if len(epochs) == n else epoch_ranges(epochs), category,
                              parts=path_parts[path]))
    return changes


def _config_lr_spelled(config: LoadedConfig) -> list:
    return [e["config_learning_rate"] for e in config.per_epoch["epochs"]] if config.per_epoch else []


# ---------------------------------------------------------------- knobs and coupling

def _dependencies(config: LoadedConfig, name: str, seen: set[str] | None = None) -> set[str]:
    """Config names that the value of `name` was computed from or reads, transitively."""
    seen = set() if seen is None else seen
    entry = config.values.get(name)
    if entry is None or name in seen:
        return set()
    seen.add(name)
    value = entry["value"]
    is_function = isinstance(value, dict) and "__function__" in value
    direct = set(value["refs"]) if is_function else set(entry.get("refs", []))
    direct &= set(config.values)
    result = set(direct)
    for dep in direct:
        result |= _dependencies(config, dep, seen)
    return result


def _called(config: LoadedConfig, names: set[str]) -> set[str]:
    """The config functions called, transitively, starting from `names`."""
    result: set[str] = set()
    todo = [n for n in names if _is_function(config, n)]
    while todo:
        name = todo.pop()
        if name in result:
            continue
        result.add(name)
        todo += [c for c in config.value(name)["calls"] if _is_function(config, c)]
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
    if _is_function(config, "get_network"):
        starts.add("get_network")
    return _called(config, starts)


def _group_into_knobs(changes: list[Change], orig: LoadedConfig, start: LoadedConfig) -> list[Knob]:
    by_category: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_category[change.category].append(change)
    knob_of_name: dict[str, str] = {}
    for change in changes:
        if not change.path.startswith("network"):
            knob_of_name.setdefault(change.path.split(".")[0].split("[")[0], change.category)
    coupled: dict[str, dict[str, str]] = defaultdict(dict)

    def couple(a: str, b: str, reason: str) -> None:
        if a != b and a not in NO_EFFECT and b not in NO_EFFECT:
            coupled[a].setdefault(b, reason)
            coupled[b].setdefault(a, reason)

    for config in (orig, start):
        # a function reads another knob's values at run time: switching one alone changes the other
        for name, knob in knob_of_name.items():
            if _is_function(config, name):
                for dep in sorted(_dependencies(config, name) & set(knob_of_name)):
                    couple(knob, knob_of_name[dep], f"{name}() ({knob}) reads {dep} ({knob_of_name[dep]})")
    knobs = []
    for category in CATEGORIES:
        if category not in by_category:
            continue
        items = by_category[category]
        partners = sorted(coupled.get(category, {}))
        knobs.append(Knob(name=category, category=category, changes=items, switchable=not partners,
                          coupled_with=partners, coupling=[coupled[category][p] for p in partners],
                          summary=summarize(category, items, orig, start),
                          affects_results=category not in NO_EFFECT))
    return knobs


def _is_function(config: LoadedConfig, name: str) -> bool:
    value = config.value(name)
    return isinstance(value, dict) and "__function__" in value


def _is_function_value(*values: Any) -> bool:
    return any(isinstance(v, dict) and "__function__" in v for v in values)


def effective_batch(config: LoadedConfig, epoch_index: int) -> str:
    epochs = config.per_epoch["epochs"] if config.per_epoch else []
    overrides = epochs[epoch_index]["config"] if epochs else {}
    batch = overrides.get("batch_size", config.value("batch_size", 1))
    accum = overrides.get("accum_grad_multiple_step", config.value("accum_grad_multiple_step", 1))
    if isinstance(batch, int | float) and isinstance(accum, int | float):
        return f"{batch:g}x{accum:g}={batch * accum:g}"
    return f"{show(batch)}x{show(accum)}"


def summarize(category: str, changes: list[Change], orig: LoadedConfig, start: LoadedConfig) -> str:
    """One line: the first changes as `path: orig → start`, plus the effective batch for batching."""
    parts = []
    for change in changes[:3]:
        epochs = f" (epochs {change.epochs})" if change.epochs else ""
        if change.note and _is_function_value(change.orig, change.start):
            parts.append(f"{change.path}(): {change.note}")
        else:
            parts.append(f"{change.path}{epochs}: {show(change.orig, 30)} → {show(change.start, 30)}")
    if len(changes) > 3:
        parts.append(f"+{len(changes) - 3} more")
    text = "; ".join(parts)
    if category == "batching":
        text += (f" [effective batch, first epoch: {effective_batch(orig, 0)} vs {effective_batch(start, 0)};"
                 f" last: {effective_batch(orig, -1)} vs {effective_batch(start, -1)}]")
    return text
