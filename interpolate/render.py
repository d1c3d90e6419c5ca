"""Write a hybrid plan as RETURNN config text: the base text unchanged, then a marked override section."""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path

from interpolate import hybrid_runtime
from interpolate.plan import HybridPlan
from knobs.loader import LoadedConfig

MARKER = "# ==== config-bisect hybrid: everything below overrides the base config above ===="


def _donor_statements(plan: HybridPlan) -> tuple[list[str], list[str]]:
    """Donor statements defining the needed names (with what they read, transitively), in file order,
    and the names they read that the donor did not define itself (set before the config, e.g. `task`)."""
    donor = plan.donor
    needed: set[str] = set()
    todo = sorted(plan.donor_names)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        entry = donor.values.get(name)
        if entry is None:
            continue
        value = entry["value"]
        refs = value["refs"] if isinstance(value, dict) and "__function__" in value else entry.get("refs", [])
        todo.extend(r for r in refs if (r in donor.values or r in donor.imports) and r not in needed)
    sources: dict[str, str] = {}
    context: list[str] = []
    for name in needed:
        source = donor.imports.get(name) or donor.values.get(name, {}).get("source")
        if source:
            sources.setdefault(source, name)
        else:
            context.append(name)
    text = donor_path_text(donor)
    ordered = sorted(sources, key=lambda s: (text.find(s) if text.find(s) >= 0 else len(text), s))
    return ordered, sorted(context)


def donor_path_text(config: LoadedConfig) -> str:
    try:
        return Path(config.path).read_text()
    except OSError:
        return ""


def _runtime_source() -> str:
    return inspect.getsource(hybrid_runtime)


def render_hybrid(plan: HybridPlan) -> str:
    """The whole hybrid config text (deterministic: same plan, same bytes)."""
    request, base, donor = plan.request, plan.base, plan.donor
    base_text = Path(base.path).read_text()
    lines = [base_text.rstrip("\n"), "", "", MARKER,
             f"# base:  {request.base_side}  {base.path}  sha256={base.sha256}",
             f"# donor: {request.donor_side}  {donor.path}  sha256={donor.sha256}",
             f"# direction: {request.direction}",
             f"# knobs switched to the donor's values: {', '.join(sorted(request.knobs))}",
             "# Everything RETURNN reads per epoch is switched epoch by epoch on top of the base's pretraining;",
             "# donor code runs in the private module `_cb` (a module is not a config setting).",
             "import linecache as _cb_linecache",
             "import types as _cb_types",
             "",
             '_cb = _cb_types.ModuleType("config_bisect_hybrid")',
             '_cb.__dict__.update(__name__="__returnn_config__", config=config)']
    statements, context = _donor_statements(plan)
    if context:
        lines.append(f"_cb.__dict__.update({{_k: _v for _k, _v in globals().items() if _k in {context!r}}})")
    module_source = _runtime_source() + "\n\n# ---- donor code\n" + "\n\n".join(statements) + "\n"
    lines += [f"_cb.source = {module_source!r}",
              f'_cb.__file__ = "<config-bisect hybrid: {request.donor_side} code>"',
              "_cb_linecache.cache[_cb.__file__] = (len(_cb.source), None, _cb.source.splitlines(True), _cb.__file__)",
              'exec(compile(_cb.source, _cb.__file__, "exec"), _cb.__dict__)',
              ""]
    per_epoch = plan.per_epoch
    stages = {e: st for e, st in sorted(per_epoch.stage_of_epoch.items()) if st is not None} if per_epoch else {}
    if per_epoch is not None:  # capture the base's per-epoch networks before anything is switched
        lines += [
            '_cb.base_pretrain = __import__("returnn.pretrain", fromlist=["pretrain_from_config"])'
            ".pretrain_from_config(config)",
            "_cb.base_network = network",
            *(f"globals().pop({name!r}, None)  # only built the base's networks; taken over by _cb.base_pretrain"
              for name in per_epoch.base_builders),
        ]
    for source in plan.verbatim:
        lines += ["# the donor's statement, which fails there too (compared by its source):", source]
    for key, source in plan.assignments:
        lines.append(f"globals().pop({key!r}, None)" if source is None else f"{key} = {source}")
    if per_epoch is not None:
        lines += [
            "",
            "# ---- per epoch: the base's own pretrain networks, with the switched values set per epoch",
            "_cb.overrides = [",
            *(f"    ({epochs!r}, {parts!r}, {source})," for epochs, parts, source in per_epoch.overrides),
            "]",
            "_cb.config_table = {",
            *(f"    {epoch}: {{{', '.join(f'{k!r}: {v}' for k, v in entry.items())}}},"
              for epoch, entry in sorted(per_epoch.config_table.items())),
            "}",
            f"_cb.stage_of_epoch = {stages}  # network-rebuild stages (other epochs: the final stage)",
            f"network = _cb.network_for_epoch(network, {per_epoch.num_epochs}, _cb.overrides)",
        ]
        if per_epoch.num_pretrain > 0:
            options = "".join(f"{k!r}: {v}, " for k, v in sorted(per_epoch.pretrain_options.items()))
            lines += [
                f"pretrain = {{{options}'repetitions': 1, 'construction_algo': _cb.make_construction(",
                f"    _cb.base_pretrain, _cb.base_network, {per_epoch.num_pretrain}, _cb.overrides, "
                "_cb.config_table, _cb.stage_of_epoch)}",
            ]
        else:
            lines.append('globals().pop("pretrain", None)')
    return "\n".join(lines) + "\n"


def hybrid_file_name(plan: HybridPlan, text: str) -> str:
    """Readable knob list plus a short content hash."""
    knobs = "+".join(sorted(plan.request.knobs)) or "none"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(plan.base.path).stem)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    # a `.py` base has no `#!` line: RETURNN reads it as Python because of its name, so keep the suffix
    suffix = ".py" if plan.base.path.endswith(".py") else ".config"
    return f"{stem}.{plan.request.direction}.{knobs}.{digest}{suffix}"
