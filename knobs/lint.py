"""Reproducibility lint: facts about a pair that make seed replicates meaningless or the comparison unfair.

Each check is a pure function of the two loaded snapshots (and the changes of their diff) that returns
`DiffWarning`s with a stable `code`, what was found and what to do. Codes:

- `accum-grad-nondeterministic`: `accum_grad_multiple_step > 1` with `behavior_version < 15`
- `seed-not-varied`: values that the per-seed `random_seed` of a replicate does not reach
- `cudnn-nondeterministic`: cuDNN-backed layers on GPU without `TF_DETERMINISTIC_OPS=1`
- `training-length-differs`, `train-data-differs`, `dev-data-differs`: the sides do not train or score alike
- `newbob-on-different-dev`: newbob LR control reacting to dev scores that differ per side
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from knobs.loader import LoadedConfig
from knobs.records import Change, DiffWarning
from knobs.values import show

ACCUM_FIXED_IN = 15  # RETURNN behavior version 15: global_train_step read deterministically (returnn#1205)
CUDNN_UNITS = frozenset({"cudnnlstm", "cudnngru", "cudnnrnnrelu", "cudnnrnntanh"})
CUDNN_LAYER_CLASSES = frozenset({"conv", "transposed_conv"})  # cuDNN convolution algorithms on GPU
SIDES = ("orig", "start")
DETERMINISM_VARS = ("TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC")  # the latter: TF < 2.1


def _behavior_version(config: LoadedConfig) -> int:
    value = config.value("behavior_version")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _accum_steps(config: LoadedConfig) -> list[int]:
    """Every `accum_grad_multiple_step` the config trains with (static value and pretrain `#config`)."""
    values = [config.value("accum_grad_multiple_step")]
    if config.per_epoch:
        values += [e["config"].get("accum_grad_multiple_step") for e in config.per_epoch["epochs"]]
    return sorted({v for v in values if isinstance(v, int) and not isinstance(v, bool)})


def accum_grad_order(side: str, config: LoadedConfig) -> Iterator[DiffWarning]:
    accum = [v for v in _accum_steps(config) if v > 1]
    version = _behavior_version(config)
    if accum and version < ACCUM_FIXED_IN:
        spelled = f"behavior_version = {version}" if version else "behavior_version unset"
        yield DiffWarning(
            "accum-grad-nondeterministic",
            f"accum_grad_multiple_step = {max(accum)} with {spelled} (< {ACCUM_FIXED_IN}): the order of the "
            "global-step increment and its read is not fixed (rwth-i6/returnn#1205), so the same seed does not "
            "give the same training (measured on the demo pair: 75.9 % and 99.4 % WER from one seed)",
            f"seed replicates of {side} measure this noise too: train more seeds, or set behavior_version = "
            f"{ACCUM_FIXED_IN} on both sides (it changes other RETURNN defaults too: diff the result)", side)


def seed_not_varied(side: str, config: LoadedConfig) -> Iterator[DiffWarning]:
    """A replicate's seed is set on RETURNN's command line (`++random_seed N`) after the config ran: values the
    config computed from `random_seed` at load time, or a pretrain `#config` random_seed, keep the config's."""
    computed = sorted(name for name, entry in config.values.items()
                      if name != "random_seed" and "random_seed" in entry.get("refs", [])
                      and not (isinstance(entry["value"], dict) and "__function__" in entry["value"]))
    per_epoch = bool(config.per_epoch) and "random_seed" in config.per_epoch["override_keys"]
    if computed or per_epoch:
        where = ", ".join(computed) + (" and " if computed and per_epoch else "") \
            + ("the pretrain #config" if per_epoch else "")
        yield DiffWarning(
            "seed-not-varied",
            f"{where} uses random_seed at load time: a replicate's seed (set on the command line afterwards) "
            "does not reach it, so seed replicates share that randomness",
            "read random_seed at run time (in a function) or set the seeded values per replicate with --set; "
            "until then, the replicates' spread underestimates the seed noise", side)


