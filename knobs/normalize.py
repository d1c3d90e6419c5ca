"""Fold spellings that RETURNN treats the same into one canonical form before diffing.

Each rule cites the RETURNN code that makes the spellings equivalent. A rule takes the static values of
both sides and returns them rewritten, plus a note for every difference it set aside.
"""

from __future__ import annotations

import copy
import json
from typing import Any

# tf/updater.py:Updater._create_default_optimizer, checked in this order when `optimizer` is unset.
_LEGACY_FLAGS = ("adam", "nadam", "adadelta", "adagrad", "rmsprop", "momentum")
OPTIMIZER_KEYS = ("optimizer", "optimizer_epsilon", *_LEGACY_FLAGS)
# optimizer classes whose constructor takes `epsilon` (filled from `optimizer_epsilon`, default 1e-16)
_EPSILON_CLASSES = {"adam", "nadam", "adadelta", "adagrad", "rmsprop"}
DEFAULT_OPTIMIZER_EPSILON = 1e-16
LR_INPUT_KEYS = ("learning_rate", "learning_rates", "pretrain_learning_rate")
_PRETRAIN_LEGACY = {"pretrain_copy_output_layer": "copy_output_layer", "pretrain_greedy": "greedy",
                    "pretrain_repetitions": "repetitions", "pretrain_construction_algo": "construction_algo"}
# Values RETURNN uses when a key is not set (read with these defaults in tf/updater.py, tf/engine.py,
# engine/base.py, learning_rate_control.py). A key set to its default equals the key not set.
DEFAULTS: dict[str, Any] = {
    "gradient_clip": 0.0, "gradient_clip_global_norm": 0.0, "gradient_noise": 0.0,
    "accum_grad_multiple_step": 1, "max_seqs": -1, "batch_size": 1, "max_seq_length": None,
    "stop_on_nonfinite_train_score": True, "num_epochs": 5,
    "learning_rate_control": "constant", "learning_rate_control_relative_error_relative_lr": False,
    "learning_rate_control_min_num_epochs_per_new_lr": 0, "use_learning_rate_control_always": False,
    "min_learning_rate": 0.0, "newbob_learning_rate_decay": 0.5, "newbob_multi_num_epochs": 5,
    # tf/updater.py:Updater.__init__, Updater._post_process_grad; tf/engine.py:Engine.init_train_from_config
    "decouple_constraints": False, "gradient_clip_norm": 0.0, "gradient_clip_avg_norm": 0.0,
    "shuffle_batches": False, "save_interval": 1,
}
_RENAMED = {"learning_rate_decay": "newbob_learning_rate_decay",
            "learning_rate_growth": "newbob_learning_rate_growth"}


def _class_name(name: str) -> str:
    name = name.lower()
    return name[: -len("optimizer")] if name.endswith("optimizer") and name != "optimizer" else name


def canonical_optimizer(values: dict[str, Any]) -> dict[str, Any]:
    """The optimizer RETURNN builds, as a dict (tf/updater.py:Updater._create_default_optimizer)."""
    epsilon = values.get("optimizer_epsilon", DEFAULT_OPTIMIZER_EPSILON)
    opt = values.get("optimizer")
    if isinstance(opt, dict) and "class" in opt:
        result = {k: v for k, v in opt.items() if k != "class"}
        cls = _class_name(str(opt["class"]))
        result["class"] = cls
        if cls in _EPSILON_CLASSES:
            result.setdefault("epsilon", epsilon)
        return result
    if values.get("adam"):
        return {"class": "adam", "epsilon": epsilon}
    if values.get("nadam"):
        # `nadam = True` takes the contrib/Keras path, not RETURNN's NadamOptimizer used by the dict.
        return {"class": "nadam (legacy flag: contrib/Keras Nadam)", "epsilon": epsilon}
    if values.get("adadelta"):
        return {"class": "adadelta", "epsilon": epsilon}
    if values.get("adagrad"):
        return {"class": "adagrad", "epsilon": epsilon}
    rmsprop = values.get("rmsprop")
    if isinstance(rmsprop, float) and not isinstance(rmsprop, bool):
        return {"class": "rmsprop", "decay": rmsprop, "epsilon": epsilon}
    if rmsprop:
        return {"class": "rmsprop", "epsilon": epsilon}
    if values.get("momentum"):
        return {"class": "momentum", "momentum": values["momentum"]}
    return {"class": "gradientdescent"}


