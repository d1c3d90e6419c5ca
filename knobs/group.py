"""Changes of one category form one knob; knobs that cannot be switched apart are coupled; one-line summaries."""

from __future__ import annotations

from collections import Counter, defaultdict

from knobs.classify import attribute_parts
from knobs.config_code import dependencies, is_config_function
from knobs.loader import LoadedConfig
from knobs.records import Change, Knob
from knobs.rules import CATEGORIES
from knobs.values import ABSENT, is_function, show

NO_EFFECT = frozenset({"runtime"})
MAX_LISTED = 3


class _Couplings:
    """Knob pairs that must be switched together, each with the first reason found."""

    def __init__(self) -> None:
        self.reasons: dict[str, dict[str, str]] = defaultdict(dict)

    def add(self, a: str, b: str, reason: str) -> None:
        if a != b and a not in NO_EFFECT and b not in NO_EFFECT:
            self.reasons[a].setdefault(b, reason)
            self.reasons[b].setdefault(a, reason)


def _code_couplings(changes: list[Change], configs: tuple[LoadedConfig, LoadedConfig], couplings: _Couplings
                    ) -> None:
    """A function of one knob reads values of another at run time: switching one alone changes the other."""
    knob_of_name: dict[str, str] = {}
    for change in changes:
        if not change.path.startswith("network"):
            knob_of_name.setdefault(change.path.split(".")[0].split("[")[0], change.category)
    for config in configs:
        for name, knob in knob_of_name.items():
            if is_config_function(config, name):
                for dep in sorted(dependencies(config, name) & set(knob_of_name)):
                    couplings.add(knob, knob_of_name[dep], f"{name}() ({knob}) reads {dep} ({knob_of_name[dep]})")


def _shared_parameter_couplings(changes: list[Change], couplings: _Couplings) -> None:
    """A loss change trains parameters of model layers whose parameters change too (`knobs.classify.Verdict`):
    only a `model` change of the shared layer (its shape, class, inputs) stops the two being switched apart;
    its L2, dropout or init can be switched alone (the loss layer brings its own)."""
    reshaped: dict[str, Change] = {}
    for change in changes:
        if change.path.startswith("network") and len(change.parts) > 1 and change.category == "model":
            reshaped.setdefault(str(change.parts[1]), change)
    for change in changes:
        for layer in change.trains_model_layers:
            other = reshaped.get(layer)
            if other is not None and change.category != "model":
                couplings.add(change.category, "model", f"{change.path} ({change.category}) trains the parameters "
                                                        f"of {layer}, which change too ({other.path})")


def group_into_knobs(changes: list[Change], orig: LoadedConfig, start: LoadedConfig) -> list[Knob]:
    """One knob per category, in the order of `CATEGORIES`, with couplings and a summary."""
    by_category: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_category[change.category].append(change)
    couplings = _Couplings()
    _code_couplings(changes, (orig, start), couplings)
    _shared_parameter_couplings(changes, couplings)
    knobs = []
    for category in CATEGORIES:
        if category not in by_category:
            continue
        items = by_category[category]
        partners = sorted(couplings.reasons.get(category, {}))
        knobs.append(Knob(name=category, category=category, changes=items, switchable=not partners,
                          coupled_with=partners, coupling=[couplings.reasons[category][p] for p in partners],
                          summary=summarize(category, items, orig, start),
                          affects_results=category not in NO_EFFECT))
    return knobs


def effective_batch(config: LoadedConfig, epoch_index: int) -> str:
    epochs = config.per_epoch["epochs"] if config.per_epoch else []
    overrides = epochs[epoch_index]["config"] if epochs else {}
    batch = overrides.get("batch_size", config.value("batch_size", 1))
    accum = overrides.get("accum_grad_multiple_step", config.value("accum_grad_multiple_step", 1))
    if isinstance(batch, int | float) and isinstance(accum, int | float):
        return f"{batch:g}x{accum:g}={batch * accum:g}"
    return f"{show(batch)}x{show(accum)}"


def network_aspects(changes: list[Change]) -> list[str]:
    """Network changes by what changed, most frequent first: layers added/removed, then each attribute with
    its value pairs (`num_heads: 8 → 6 ×12`), so that a knob of hundreds of paths reads as a few facts."""
    added = sum(1 for c in changes if c.path.startswith("network") and not attribute_parts(c.parts)
                and c.orig == ABSENT)
    removed = sum(1 for c in changes if c.path.startswith("network") and not attribute_parts(c.parts)
                  and c.start == ABSENT)
    pairs: Counter = Counter()
    for change in changes:
        attributes = attribute_parts(change.parts) if change.path.startswith("network") else []
        if attributes:
            pairs[(str(attributes[-1]), *change.shown(24))] += 1
    by_attribute: dict[str, list[str]] = defaultdict(list)
    counts: Counter = Counter()
    for (attribute, o, s), count in pairs.most_common():
        by_attribute[attribute].append(f"{o} → {s}" + (f" ×{count}" if count > 1 else ""))
        counts[attribute] += count
    facts = [f"layers: +{added} / -{removed}"] if added or removed else []
    facts += [f"{a}: {', '.join(by_attribute[a][:2])}{' ...' if len(by_attribute[a]) > 2 else ''}"
              for a, _ in counts.most_common()]
    return facts


def summarize(category: str, changes: list[Change], orig: LoadedConfig, start: LoadedConfig) -> str:
    """One line: the first changes as `path: orig → start` (many network changes: their aspects), plus the
    effective batch for batching."""
    network = [c for c in changes if c.path.startswith("network")]
    listed = [c for c in changes if not c.path.startswith("network")] if len(network) > MAX_LISTED else changes
    parts = []
    for change in listed[:MAX_LISTED]:
        epochs = f" (epochs {change.epochs})" if change.epochs else ""
        if change.note and (is_function(change.orig) or is_function(change.start)):
            parts.append(f"{change.path}(): {change.note}")
        else:
            shown_orig, shown_start = change.shown(30)
            parts.append(f"{change.path}{epochs}: {shown_orig} → {shown_start}")
    if len(listed) > MAX_LISTED:
        parts.append(f"+{len(listed) - MAX_LISTED} more")
    if len(network) > MAX_LISTED:
        aspects = network_aspects(network)
        parts.append(f"network ({len(network)} paths): " + "; ".join(aspects[:4])
                     + (f"; +{len(aspects) - 4} more" if len(aspects) > 4 else ""))
    text = "; ".join(parts)
    if category == "batching":
        text += (f" [effective batch, first epoch: {effective_batch(orig, 0)} vs {effective_batch(start, 0)};"
                 f" last: {effective_batch(orig, -1)} vs {effective_batch(start, -1)}]")
    return text
