"""Decide what a hybrid must set: which top-level keys, which donor code, which per-epoch values.

Pure functions over the two loaded snapshots and their knob diff. A hybrid takes its base config as it
is and switches the knobs in S to the donor's values: top-level keys are assigned (as Python literals
when they round-trip, else the donor's code carried in a private module), and everything RETURNN
varies per epoch (the scheduled learning rate, `#config` values, the network) is switched epoch by
epoch on top of the base's own pretraining.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import UserError
from knobs.config_code import builder_inputs
from knobs.diff import (
    ABSENT,
    Change,
    Classifier,
    PairDiff,
    comparable,
    is_tagged,
    network_builders,
    tree_changes,
    value_at,
)
from knobs.group import NO_EFFECT
from knobs.loader import LoadedConfig
from knobs.normalize import LR_INPUT_KEYS, OPTIMIZER_KEYS
from knobs.rules import RuleTable

DIRECTIONS = ("knock-in", "knock-out")
LR_CONTROL_ALWAYS = "use_learning_rate_control_always"
DELETE = "<config-bisect: delete>"  # same marker as interpolate/hybrid_runtime.py
PER_EPOCH_PATHS = ("learning_rate", "pretrain.rebuild")


@dataclass(frozen=True)
class HybridRequest:
    """Switch `knobs` in the base. knock-in: base = start, donor = orig; knock-out: base = orig, donor = start."""

    knobs: frozenset[str]
    direction: str

    @property
    def base_side(self) -> str:
        return "start" if self.direction == "knock-in" else "orig"

    @property
    def donor_side(self) -> str:
        return "orig" if self.direction == "knock-in" else "start"


@dataclass
class PerEpochPlan:
    num_epochs: int
    num_pretrain: int
    overrides: list[tuple[list[int] | None, list, str]]  # (epochs, network path, value source)
    final_overrides: list[tuple[None, list, str]]
    config_table: dict[int, dict[str, str]]  # epoch -> {#config key: value source}
    stage_of_epoch: dict[int, int | None]
    pretrain_options: dict[str, str]
    base_builders: list[str]  # base functions that only built its per-epoch networks, and their inputs


@dataclass
class HybridPlan:
    request: HybridRequest
    base: LoadedConfig
    donor: LoadedConfig
    assignments: list[tuple[str, str | None]] = field(default_factory=list)  # None: delete the key
    verbatim: list[str] = field(default_factory=list)  # donor statements that failed there too
    donor_names: set[str] = field(default_factory=set)  # donor values the private module defines
    per_epoch: PerEpochPlan | None = None


class PlanError(UserError):
    """A hybrid that cannot be written as requested."""


def validate_request(diff: PairDiff, request: HybridRequest) -> None:
    if request.direction not in DIRECTIONS:
        raise PlanError(f"unknown direction {request.direction!r} (use {' or '.join(DIRECTIONS)})")
    names = {k.name for k in diff.knobs}
    unknown = sorted(set(request.knobs) - names)
    if unknown:
        raise PlanError(f"no such knob: {', '.join(unknown)} (the pair differs in: {', '.join(sorted(names))})")
    for name in sorted(request.knobs):
        knob = diff.knob(name)
        if name in NO_EFFECT:
            raise PlanError(f"knob {name} has no effect on results and is never switched")
        missing = sorted(set(knob.coupled_with) - set(request.knobs))
        if missing:
            reasons = "; ".join(knob.coupling)
            raise PlanError(f"knob {name} is coupled with {', '.join(missing)} ({reasons}): switch them together")


def _top_key(change: Change) -> str:
    return str(change.parts[0]) if change.parts else change.path.split(".")[0]


def _is_per_epoch(change: Change, per_epoch_keys: set[str]) -> bool:
    return change.path in PER_EPOCH_PATHS or change.path.startswith("network") or _top_key(change) in per_epoch_keys


def value_source(value: Any, plan: HybridPlan, origin: str) -> str:
    """Python source for an encoded value; donor functions come from the private module `_cb`."""
    if value is ABSENT:
        return repr(DELETE)
    if isinstance(value, dict):
        if "__function__" in value:
            name = value["__function__"]
            if origin == "donor":
                plan.donor_names.add(name)
                return f"_cb.{name}"
            return name
        if "__float__" in value:
            return f'float("{value["__float__"]}")'
        if "__unresolved__" in value or "__object__" in value or "__imported__" in value:
            raise PlanError(f"cannot write {json.dumps(value)[:80]} into a hybrid (not a literal, not config code)")
        return "{" + ", ".join(f"{k!r}: {value_source(v, plan, origin)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_source(v, plan, origin) for v in value) + "]"
    return repr(value)


def _static_keys(changes: list[Change], knobs: frozenset[str], base: LoadedConfig, donor: LoadedConfig,
                 rules: RuleTable, per_epoch_keys: set[str]) -> list[str]:
    keys: set[str] = set()
    for change in changes:
        top = _top_key(change)
        if change.path == "pretrain.rebuild" or change.path.startswith("network") or top == "pretrain":
            continue
        if top == "optimizer":
            keys.update(OPTIMIZER_KEYS)
        elif change.path == "learning_rate":
            keys.update(LR_INPUT_KEYS)
        else:
            keys.add(top)
    if "lr" in knobs:  # everything the LR schedule is computed from
        keys.update(k for cfg in (base, donor) for k in cfg.values if rules.key_category(k) == "lr")
        keys.update(LR_INPUT_KEYS)
    keys.update(k for k in per_epoch_keys if rules.key_category(k) in knobs)
    return sorted(k for k in keys if k in base.values or k in donor.values)


def plan_hybrid(diff: PairDiff, orig: LoadedConfig, start: LoadedConfig, request: HybridRequest,
                rules: RuleTable) -> HybridPlan:
    validate_request(diff, request)
    base, donor = (start, orig) if request.base_side == "start" else (orig, start)
    if base.format != "py":
        raise PlanError(f"the base {base.path} is a {base.format} config; a hybrid's overrides need a Python config")
    plan = HybridPlan(request, base, donor)
    changes = [c for k in diff.knobs if k.name in request.knobs for c in k.changes]
    per_epoch_keys = {k for cfg in (base, donor) if cfg.per_epoch for k in cfg.per_epoch["override_keys"]}
    for key in _static_keys(changes, request.knobs, base, donor, rules, per_epoch_keys):
        entry = donor.values.get(key)
        if entry is None:
            plan.assignments.append((key, None))
        elif "__unresolved__" in (entry["value"] if isinstance(entry["value"], dict) else {}):
            plan.verbatim.append(entry["source"])
        elif entry.get("literal") is not None:
            plan.assignments.append((key, entry["literal"]))
        else:
            plan.assignments.append((key, value_source(entry["value"], plan, "donor")))
    if "lr" in request.knobs and "pretrain" not in request.knobs and _pretrains(base) and not _pretrains(donor):
        # without pretraining the donor applies LR control in every epoch; under the base's pretraining only
        # this setting does so (knobs.normalize.fold_pretrain_only_keys)
        plan.assignments = [(k, v) for k, v in plan.assignments if k != LR_CONTROL_ALWAYS]
        plan.assignments.append((LR_CONTROL_ALWAYS, "True"))
    # lr: the donor's schedule may live in #config learning rates; pretrain is per epoch by nature
    if any(_is_per_epoch(c, per_epoch_keys) for c in changes) or {"lr", "pretrain"} & request.knobs:
        plan.per_epoch = plan_per_epoch(plan, changes, rules, per_epoch_keys)
    return plan


def _pretrains(config: LoadedConfig) -> bool:
    return bool(config.per_epoch and config.per_epoch["num_pretrain_epochs"]) or bool(config.value("pretrain"))


def _epoch_record(config: LoadedConfig, epoch: int) -> dict:
    epochs = config.per_epoch["epochs"]
    return epochs[min(epoch, len(epochs)) - 1]


def _net(config: LoadedConfig, epoch: int) -> dict:
    return config.per_epoch["networks"][_epoch_record(config, epoch)["net"]]


def plan_per_epoch(plan: HybridPlan, changes: list[Change], rules: RuleTable, per_epoch_keys: set[str]
                   ) -> PerEpochPlan:
    base, donor, knobs = plan.base, plan.donor, plan.request.knobs
    if not (base.per_epoch and donor.per_epoch):
        raise PlanError("the per-epoch view of a config is missing (see the diff's warnings): "
                        f"cannot switch {', '.join(sorted(knobs))} epoch by epoch")
    num_epochs = (donor if "training-length" in knobs else base).per_epoch["num_epochs"]
    # the donor values of every switched network path, per epoch
    classifier = Classifier(rules, (base, donor))
    base_final = _net(base, num_epochs)
    # pretrain switched to a donor without pretraining: the base's final network from epoch 1 on; the
    # pretrain-only paths (the base's stages against the donor's final network) then have nothing to switch
    flat = "pretrain" in knobs and not donor.per_epoch["num_pretrain_epochs"]

    def base_net(epoch: int) -> dict:
        return base_final if flat else _net(base, epoch)

    overrides: list[tuple[list[int] | None, list, str]] = []
    encoded_overrides: list[tuple[list[int] | None, list, Any]] = []
    for change in changes:
        if not change.path.startswith("network") or (flat and change.category == "pretrain"):
            continue
        parts = change.parts[1:]
        by_value: dict[str, tuple[Any, list[int]]] = {}
        epochs = _override_epochs(change, parts, base_net, donor, num_epochs)
        if flat:  # the donor's value of the final epoch holds in every epoch
            epochs = list(range(1, num_epochs + 1)) if num_epochs in epochs else []
        for epoch in epochs:
            _check_parent(base_net(epoch), parts, epoch, change.path)
            value = value_at(_net(donor, _donor_epoch_with(donor, parts, epoch, num_epochs)), parts)
            value = _keep_unswitched(value, value_at(base_final, parts), parts, knobs, classifier)
            by_value.setdefault(value_source(value, plan, "donor"), (value, []))[1].append(epoch)
        for source, (value, value_epochs) in by_value.items():
            every = change.epochs is None and len(value_epochs) == num_epochs
            overrides.append((None if every else value_epochs, parts, source))
            encoded_overrides.append((None if every else value_epochs, parts, value))
    # the #config values and the scheduled learning rate, per epoch, each from the side whose knob it is
    config_table: dict[int, dict[str, str]] = {}
    lr_side = donor if "lr" in knobs else base
    for epoch in range(1, num_epochs + 1):
        entry: dict[str, str] = {}
        for key in sorted(per_epoch_keys):
            side = donor if rules.key_category(key) in knobs else base
            record = _epoch_record(side, epoch)
            if key in record["config"] and key in record.get("config_literals", {}):
                literal = record["config_literals"][key]
                if literal is None:
                    raise PlanError(f"#config {key} of epoch {epoch} is not a Python literal")
                entry[key] = literal
        lr = _epoch_record(lr_side, epoch)["config_learning_rate"]
        if lr is not None:
            entry["learning_rate"] = repr(lr)
        if entry:
            config_table[epoch] = entry
    schedule_side = donor if "pretrain" in knobs else base
    stage, stage_of_epoch = 0, {}
    for epoch in range(1, num_epochs + 1):
        stage += bool(_epoch_record(schedule_side, epoch)["rebuild"])
        stage_of_epoch[epoch] = stage
    final_stage = stage_of_epoch[num_epochs]
    stage_of_epoch = {e: (None if s == final_stage else s) for e, s in stage_of_epoch.items()}
    final_overrides = [(None, parts, source) for epochs, parts, source in overrides
                       if epochs is None or num_epochs in epochs]
    num_pretrain = _num_pretrain(schedule_side, num_epochs, encoded_overrides, config_table, stage_of_epoch, base_net)
    pretrain = (donor if "pretrain" in knobs else base).value("pretrain")
    options = {k: value_source(v, plan, "donor" if "pretrain" in knobs else "base")
               for k, v in (pretrain.items() if isinstance(pretrain, dict) else [])
               if k not in ("construction_algo", "repetitions")}
    return PerEpochPlan(num_epochs, num_pretrain, overrides, final_overrides, config_table, stage_of_epoch,
                        options, sorted(network_builders(base) | builder_inputs(base, rules.key_category)))


def _has_parent(net: dict, parts: list) -> bool:
    node = net
    for key in parts[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return isinstance(node, dict)


def _override_epochs(change: Change, parts: list, base_net: Callable[[int], dict], donor: LoadedConfig,
                     num_epochs: int) -> list[int]:
    """The change's epochs, plus the epochs in which the donor lacks the layer (its pretrain has not grown
    it yet) while the base has it: there the layer gets the donor's final value of a switched attribute."""
    epochs = [e for e in change.epoch_list(num_epochs) if e <= num_epochs]
    if num_epochs in epochs:
        epochs += [e for e in range(1, num_epochs + 1) if e not in epochs
                   and not _has_parent(_net(donor, e), parts) and _has_parent(base_net(e), parts)]
    return sorted(epochs)


