"""Reproducibility lint: facts about a pair that make seed replicates meaningless or the comparison unfair.

Each check is a pure function of the two loaded snapshots (and the changes of their diff) that yields
`DiffWarning`s with a stable `code`, what was found and what to do. A per-side warning that both sides get
alike is reported once (side "both"). Codes:

- `accum-grad-nondeterministic`: `accum_grad_multiple_step > 1` with `behavior_version < 15`
- `seed-not-varied`: values that the per-replicate `random_seed` (set on RETURNN's command line) does not reach
- `seed-differs`: the sides set different `random_seed`s, which the replicates' seeds replace
- `data-order-not-seeded`: the train data is shuffled, and `random_seed` does not change its order
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
from knobs.values import comparable, is_function, show

ACCUM_FIXED_IN = 15  # RETURNN behavior version 15: global_train_step read deterministically (returnn#1205)
CUDNN_UNITS = frozenset({"cudnnlstm", "cudnngru", "cudnnrnnrelu", "cudnnrnntanh"})
CUDNN_LAYER_CLASSES = frozenset({"conv", "transposed_conv"})  # cuDNN convolution algorithms on GPU
DETERMINISM_VARS = ("TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC")  # the latter: TF < 2.1
SHUFFLED_ORDERINGS = ("random", "laplace", "shuffle")  # seq_ordering / batching values that shuffle
SIDES = ("orig", "start")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def accum_grad_order(config: LoadedConfig) -> Iterator[DiffWarning]:
    values = [config.value("accum_grad_multiple_step")]
    if config.per_epoch:
        values += [e["config"].get("accum_grad_multiple_step") for e in config.per_epoch["epochs"]]
    accum = [v for v in map(_int, values) if v and v > 1]
    version = _int(config.value("behavior_version")) or 0
    if accum and version < ACCUM_FIXED_IN:
        spelled = f"behavior_version = {version}" if version else "behavior_version unset"
        yield DiffWarning(
            "accum-grad-nondeterministic",
            f"accum_grad_multiple_step = {max(accum)} with {spelled} (< {ACCUM_FIXED_IN}): the order of the "
            "global-step increment and its read is not fixed (rwth-i6/returnn#1205), so the same seed does not "
            "give the same training (measured on the demo pair: 75.9 % and 99.4 % WER from one seed)",
            "seed replicates measure this noise too: train more seeds, or set behavior_version = "
            f"{ACCUM_FIXED_IN} on both sides (it changes other RETURNN defaults too: diff the result)")


def seed_not_varied(config: LoadedConfig) -> Iterator[DiffWarning]:
    """A replicate's seed is set on RETURNN's command line (`++random_seed N`) after the config ran: values the
    config computed from `random_seed` at load time, or a pretrain `#config` random_seed, keep the config's."""
    computed = sorted(name for name, entry in config.values.items()
                      if name != "random_seed" and "random_seed" in entry.get("refs", [])
                      and not is_function(entry["value"]))
    per_epoch = bool(config.per_epoch) and "random_seed" in config.per_epoch["override_keys"]
    if computed or per_epoch:
        where = " and ".join([", ".join(computed)] * bool(computed) + ["the pretrain #config"] * per_epoch)
        yield DiffWarning(
            "seed-not-varied",
            f"{where} uses random_seed at load time: a replicate's seed (set on the command line afterwards) "
            "does not reach it, so seed replicates share that randomness",
            "read random_seed at run time (in a function) or set the seeded values per replicate with --set; "
            "until then, the replicates' spread underestimates the seed noise")


