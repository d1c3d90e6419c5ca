"""Split the difference of two loaded configs into named knobs.

Pure functions over `LoadedConfig` snapshots, in steps that each live in their own module:

- static values are normalized (`knobs.normalize`) and diffed (`knobs.values.tree_changes`);
- what RETURNN varies per epoch (learning rate, `#config` overrides, the network) is compared epoch by epoch
  and reported as epoch ranges (`knobs.per_epoch`);
- every change gets one category (`knobs.classify`: the rule table, then how the network graph uses what
  changed, `knobs.graph`);
- changes of one category form one knob, knobs whose code reads each other's values are coupled
  (`knobs.group`);
- facts that make a comparison unfair are warnings (`knobs.lint`).
"""

from __future__ import annotations

from typing import Any

from knobs.classify import Classifier
from knobs.config_code import is_config_function, network_builders, runtime_functions
from knobs.group import effective_batch, group_into_knobs, summarize
from knobs.lint import lint
from knobs.loader import LoadedConfig
from knobs.network_spelling import canonical_network, spelled_alike
from knobs.normalize import LR_INPUT_KEYS, normalize_static
from knobs.per_epoch import REBUILD_NOTE, network_changes, scalar_changes, spelling_notes
from knobs.records import Change, DiffWarning, Knob, PairDiff
from knobs.rules import RuleTable
from knobs.values import ABSENT, comparable, format_path, is_function, is_tagged, show, tree_changes, value_at

# the names other packages import from here (interpolate.plan, knobs.environment)
__all__ = ["ABSENT", "REBUILD_NOTE", "Change", "Classifier", "DiffWarning", "Knob", "PairDiff", "comparable",
           "diff_configs", "effective_batch", "is_tagged", "network_builders", "show", "summarize", "tree_changes",
           "value_at"]


def _static_values(config: LoadedConfig) -> dict[str, Any]:
    return {name: entry["value"] for name, entry in config.values.items()}


def _per_epoch_keys(config: LoadedConfig) -> set[str]:
    return set(config.per_epoch["override_keys"]) if config.per_epoch else set()


def _set_aside_per_epoch(orig: LoadedConfig, start: LoadedConfig, static: tuple[dict, dict], per_epoch_keys: set[str]
                         ) -> list[dict]:
    """What RETURNN uses of the LR, the #config values and the networks is compared per epoch: drop them from
    the static values (code that only constructs them is compared by its effect, not by its text)."""
    builders = network_builders(orig) | network_builders(start)
    for side in static:
        for key in (*per_epoch_keys, *LR_INPUT_KEYS, "network", *builders):
            side.pop(key, None)
        if isinstance(side.get("pretrain"), dict):
            side["pretrain"] = {k: v for k, v in side["pretrain"].items()
                                if k not in ("construction_algo", "repetitions")}
    differing = sorted(b for b in builders if comparable(orig.value(b, ABSENT)) != comparable(start.value(b, ABSENT)))
    if not differing:
        return []
    return [{"what": "network construction code",
             "orig": ", ".join(b for b in differing if b in orig.values) or "(none)",
             "start": ", ".join(b for b in differing if b in start.values) or "(none)",
             "why": "functions that only build the per-epoch networks and #config are compared by what they "
                    "build (the per-epoch view), not by their source"}]


def _static_changes(orig: LoadedConfig, start: LoadedConfig, static: tuple[dict, dict], classifier: Classifier,
                    equivalent: list[dict]) -> list[Change]:
    norm_o, norm_s, notes, defaulted = normalize_static(*static)
    equivalent[:0] = notes + _canonical_static_networks(norm_o, norm_s)
    changes: list[Change] = []
    for parts, o, s in tree_changes(norm_o, norm_s):
        if len(parts) > 1 and _is_global_function_ref(o, s, orig, start):
            continue  # e.g. pretrain.construction_algo: reported where the function is defined
        key = str(parts[0])
        note = _function_note(o, s) or next(
            (f"{side} does not set it: RETURNN's default" for side in ("orig", "start")
             if len(parts) == 1 and (side, key) in defaulted), None)
        if key == "network" and len(parts) > 1:  # no per-epoch view: the network is compared as it is
            nets = tuple(n if isinstance(n, dict) else {} for n in (norm_o.get("network"), norm_s.get("network")))
            verdict = classifier.network_change(list(parts), o, s, nets, False)
            changes.append(Change(format_path(parts), o, s, None, verdict.category, verdict.note or note,
                                  parts=list(parts), trains_model_layers=list(verdict.trains_model_layers)))
        else:
            changes.append(Change(format_path(parts), o, s, None, classifier.key(key), note, parts=list(parts)))
    return changes