def _donor_epoch_with(donor: LoadedConfig, parts: list, epoch: int, num_epochs: int) -> int:
    """`epoch` if the donor network has the parent of `parts` then, else the final epoch."""
    return epoch if _has_parent(_net(donor, epoch), parts) else num_epochs


def _keep_unswitched(donor_value: Any, base_value: Any, parts: list, knobs: frozenset[str],
                     classifier: Classifier) -> Any:
    """A donor subtree (e.g. a layer that pretraining adds) with the base's values for every inner
    difference that belongs to a knob not switched (its L2 stays the base's unless l2 is switched)."""
    if not isinstance(donor_value, dict) or not isinstance(base_value, dict) or is_tagged(donor_value):
        return donor_value
    merged = copy.deepcopy(donor_value)
    for inner, _, base_inner in tree_changes(donor_value, base_value):
        category = classifier.network_path(["network", *parts, *inner], pretrain_only=False)
        if category not in knobs and inner:
            node = merged
            for key in inner[:-1]:
                node = node[key]
            if base_inner is ABSENT:
                node.pop(inner[-1], None)
            else:
                node[inner[-1]] = base_inner
    return merged


def _check_parent(base_net: dict, parts: list, epoch: int, path: str) -> None:
    node = base_net
    for key in parts[:-1]:
        if not isinstance(node, dict) or key not in node:
            raise PlanError(f"cannot switch {path} in epoch {epoch}: the base network has no {key!r} there")
        node = node[key]


