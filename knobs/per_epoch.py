"""The per-epoch view: what RETURNN varies per epoch (scheduled learning rate, pretrain `#config` values,
network rebuilds, the network itself), compared epoch by epoch and reported as epoch ranges."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from knobs.classify import Classifier, Verdict, attribute_parts
from knobs.loader import LoadedConfig
from knobs.network_spelling import WHY, canonical_network, spelled_alike
from knobs.normalize import DEFAULTS, LR_INPUT_KEYS
from knobs.records import Change
from knobs.values import ABSENT, comparable, epoch_ranges, format_path, show, tree_changes, value_at

STAGE_NOTE = "a pretrain stage: the final networks agree on this layer"
REBUILD_NOTE = "true: the network is rebuilt at the start of the epoch (parameters copied, optimizer state reset)"
MAX_PIECES_PER_RUN = 3

EpochValues = dict[int, tuple[Any, Any]]  # epoch -> (orig value, start value)


def _runs(by_epoch: EpochValues) -> list[list[int]]:
    """Runs of consecutive epochs in which the two values differ."""
    runs: list[list[int]] = []
    for epoch in sorted(by_epoch):
        o, s = by_epoch[epoch]
        if comparable(o) == comparable(s):
            continue
        if runs and runs[-1][-1] == epoch - 1:
            runs[-1].append(epoch)
        else:
            runs.append([epoch])
    return runs


def _constant_pieces(run: list[int], by_epoch: EpochValues) -> list[list[int]]:
    pieces: list[list[int]] = []
    previous = None
    for epoch in run:
        key = json.dumps([comparable(v) for v in by_epoch[epoch]], sort_keys=True, default=str)
        if key != previous:
            pieces.append([])
            previous = key
        pieces[-1].append(epoch)
    return pieces


def _values(epochs: list[int], by_epoch: EpochValues) -> tuple[Any, Any, bool]:
    """One value pair when it is the same in all `epochs`, else per-epoch lists (a warmup, a growing layer);
    the flag says which."""
    keys = {json.dumps([comparable(v) for v in by_epoch[e]], sort_keys=True, default=str) for e in epochs}
    if len(keys) == 1:
        return (*by_epoch[epochs[0]], False)
    return [by_epoch[e][0] for e in epochs], [by_epoch[e][1] for e in epochs], True


def epoch_change_groups(path_values: dict[str, EpochValues]) -> list[tuple[str, list[int]]]:
    """(path, epochs) of each group of epochs in which a path differs: a run of consecutive epochs with one
    value pair, or a whole run when its values move every few epochs (a warmup)."""
    groups = []
    for path, by_epoch in path_values.items():
        for run in _runs(by_epoch):
            pieces = _constant_pieces(run, by_epoch)
            groups += [(path, piece) for piece in pieces] if len(pieces) <= MAX_PIECES_PER_RUN else [(path, run)]
    return groups


def _epochs_text(epochs: list[int], n: int) -> str | None:
    return None if len(epochs) == n else epoch_ranges(epochs)


def scalar_changes(orig: LoadedConfig, start: LoadedConfig, classifier: Classifier, per_epoch_keys: set[str],
                   equivalent: list[dict]) -> list[Change]:
    """The scheduled learning rate, the rebuild epochs and the `#config` values, epoch by epoch."""
    eo, es = orig.per_epoch["epochs"], start.per_epoch["epochs"]
    n = min(len(eo), len(es))
    paths: dict[str, EpochValues] = defaultdict(dict)
    for i in range(n):
        paths["learning_rate"][i + 1] = (eo[i]["learning_rate"], es[i]["learning_rate"])
        paths["pretrain.rebuild"][i + 1] = (eo[i]["rebuild"], es[i]["rebuild"])
        for key in sorted(per_epoch_keys):
            o = eo[i]["config"].get(key, orig.value(key, DEFAULTS.get(key, ABSENT)))
            s = es[i]["config"].get(key, start.value(key, DEFAULTS.get(key, ABSENT)))
            paths[key][i + 1] = (o, s)
    changes = []
    for path, epochs in epoch_change_groups(paths):
        o, s, varying = _values(epochs, paths[path])
        note = REBUILD_NOTE if path == "pretrain.rebuild" else None
        changes.append(Change(path, o, s, _epochs_text(epochs, n), classifier.key(path), note,
                              parts=path.split("."), per_epoch=varying))
    if not any(c.path == "learning_rate" for c in changes):
        _note_equivalent_lr(orig, start, n, equivalent)
    return changes


def _note_equivalent_lr(orig: LoadedConfig, start: LoadedConfig, n: int, equivalent: list[dict]) -> None:
    spelled = [{k: cfg.value(k) for k in LR_INPUT_KEYS if k in cfg.values} for cfg in (orig, start)]
    config_lrs = [[e["config_learning_rate"] for e in cfg.per_epoch["epochs"]][:n] for cfg in (orig, start)]
    if comparable(spelled[0]) != comparable(spelled[1]) or config_lrs[0] != config_lrs[1]:
        equivalent.append({"what": "learning_rate schedule", "orig": show(spelled[0], 200),
                           "start": show(spelled[1], 200),
                           "why": "same scheduled learning rate in every epoch (pretrain #config vs "
                                  "learning_rates; learning_rate_control.py, tf/engine.py)"})


def network_changes(orig: LoadedConfig, start: LoadedConfig, classifier: Classifier, is_builder_ref,
                    equivalent: list[dict]) -> list[Change]:
    """The networks of each epoch compared (in their canonical spelling, `knobs.network_spelling`); a path's
    epochs with one category are reported as one change (an auxiliary loss layer that pretraining grows with
    the network is one `loss` change, not one per stage)."""
    eo, es = orig.per_epoch["epochs"], start.per_epoch["epochs"]
    n = min(len(eo), len(es))
    raw_o, raw_s = orig.per_epoch["networks"], start.per_epoch["networks"]
    rewritten: dict[tuple[str, int], list] = defaultdict(list)
    nets_o = [canonical_network(net, rewritten["o", i]) for i, net in enumerate(raw_o)]
    nets_s = [canonical_network(net, rewritten["s", i]) for i, net in enumerate(raw_s)]
    cache: dict[tuple[int, int], list] = {}
    alike: dict[str, tuple[Any, Any]] = {}
    paths: dict[str, EpochValues] = defaultdict(dict)
    path_parts: dict[str, list] = {}
    net_pair: dict[int, tuple[int, int]] = {}
    for i in range(n):
        pair = net_pair[i + 1] = (eo[i]["net"], es[i]["net"])
        if pair not in cache:
            cache[pair] = tree_changes(nets_o[pair[0]], nets_s[pair[1]])
            raw = (raw_o[pair[0]], raw_s[pair[1]])
            for parts in spelled_alike(raw, (nets_o[pair[0]], nets_s[pair[1]]),
                                       rewritten["o", pair[0]] + rewritten["s", pair[1]]):
                alike.setdefault(format_path(["network", *parts]), tuple(value_at(net, parts) for net in raw))
        for parts, o, s in cache[pair]:
            if is_builder_ref(o, s):
                continue
            path = format_path(["network", *parts])
            path_parts[path] = ["network", *parts]
            paths[path][i + 1] = (o, s)
    merged: dict[tuple[str, str], dict] = {}
    pretrain_epochs = max(cfg.per_epoch.get("num_pretrain_epochs") or 0 for cfg in (orig, start))
    for path, epochs in epoch_change_groups(paths):
        o, s = paths[path][epochs[0]]
        pair = net_pair[epochs[0]]
        if _stage_layer_only(paths[path], path_parts[path], n):
            verdict = Verdict("pretrain", STAGE_NOTE)
        else:
            verdict = classifier.network_change(path_parts[path], o, s, (nets_o[pair[0]], nets_s[pair[1]]),
                                                pretrain_only=_pretrain_stage_only(paths[path], epochs, n,
                                                                                   pretrain_epochs))
        entry = merged.setdefault((path, verdict.category), {"epochs": [], "verdict": verdict})
        entry["epochs"] += epochs
    changes = []
    for (path, category), entry in merged.items():
        epochs = sorted(entry["epochs"])
        o, s, varying = _values(epochs, paths[path])
        verdict = entry["verdict"]
        changes.append(Change(path, o, s, _epochs_text(epochs, n), category, verdict.note, parts=path_parts[path],
                              trains_model_layers=list(verdict.trains_model_layers), per_epoch=varying))
    equivalent += spelling_notes(alike)
    return changes


def spelling_notes(alike: dict[str, tuple[Any, Any]]) -> list[dict]:
    """One "equivalent" entry for the network paths spelled differently but read alike."""
    if not alike:
        return []
    shown = list(alike.items())[:3]
    more = f" (+{len(alike) - 3} more)" if len(alike) > 3 else ""
    return [{"what": f"network spelling ({len(alike)} paths)",
             "orig": "; ".join(f"{path}: {show(o, 40)}" for path, (o, _) in shown) + more,
             "start": "; ".join(f"{path}: {show(s, 40)}" for path, (_, s) in shown) + more, "why": WHY}]


def _stage_layer_only(by_epoch: EpochValues, parts: list, n: int) -> bool:
    """A whole layer that one side's pretraining has not added yet (or has removed), while the final networks
    agree on it: the difference is the pretrain schedule, whatever the layer's role (an aux loss head that
    appears with its block)."""
    final = by_epoch.get(n)
    return not attribute_parts(parts) and (final is None or comparable(final[0]) == comparable(final[1]))


def _pretrain_stage_only(by_epoch: EpochValues, epochs: list[int], n: int, pretrain_epochs: int) -> bool:
    """The difference exists only in pretrain epochs, or these pretrain epochs differ otherwise than the final
    networks do (a pretrain stage wires `encoder` to block 4 where the final networks differ in 12 vs 8
    blocks): what the pretrain construction makes of the network there is its own change."""
    final = by_epoch.get(n)
    if final is None or comparable(final[0]) == comparable(final[1]):
        return True
    return max(epochs) <= pretrain_epochs and \
        [comparable(v) for v in by_epoch[epochs[0]]] != [comparable(v) for v in final]
