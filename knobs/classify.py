"""Why a change gets its category: the rule table first, then how the network uses what changed.

The order, for a changed network path `network.<layer>.<attribute>...`:

1. a config function in the values takes the category of its user (`function`): a function called by a
   loss-only layer is `loss`, by a train-only `eval` layer `augmentation`, else the `function_users` rules;
2. the innermost attribute on the path that a `layer_attributes` rule matches (`dropout`, `L2`, `loss_opts`,
   `forward_weights_init`, ...);
3. the layer's role in the graph (`knobs.graph`): a loss-only layer, or anything inside it, is `loss`; a
   train-only `eval` layer is `augmentation`, a dropout-only layer `dropout` (also when the other side
   lacks it or has a plain `copy` there); a `from` that differs only by routing through such a layer has
   its category too (the layers after it keep their own category);
4. otherwise `model`, or `pretrain` when the path differs only in pretrain epochs.

Top-level keys go by the `keys` rules; a key no rule names takes the category of the function that reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from knobs.config_code import network_builders, train_only_functions
from knobs.graph import (
    PASS_THROUGH_CATEGORIES,
    ROOT_LAYERS,
    NetworkRoles,
    eval_is_train_only,
    from_refs,
    is_external,
    is_identity,
    network_roles,
    sub_network,
)
from knobs.loader import LoadedConfig
from knobs.network_spelling import KERNEL_NOTE, is_kernel_change
from knobs.rules import RuleTable
from knobs.values import is_function

SUB_NETWORK_KEYS = ("unit", "subnetwork")
UNROLL_NOTE = "an unrolled rec loop (`unroll`) runs max_seq_len steps in training too: model, not search"
_OUTPUT_LAYER_KEYS = ("search_output_layer", "forward_output_layer")


@dataclass(frozen=True)
class Verdict:
    """The category of one network change, with a note and the model layers whose parameters it trains."""

    category: str
    note: str | None = None
    trains_model_layers: tuple[str, ...] = field(default_factory=tuple)


def attribute_parts(parts: list) -> list:
    """The attribute names on a network path (layer names left out): `network.output.unit.prob.loss` ->
    `[unit, loss]`."""
    names: list = []
    expect_layer = True
    for part in parts[1:]:
        if expect_layer:
            expect_layer = False
            continue
        names.append(part)
        expect_layer = part in SUB_NETWORK_KEYS
    return names


class Classifier:
    """Assigns categories using the rule table, how config functions are used and the network graph."""

    def __init__(self, rules: RuleTable, configs: tuple[LoadedConfig, LoadedConfig]):
        self.rules = rules
        self.configs = configs
        self._function_category: dict[str, str] = {}
        self._train_only = set().union(*(train_only_functions(c) for c in configs))
        self._function_names = {n for c in configs for n, e in c.values.items() if is_function(e["value"])}
        self._roots = ROOT_LAYERS | {c.value(k) for c in configs for k in _OUTPUT_LAYER_KEYS
                                     if isinstance(c.value(k), str)}  # what recognition reads
        self._roles: dict[int, NetworkRoles] = {}
        self._builders = {d for c in configs for d in network_builders(c)}

    # ------------------------------------------------------------ top-level keys and functions

    def key(self, key: str) -> str:
        category = self.rules.key_category(key)
        if category is not None:
            return category
        if any(is_function(c.value(key)) for c in self.configs):
            return self.function(key)
        users = self._referencing_functions(key)
        runtime_users = [u for u in users if u not in self._builders]
        users = runtime_users or users
        return self.function(users[0]) if users else self.rules.default_key

    def config_function_in(self, *values: Any) -> str | None:
        """The first config-defined function that the values are, or name in an eval string."""
        for value in values:
            if is_function(value) and value["__function__"] in self._function_names:
                return value["__function__"]
            if isinstance(value, str):
                found = sorted(self._function_names & _identifiers(value))
                if found:
                    return found[0]
        return None

    def _referencing_functions(self, name: str) -> list[str]:
        return sorted({fname for config in self.configs for fname, entry in config.values.items()
                       if is_function(entry["value"]) and name in entry["value"]["refs"] and fname != name})

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
                if key != name and key != "network" and not is_function(entry["value"]) \
                        and _mentions(entry["value"], name):
                    category = self.rules.key_category(key)
                    if category is not None:
                        return category
            for net in _networks(config):
                found = _innermost_layer_using(net, name, self._roots)
                if found is not None:
                    layer_name, layer, subnet, roots = found
                    rule = self.rules.function_user_rule(layer_name, layer)
                    role = self.roles(subnet, roots).role(layer_name)
                    return rule or role or self.rules.default_layer
        for user in self._referencing_functions(name):
            if user not in stack:
                return self.function(user, stack)
        return self.rules.default_key

    # ------------------------------------------------------------ network paths

    def network_path(self, parts: list, pretrain_only: bool) -> str:
        """Category of `network.<layer>...` by the attribute rules alone, else model/pretrain."""
        category = self._attribute_category(parts)
        if category is not None:
            return category
        return "pretrain" if pretrain_only else self.rules.default_layer

    def _attribute_category(self, parts: list) -> str | None:
        for attribute in reversed(attribute_parts(parts)):
            category = self.rules.attribute_category(str(attribute))
            if category is not None:
                return category
        return None

    def roles(self, net: dict, roots: frozenset[str] = ROOT_LAYERS) -> NetworkRoles:
        key = id(net)
        if key not in self._roles:
            self._roles[key] = network_roles(net, self._eval_train_only, roots)
        return self._roles[key]

    def _eval_train_only(self, value: Any) -> bool:
        return eval_is_train_only(value, self._train_only.__contains__, self._function_names)

    def network_change(self, parts: list, orig: Any, start: Any, nets: tuple[dict, dict],
                       pretrain_only: bool) -> Verdict:
        """Category of a changed network path, given the networks (orig's, start's) of its epochs."""
        function = self.config_function_in(orig, start)
        if function:
            return Verdict(self.function(function))
        category = self._attribute_category(parts)
        located = [self._locate(net, parts[1:]) for net in nets]
        present = [loc for loc in located if loc is not None]
        others = [self._container(net, loc) for net, loc in zip(reversed(nets), located, strict=True)]
        if category == "search" and parts[-1] == "max_seq_len" and any(loc.layer.get("unroll") for loc in present):
            return Verdict(self.rules.default_layer, UNROLL_NOTE)
        if category is None:
            category = _role_category(located, others)
            if category is None and parts[-1] == "from" and len(parts) >= 3:
                routed = _routed_through(located, orig, start)
                if routed:
                    return Verdict(routed, f"the same input, routed through a {routed} layer")
            if category == "loss" and parts[-1] == "from" and None not in located:
                removed = _input_of_one_side(located, (orig, start), others)
                if removed:
                    return Verdict(self.rules.default_layer, f"rewired: its input {removed} exists on one side "
                                                             f"only (a model change)")
        if category is None:
            if parts[-1] == "unit" and is_kernel_change(orig, start):
                return Verdict(self.rules.default_layer, KERNEL_NOTE)
            return Verdict("pretrain" if pretrain_only else self.rules.default_layer)
        if category == "loss" and present:
            return _loss_coupling(present)
        return Verdict(category)

    def _locate(self, net: dict, parts: list) -> _Located | None:
        """The innermost layer on `parts` inside `net` (descending into rec units) with its network's roles."""
        node, roots, index = net, self._roots, 0
        while index < len(parts) and isinstance(node, dict) and parts[index] in node:
            name = parts[index]
            roles = self.roles(node, roots)
            inner = sub_network(node[name])
            if roles.role(name) or inner is None or index + 2 >= len(parts) \
                    or parts[index + 1] not in SUB_NETWORK_KEYS:
                return _Located(name, roles, index == 0, node[name], tuple(parts[:index]))
            node, roots, index = inner, ROOT_LAYERS, index + 2
        return None

    @staticmethod
    def _container(net: dict, other: _Located | None) -> dict | None:
        """The (sub)network of `net` at the place where the other side's located layer is."""
        node: Any = net
        for index in range(0, len(other.prefix) if other else 0, 2):
            node = sub_network(node.get(other.prefix[index])) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None