def composite_network(base_net: dict, epoch: int, overrides: list[tuple[list[int] | None, list, Any]]) -> dict:
    """The hybrid's (encoded) network of `epoch`: the base's (`base_net`), with the switched paths set to the
    donor's."""
    net = copy.deepcopy(base_net)
    for epochs, parts, value in overrides:
        if (epochs is None or epoch in epochs) and _has_parent(net, parts):  # as hybrid_runtime.set_path
            node = net
            for key in parts[:-1]:
                node = node[key]
            if value is ABSENT:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
    return net


def _num_pretrain(schedule_side: LoadedConfig, num_epochs: int, overrides: list, config_table: dict,
                  stage_of_epoch: dict, base_net: Callable[[int], dict]) -> int:
    """Pretrain epochs of the hybrid: the scheduling side's, extended to the last epoch whose network or
    #config differs from the final one (the last pretrain epoch is the final network itself)."""
    num = min(schedule_side.per_epoch["num_pretrain_epochs"], num_epochs)

    def key(epoch: int) -> str:
        return json.dumps(comparable(composite_network(base_net(epoch), epoch, overrides)), sort_keys=True)

    final = key(num_epochs)
    for epoch in range(num_epochs, 0, -1):
        if epoch in config_table or stage_of_epoch[epoch] is not None or key(epoch) != final:
            return max(num, min(epoch + 1, num_epochs))
    return num