def _cudnn_layers(net: Any, found: list[str], prefix: str = "") -> None:
    if not isinstance(net, dict):
        return
    for name, layer in net.items():
        if not isinstance(layer, dict):
            continue
        if layer.get("class") in CUDNN_LAYER_CLASSES or str(layer.get("unit", "")).lower() in CUDNN_UNITS:
            found.append(prefix + name)
        for sub in ("unit", "subnetwork"):
            _cudnn_layers(layer.get(sub), found, f"{prefix}{name}/")


def cudnn_nondeterministic(side: str, config: LoadedConfig) -> Iterator[DiffWarning]:
    if str(config.value("device", "gpu")).lower().startswith("cpu"):
        return
    found: list[str] = []
    nets = config.per_epoch["networks"][-1:] if config.per_epoch else [config.value("network")]
    for net in nets:
        _cudnn_layers(net, found)
    deterministic = [config.environ.get(k, os.environ.get(k, "")).lower() in ("1", "true") for k in DETERMINISM_VARS]
    if found and not any(deterministic):
        listed = ", ".join(found[:4]) + (f" (+{len(found) - 4} more)" if len(found) > 4 else "")
        yield DiffWarning(
            "cudnn-nondeterministic",
            f"cuDNN-backed layers ({listed}) train on GPU without TF_DETERMINISTIC_OPS=1: cuDNN may pick "
            "non-deterministic kernels, so one seed does not give one result",
            "set TF_DETERMINISTIC_OPS=1 in the training environment (`env` of an environment file, or "
            "os.environ in the config) so that seed replicates measure seed noise only", side)


def _changed(changes: list[Change], key: str) -> list[Change]:
    return [c for c in changes if c.parts and str(c.parts[0]) == key]


def pair_differences(orig: LoadedConfig, start: LoadedConfig, changes: list[Change]) -> Iterator[DiffWarning]:
    """What makes the two trainings incomparable beyond the knobs: length, train data, dev data."""
    for change in _changed(changes, "num_epochs"):
        yield DiffWarning(
            "training-length-differs",
            f"num_epochs {show(change.orig)} vs {show(change.start)}: the sides train for different lengths",
            "compare at equal length first (switch training-length, or --epochs N) before attributing the gap "
            "to other knobs")
    if _changed(changes, "train"):
        yield DiffWarning(
            "train-data-differs", "the train datasets differ: part of the gap can be the data",
            "bisect with data as a knob (switch it first), or give both sides the same train set")
    dev = _changed(changes, "dev") + _changed(changes, "eval_datasets")
    if dev:
        yield DiffWarning(
            "dev-data-differs",
            f"the dev/eval data differ ({', '.join(sorted({str(c.parts[0]) for c in dev}))}): scores on them are "
            "not comparable, and a gap measured there is not a model gap",
            "score both sides on the same test data (run --vocab/--refs) and compare those WERs")
    newbob = [side for side, cfg in zip(SIDES, (orig, start), strict=True)
              if str(cfg.value("learning_rate_control", "constant")).startswith("newbob")]
    measure = _changed(changes, "learning_rate_control_error_measure")
    if newbob and (dev or measure):
        why = "dev data" if dev else "error measure"
        yield DiffWarning(
            "newbob-on-different-dev",
            f"newbob LR control ({', '.join(newbob)}) lowers the learning rate on dev scores, and the {why} "
            "differs per side: the learning-rate schedules react to different numbers",
            "give both sides the same dev set and error measure, or compare the learning-rate files "
            "(config-bisect curves) to see whether the schedules part")


SIDE_CHECKS = (accum_grad_order, seed_not_varied, cudnn_nondeterministic)


def lint(orig: LoadedConfig, start: LoadedConfig, changes: list[Change]) -> list[DiffWarning]:
    """Every reproducibility warning of the pair: per side first, then the pair's."""
    warnings = [w for check in SIDE_CHECKS for side, cfg in zip(SIDES, (orig, start), strict=True)
                for w in check(side, cfg)]
    return warnings + list(pair_differences(orig, start, changes))
