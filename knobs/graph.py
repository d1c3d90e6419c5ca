"""The network as a graph: which layers read which, which only serve a training loss, which only augment.

Pure functions over encoded net dicts (`knobs.encoding`). A layer *reads* another when a string in its dict
names it (`from`, `key_shift`, `size_base`, a rec unit's `base:` references, `layer:` targets, ...); it
*shares parameters* with the layers its `reuse_params` names. Roles, as the classifier uses them:

- *loss-only*: the layer has `loss` set, or has no loss but is read, and every layer reading it is loss-only
  (an auxiliary CTC/CE head: `aux_ctc` with its MLP). `output` (and `end` inside a rec unit) never is.
- *pass-through*: a layer that only transforms its input on the way, with the category of what it does:
  `augmentation` for an `eval` layer (without a loss) whose code is active only in training
  (`network.train_flag`, `cond_on_train`, `tf.cond(train_flag, ...)`, `is_training`), directly or through
  a config function; `dropout` for a `dropout` layer or a `copy` layer that only applies dropout.
  An input edge that differs only by routing through such a layer has its category too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from knobs.encoding import TRAIN_ONLY
from knobs.values import is_function

REF_PREFIXES = ("base:", "prev:", "layer:")
# attributes whose strings are never layer names
_NOT_REFERENCES = frozenset({"class", "activation", "loss", "eval", "unit", "subnetwork", "reuse_params", "mode",
                             "padding", "kind", "axis", "axes", "gate_activation", "initial_output", "combine"})
ROOT_LAYERS = frozenset({"output", "end"})
PASS_THROUGH_CATEGORIES = frozenset({"augmentation", "dropout"})

TrainOnly = Callable[[Any], bool]  # does this eval value (string or encoded function) act only in training?


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and not is_function(value):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _layer_name(text: str, names: set[str], prefixes: tuple[str, ...] = REF_PREFIXES) -> str | None:
    for prefix in prefixes:
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text if text in names else None


def reads(layer: dict, names: set[str]) -> set[str]:
    """The layers (of the same network) whose output `layer` reads."""
    found: set[str] = set()
    for key, value in layer.items():
        if key in ("unit", "subnetwork") and isinstance(value, dict):
            # inside a rec unit, `base:x` is the enclosing network's layer x
            found.update(n for s in _strings(value) if s.startswith("base:")
                         for n in [_layer_name(s, names, ("base:",))] if n)
        elif key not in _NOT_REFERENCES:
            found.update(n for s in _strings(value) for n in [_layer_name(s, names)] if n)
    return found


def shares_params_with(layer: dict, names: set[str]) -> set[str]:
    """The layers whose parameters `layer` reuses (`reuse_params`)."""
    return {n for s in _strings(layer.get("reuse_params")) for n in [_layer_name(s, names)] if n}


@dataclass(frozen=True)
class NetworkRoles:
    """Roles of the layers of one network (one level: a rec unit has its own)."""

    readers: dict[str, frozenset[str]]
    loss_only: frozenset[str]
    pass_through: dict[str, str]  # layer -> the category of what it does to its input
    pass_inputs: dict[str, frozenset[str]]  # pass-through layer -> its `from` (`data` by default)
    shared_params: dict[str, frozenset[str]]  # layer -> layers it shares parameters with (both directions)

    def role(self, name: str) -> str | None:
        if name in self.pass_through:
            return self.pass_through[name]
        if name in self.loss_only:
            return "loss"
        return None

    def without_pass_through(self, refs: list[str]) -> list[str]:
        """References with every pass-through layer replaced by what it reads (the edge without it)."""
        result: list[str] = []
        for ref in refs:
            if ref in self.pass_through:
                result += self.without_pass_through(sorted(self.pass_inputs[ref]))
            else:
                result.append(ref)
        return result


def from_refs(value: Any) -> list[str]:
    """A layer's `from` as a list; RETURNN's default input is `data`."""
    if value is None or (isinstance(value, dict) and value.get("__absent__")):
        return ["data"]
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def is_external(ref: str) -> bool:
    """A reference to something outside this network's layers: extern data or the enclosing network."""
    return ref == "data" or ref.startswith(("data:", "base:"))