def _spelled(values: dict[str, Any], keys: tuple[str, ...]) -> str:
    parts = [f"{k} = {json.dumps(values[k])}" for k in keys if k in values]
    return ", ".join(parts) or "(not set)"


def fold_optimizer(orig: dict, start: dict, notes: list[dict]) -> None:
    spelled = [_spelled(side, OPTIMIZER_KEYS) for side in (orig, start)]
    canon = [canonical_optimizer(side) for side in (orig, start)]
    for side, value in zip((orig, start), canon, strict=True):
        for key in OPTIMIZER_KEYS:
            side.pop(key, None)
        side["optimizer"] = value
    if spelled[0] != spelled[1] and canon[0] == canon[1]:
        notes.append({"what": "optimizer", "orig": spelled[0], "start": spelled[1],
                      "why": "RETURNN builds the same optimizer from both spellings "
                             "(tf/updater.py:Updater._create_default_optimizer)"})


def fold_max_seq_length(orig: dict, start: dict, notes: list[dict]) -> None:
    spelled = [side.get("max_seq_length") for side in (orig, start)]
    for side in (orig, start):
        value = side.get("max_seq_length")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            side["max_seq_length"] = {"classes": -value}
    if spelled[0] != spelled[1] and orig.get("max_seq_length") == start.get("max_seq_length"):
        notes.append({"what": "max_seq_length", "orig": json.dumps(spelled[0]), "start": json.dumps(spelled[1]),
                      "why": "a negative int means {'classes': n} (tf/engine.py:Engine.init_train_from_config)"})


def fold_renamed_and_pretrain(side: dict) -> None:
    for old, new in _RENAMED.items():
        if old in side:
            side.setdefault(new, side.pop(old))
    pretrain = side.get("pretrain")
    if pretrain is True or pretrain == "default":
        side["pretrain"] = {}
    if isinstance(side.get("pretrain"), dict):
        for old, new in _PRETRAIN_LEGACY.items():
            if old in side:
                side["pretrain"].setdefault(new, side.pop(old))


def fold_defaults(orig: dict, start: dict, notes: list[dict]) -> set[tuple[str, str]]:
    """A key set on one side only is compared with RETURNN's default; returns the (side, key) filled in."""
    filled: set[tuple[str, str]] = set()
    for side in (orig, start):
        if side.get("accum_grad_multiple_step") == 0:  # 0 and 1 both mean no accumulation
            side["accum_grad_multiple_step"] = 1
    for key, default in DEFAULTS.items():
        if (key in orig) == (key in start):
            continue
        name, missing, present = ("orig", orig, start) if key not in orig else ("start", start, orig)
        if present[key] == default:
            unset = f"(not set: default {json.dumps(default)})"
            notes.append({"what": key, "orig": json.dumps(orig[key]) if key in orig else unset,
                          "start": json.dumps(start[key]) if key in start else unset,
                          "why": "one side sets RETURNN's default, the other leaves it unset"})
            del present[key]
        else:
            missing[key] = default
            filled.add((name, key))
    return filled


def _no_pretrain(values: dict) -> bool:
    return values.get("pretrain") in (None, False, "")  # a dict, even emptied of its function, is a pretrain


def fold_pretrain_only_keys(orig: dict, start: dict, notes: list[dict]) -> None:
    """`use_learning_rate_control_always` only decides the LR of pretrain epochs (tf/engine.py:
    Engine.init_train_epoch): a side without pretraining schedules every epoch by LR control, as if it were
    True. Compared so when only the other side pretrains."""
    key = "use_learning_rate_control_always"
    for side, other in ((orig, start), (start, orig)):
        if _no_pretrain(side) and not _no_pretrain(other) and not side.get(key) and other.get(key):
            notes.append({"what": key, "orig": json.dumps(orig.get(key)), "start": json.dumps(start.get(key)),
                          "why": "the side without pretraining applies LR control in every epoch anyway"})
            side[key] = other[key]


def normalize_static(orig: dict, start: dict) -> tuple[dict, dict, list[dict], set[tuple[str, str]]]:
    """Canonical static values of both sides, notes on what was set aside as equivalent, and the
    (side, key) pairs whose value is RETURNN's default because the side does not set it."""
    orig, start = copy.deepcopy(orig), copy.deepcopy(start)
    notes: list[dict] = []
    fold_optimizer(orig, start, notes)
    fold_max_seq_length(orig, start, notes)
    fold_pretrain_only_keys(orig, start, notes)
    for side in (orig, start):
        fold_renamed_and_pretrain(side)
    filled = fold_defaults(orig, start, notes)
    return orig, start, notes, filled