@dataclass(frozen=True)
class _Located:
    name: str  # the layer's name in its (sub)network
    roles: NetworkRoles
    top_level: bool
    layer: Any  # its dict
    prefix: tuple = ()  # the path to its (sub)network: () at top level, (rec layer, "unit", ...) inside


def _role_category(located: list[_Located | None], others: list[dict | None]) -> str | None:
    """The layer's role, when the sides agree on it; a pass-through layer (augmentation, dropout) that the
    other side replaces by a plain `copy`, or lacks while having the layers it reads, keeps its role
    (switching it off is that knob too); one that goes with the layers it reads (the dropout of a removed
    block) is part of that structural change. `others[i]`: the other side's (sub)network where located[i] is."""
    roles = [loc.roles.role(loc.name) if loc is not None else None for loc in located]
    if None not in located and roles[0] == roles[1]:
        return roles[0]
    for loc, role, other, other_net in zip(located, roles, reversed(located), others, strict=True):
        if loc is None or role is None:
            continue
        if other is None:
            if role not in PASS_THROUGH_CATEGORIES or \
                    (other_net is not None and all(is_external(r) or r in other_net
                                                   for r in loc.roles.pass_inputs[loc.name])):
                return role
        elif role in PASS_THROUGH_CATEGORIES and is_identity(other.layer):
            return role
    return None