def _cudnn_layers(net: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(layer path, kind) of the layers that run cuDNN kernels on a GPU, rec units and subnetworks included."""
    found: list[tuple[str, str]] = []
    for name, layer in (net.items() if isinstance(net, dict) else []):
        if not isinstance(layer, dict):
            continue
        if layer.get("class") in CUDNN_LAYER_CLASSES:
            found.append((prefix + name, "convolutions"))
        elif str(layer.get("unit", "")).lower() in CUDNN_UNITS:
            found.append((prefix + name, "cuDNN RNN units"))
        for sub in ("unit", "subnetwork"):
            found += _cudnn_layers(layer.get(sub), f"{prefix}{name}/")
    return found


def cudnn_nondeterministic(config: LoadedConfig) -> Iterator[DiffWarning]:
    if str(config.value("device", "gpu")).lower().startswith("cpu"):
        return
    net = config.per_epoch["networks"][-1] if config.per_epoch and config.per_epoch["networks"] \
        else config.value("network")
    found = _cudnn_layers(net)
    deterministic = any(config.environ.get(k, os.environ.get(k, "")).lower() in ("1", "true")
                        for k in DETERMINISM_VARS)
    if found and not deterministic:
        kinds = sorted({kind for _, kind in found})
        yield DiffWarning(
            "cudnn-nondeterministic",
            f"{len(found)} layers run cuDNN kernels on a GPU ({', '.join(kinds)}; e.g. {found[0][0]}) and "
            "TF_DETERMINISTIC_OPS is not set (not in the config, not in this shell): cuDNN may pick "
            "non-deterministic algorithms, so one seed does not give one result",
            "set TF_DETERMINISTIC_OPS=1 in the training environment (`env` of an environment file, or "
            "os.environ in the config) so that seed replicates measure seed noise only")


SIDE_CHECKS = (accum_grad_order, seed_not_varied, cudnn_nondeterministic)


def _changed(changes: list[Change], key: str) -> list[Change]:
    return [c for c in changes if c.parts and str(c.parts[0]) == key]


def _shuffled(config: LoadedConfig) -> bool:
    train = config.value("train")
    ordering = train.get("seq_ordering") if isinstance(train, dict) else None
    ordering = ordering or config.value("batching")
    return isinstance(ordering, str) and any(word in ordering for word in SHUFFLED_ORDERINGS)


def seeds(orig: LoadedConfig, start: LoadedConfig) -> Iterator[DiffWarning]:
    """What a seed replicate (`++random_seed N`, runner/steps.py) does and does not vary."""
    spelled = [cfg.value("random_seed") for cfg in (orig, start)]
    if comparable(spelled[0]) != comparable(spelled[1]):
        yield DiffWarning(
            "seed-differs",
            f"random_seed {show(spelled[0])} vs {show(spelled[1])}: every replicate sets its own random_seed on "
            "RETURNN's command line, which replaces both, so no hybrid tests this difference",
            "nothing to do for the bisection; compare the original trainings' seeds only through replicates")
    shuffled = [side for side, cfg in zip(SIDES, (orig, start), strict=True) if _shuffled(cfg)]
    if shuffled:
        yield DiffWarning(
            "data-order-not-seeded",
            f"the train data is shuffled ({', '.join(shuffled)}), but RETURNN seeds the data order with the epoch "
            "and dataset_random_seed_offset, not random_seed (datasets/basic.py:Dataset._get_random_seed_for_epoch):"
            " seed replicates vary initialization, dropout and augmentation, never the data order",
            "to include data-order noise, give each replicate its own dataset_random_seed_offset as well; else "
            "read the seed spread as a lower bound")


def pair_differences(orig: LoadedConfig, start: LoadedConfig, changes: list[Change]) -> Iterator[DiffWarning]:
    """What makes the two trainings incomparable beyond the knobs: length, train data, dev data."""
    for change in _changed(changes, "num_epochs"):
        yield DiffWarning(
            "training-length-differs",
            f"num_epochs {show(change.orig)} vs {show(change.start)}: the sides train for different lengths",
            "compare at equal length first (switch training-length, or --epochs N) before attributing the gap "
            "to other knobs")
    train = _changed(changes, "train")
    if train:
        yield DiffWarning(
            "train-data-differs", f"the train datasets differ ({', '.join(c.path for c in train[:3])}): part of "
            "the gap can be the data", "bisect with data as a knob (switch it first), or give both sides the "
            "same train set")
    dev = _changed(changes, "dev") + _changed(changes, "eval_datasets")
    if dev:
        yield DiffWarning(
            "dev-data-differs",
            f"the dev/eval data differ ({', '.join(c.path for c in dev[:3])}): scores on them are not "
            "comparable, and a gap measured there is not a model gap",
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


def _per_side(orig: LoadedConfig, start: LoadedConfig) -> list[DiffWarning]:
    found = {side: list(w for check in SIDE_CHECKS for w in check(cfg))
             for side, cfg in zip(SIDES, (orig, start), strict=True)}
    both = [w for w in found["orig"] if w in found["start"]]
    return [DiffWarning(w.code, w.message, w.advice, "both") for w in both] + [
        DiffWarning(w.code, w.message, w.advice, side) for side in SIDES for w in found[side] if w not in both]


def lint(orig: LoadedConfig, start: LoadedConfig, changes: list[Change]) -> list[DiffWarning]:
    """Every reproducibility warning of the pair: per side first, then the pair's."""
    return _per_side(orig, start) + list(seeds(orig, start)) + list(pair_differences(orig, start, changes))
