"""Diff engine: load two RETURNN configs like RETURNN does and split their difference into knobs."""

from __future__ import annotations

from knobs.diff import Change, Knob, PairDiff, diff_configs
from knobs.loader import LoadContext, LoadedConfig, load, load_pair
from knobs.rules import load_rules

__all__ = ["Change", "Knob", "LoadContext", "LoadedConfig", "PairDiff", "compare", "diff_configs", "load",
           "load_pair", "load_rules"]


def compare(orig: str, start: str, context: LoadContext | None = None, rules_file: str | None = None
            ) -> PairDiff:
    """Load both configs (in parallel subprocesses) and diff them."""
    context = context or LoadContext()
    rules = load_rules(rules_file)
    loaded_orig, loaded_start = load_pair(orig, start, context)
    return diff_configs(loaded_orig, loaded_start, rules)