def _is_loss(layer: dict) -> bool:
    return layer.get("loss") not in (None, "", {"__absent__": True})


_COPY_KEYS = frozenset({"class", "from"})
_DROPOUT_KEYS = frozenset({"dropout", "dropout_noise_shape", "dropout_on_forward"})


def is_identity(layer: Any) -> bool:
    """A `copy` layer that passes its input on unchanged."""
    return isinstance(layer, dict) and layer.get("class") == "copy" and set(layer) <= _COPY_KEYS


def is_dropout_only(layer: Any) -> bool:
    """A layer that only applies dropout: `dropout`, or `copy` with `dropout` set."""
    if not isinstance(layer, dict) or layer.get("class") not in ("dropout", "copy") or not layer.get("dropout"):
        return False
    return set(layer) <= _COPY_KEYS | _DROPOUT_KEYS


def _pass_through_category(layer: dict, train_only: TrainOnly) -> str | None:
    if layer.get("class") == "eval" and not _is_loss(layer) and train_only(layer.get("eval")):
        return "augmentation"
    if is_dropout_only(layer):
        return "dropout"
    return None


def network_roles(net: dict, train_only: TrainOnly, roots: frozenset[str] = ROOT_LAYERS) -> NetworkRoles:
    """Roles in `net`; `roots` are never loss-only (the output layers recognition uses)."""
    layers = {name: layer for name, layer in net.items() if isinstance(layer, dict) and not name.startswith("#")}
    names = set(layers)
    reads_of = {name: reads(layer, names) - {name} for name, layer in layers.items()}
    readers: dict[str, set[str]] = {name: set() for name in names}
    for name, refs in reads_of.items():
        for ref in refs:
            readers[ref].add(name)
    # greatest fixpoint: drop a candidate while some reader of it is no candidate
    candidates = {n for n in names if n not in roots
                  and (_is_loss(layers[n]) or (readers[n] and not layers[n].get("is_output_layer")))}
    changed = True
    while changed:
        changed = False
        for name in sorted(candidates):
            if any(r not in candidates for r in readers[name]):
                candidates.discard(name)
                changed = True
    pass_through = {n: cat for n, layer in layers.items() if n not in roots
                    for cat in [_pass_through_category(layer, train_only)] if cat}
    shared: dict[str, set[str]] = {name: set() for name in names}
    for name, layer in layers.items():
        for other in shares_params_with(layer, names):
            shared[name].add(other)
            shared[other].add(name)
    return NetworkRoles(
        readers={n: frozenset(r) for n, r in readers.items()}, loss_only=frozenset(candidates),
        pass_through=pass_through, pass_inputs={n: frozenset(from_refs(layers[n].get("from"))) for n in pass_through},
        shared_params={n: frozenset(s) for n, s in shared.items() if s})


def eval_is_train_only(value: Any, function_train_only: Callable[[str], bool], function_names: set[str]) -> bool:
    """An `eval` value acts only in training: its text says so, or a config function it names does."""
    if is_function(value):
        return bool(value.get("train_only")) or function_train_only(value["__function__"])
    if isinstance(value, str):
        if TRAIN_ONLY.search(value):
            return True
        return any(function_train_only(name) for name in set(re.findall(r"[A-Za-z_]\w*", value)) & function_names)
    return False


def sub_network(layer: Any) -> dict | None:
    """The layers inside a rec unit or subnetwork layer, if it has them."""
    if not isinstance(layer, dict):
        return None
    for key in ("unit", "subnetwork"):
        if isinstance(layer.get(key), dict) and not is_function(layer[key]):
            return layer[key]
    return None