def _input_of_one_side(located: list[_Located], values: tuple[Any, Any], others: list[dict | None]) -> str | None:
    """A model layer that one side's `from` reads and the other side's network lacks (a loss-only layer
    rewired because the model changed under it: the long skips it read were removed)."""
    refs = [set(from_refs(value)) for value in values]
    for loc, own, other, other_net in zip(located, refs, reversed(refs), others, strict=True):
        for ref in sorted(own - other):
            if not is_external(ref) and other_net is not None and ref not in other_net \
                    and ref not in loc.roles.loss_only:
                return ref
    return None


def _loss_coupling(present: list[_Located]) -> Verdict:
    """A loss change that trains parameters the model also uses is flagged: the layer's output also feeds
    layers that are not loss-only (an output layer the decoder reads), or a loss-only layer shares parameters
    (`reuse_params`) with a model layer. Top-level model layers are named so that `knobs.group` can couple."""
    readers = sorted({r for loc in present for r in loc.roles.readers.get(loc.name, ())
                      if r not in loc.roles.loss_only})
    shared = sorted({s for loc in present for s in loc.roles.shared_params.get(loc.name, ())
                     if s not in loc.roles.loss_only})
    if not readers and not shared:
        return Verdict("loss")
    why = (f"the layer's output also feeds {', '.join(readers[:3])}" if readers
           else f"it shares parameters with {', '.join(shared)}")
    layers = ([present[0].name] if readers else []) + shared
    return Verdict("loss", f"coupled with model: {why}", tuple(layers) if present[0].top_level else ())


def _routed_through(located: list[_Located | None], orig: Any, start: Any) -> str | None:
    """The category of the pass-through layer(s) that a `from` differs by (added, removed or replaced on the
    way), or None when the inputs differ otherwise."""
    if any(loc is None for loc in located):
        return None
    refs = [from_refs(value) for value in (orig, start)]
    routed = [loc.roles.without_pass_through(r) for loc, r in zip(located, refs, strict=True)]
    touched = [loc.roles.pass_through[ref] for loc, r in zip(located, refs, strict=True) for ref in r
               if ref in loc.roles.pass_through]
    return touched[0] if touched and routed[0] == routed[1] else None


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
    return set(re.findall(r"[A-Za-z_]\w*", text))


def _innermost_layer_using(net: dict, name: str, roots: frozenset[str]
                           ) -> tuple[str, dict, dict, frozenset[str]] | None:
    """(layer name, layer, the network it is in, that network's root layers) of the innermost user."""
    for layer_name, layer in net.items():
        if not isinstance(layer, dict) or not _mentions(layer, name):
            continue
        inner = sub_network(layer)
        if inner is not None and _mentions(inner, name):
            found = _innermost_layer_using(inner, name, ROOT_LAYERS)
            if found is not None:
                return found
        return layer_name, layer, net, roots
    return None