def _canonical_static_networks(norm_o: dict, norm_s: dict) -> list[dict]:
    """Compare a static `network` in its canonical spelling (`knobs.network_spelling`); the note on what was
    spelled differently but is read alike."""
    if not isinstance(norm_o.get("network"), dict) or not isinstance(norm_s.get("network"), dict):
        return []
    raw = (norm_o["network"], norm_s["network"])
    rewritten: list[list] = []
    norm_o["network"], norm_s["network"] = (canonical_network(net, rewritten) for net in raw)
    alike = spelled_alike(raw, (norm_o["network"], norm_s["network"]), rewritten)
    return spelling_notes({format_path(["network", *p]): tuple(value_at(net, p) for net in raw) for p in alike})


def _loader_warnings(orig: LoadedConfig, start: LoadedConfig) -> list[DiffWarning]:
    """What loading found (text format, a failed per-epoch view, ...): once for the pair when both sides say
    the same, else per side."""
    sides = {"orig": orig.warnings, "start": start.warnings}
    both = [w for w in orig.warnings if w in start.warnings]
    result = [DiffWarning(w["code"], w["message"], w["advice"], "both") for w in both]
    result += [DiffWarning(w["code"], w["message"], w["advice"], side)
               for side, warnings in sides.items() for w in warnings if w not in both]
    return result


def diff_configs(orig: LoadedConfig, start: LoadedConfig, rules: RuleTable) -> PairDiff:
    """The knob diff of two loaded configs."""
    classifier = Classifier(rules, (orig, start))
    static = (_static_values(orig), _static_values(start))
    per_epoch_keys = _per_epoch_keys(orig) | _per_epoch_keys(start)
    have_epochs = bool(orig.per_epoch and start.per_epoch)
    equivalent = _set_aside_per_epoch(orig, start, static, per_epoch_keys) if have_epochs else []
    changes = _static_changes(orig, start, static, classifier, equivalent)
    if have_epochs:
        changes += scalar_changes(orig, start, classifier, per_epoch_keys, equivalent)
        changes += network_changes(orig, start, classifier, lambda o, s: _is_global_function_ref(o, s, orig, start),
                                   equivalent)
    helpers = [c for c in changes if _is_helper(c, orig, start, rules)]
    changes = [c for c in changes if c not in helpers]
    unresolved = [{"side": side, **u} for side, cfg in (("orig", orig), ("start", start)) for u in cfg.unresolved]
    warnings = _loader_warnings(orig, start) + lint(orig, start, changes)
    epochs = orig.per_epoch["num_epochs"] if have_epochs else None
    return PairDiff(orig.path, start.path, group_into_knobs(changes, orig, start), equivalent, unresolved, warnings,
                    epochs, helpers)


def _is_helper(change: Change, orig: LoadedConfig, start: LoadedConfig, rules: RuleTable) -> bool:
    """A top-level value that is no RETURNN setting, from which other values were computed (e.g. `l2 = 1e-4`
    used in the network dict), and that no config function reads at run time: RETURNN never reads it, its
    effect is already in the values computed from it. Functions that only build the network or the pretrain
    networks count as computing (`model_dim` read by `conformer_network()`): they are compared by what they
    build; so do functions nothing calls (a hybrid's builder, once its network is a literal). Whatever category
    its reader would give it (`EpochSplit` read by the pretrain construction), such a value is a helper."""
    if len(change.parts) != 1 or rules.key_category(str(change.parts[0])) is not None:
        return False
    name = change.parts[0]
    configs = (orig, start)
    if any(is_config_function(c, name) for c in configs):
        return False
    builders = network_builders(orig) | network_builders(start)
    runtime = (runtime_functions(orig) | runtime_functions(start)) - builders
    functions = [(f, e["value"]) for c in configs for f, e in c.values.items() if is_function(e["value"])]
    read_by_function = any(name in value["refs"] for f, value in functions if f in runtime)
    read_by_builder = any(name in value["refs"] for f, value in functions if f not in runtime)
    used_by_statement = any(name in e.get("refs", []) for c in configs for n, e in c.values.items() if n != name)
    return (used_by_statement or read_by_builder) and not read_by_function


def _is_global_function_ref(o: Any, s: Any, orig: LoadedConfig, start: LoadedConfig) -> bool:
    """Both values are the config's own top-level function of the same name."""
    return all(is_function(v) and v["__function__"] in cfg.values for v, cfg in ((o, orig), (s, start))) \
        and o["__function__"] == s["__function__"]


def _function_note(o: Any, s: Any) -> str | None:
    if is_function(o) and is_function(s):
        return "same source; reads config globals that differ" if o["source_hash"] == s["source_hash"] \
            else "source differs"
    return None

