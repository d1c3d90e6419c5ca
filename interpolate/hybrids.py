"""Write hybrids for a config pair: plan, render, load back, prove, then keep (atomically).

A hybrid that switches environment knobs (`knobs.environment`) is a config hybrid of its other knobs (or the
base config itself) trained in an environment composed from both sides: `HybridResult.environment` says which
side each environment field comes from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from common.atomic import write_atomic
from common.errors import UserError
from interpolate.plan import HybridRequest, PlanError, plan_hybrid
from interpolate.render import hybrid_file_name, render_hybrid
from interpolate.units import Units, merge_units
from interpolate.verify import round_trip_problems
from knobs.diff import PairDiff, diff_configs
from knobs.environment import EnvironmentKnob, config_only, environment_fields, switched_sides, with_environment_knobs
from knobs.group import NO_EFFECT
from knobs.loader import LoadContext, LoadedConfig, load, load_pair
from knobs.requirements import requirements_of
from knobs.rules import RuleTable, load_rules

MAX_ATTEMPTS = 6


@dataclass
class HybridResult:
    id: str
    base: str
    donor: str
    direction: str
    knobs: list[str]
    path: str | None
    sha256: str | None
    status: str  # "ok", "refused" (cannot be written), "failed" (round trip)
    reason: str | None = None
    build: dict | None = None
    environment: dict[str, str] | None = None  # environment field -> side; None: the base side's environment
    requires: dict | None = None  # what the config needs from RETURNN (runner.probe.Requirements)


def single_knob_requests(diff: PairDiff, directions: list[str]) -> list[HybridRequest]:
    """Every switchable knob alone (a coupled knob together with its partners), in each direction."""
    requests = []
    for direction in directions:
        seen: set[frozenset[str]] = set()
        for knob in diff.knobs:
            if knob.name in NO_EFFECT:
                continue
            group = frozenset({knob.name, *knob.coupled_with})
            if group not in seen:
                seen.add(group)
                requests.append(HybridRequest(group, direction))
    return requests


def switch_units(orig: LoadedConfig, start: LoadedConfig, diff: PairDiff, out_dir: Path, context: LoadContext,
                 rules: RuleTable) -> tuple[Units, list[HybridResult]]:
    """The units a strategy switches: each knob with the knobs it can only be switched together with (coupled
    by code, or merged because RETURNN couples them), as proven by writing its knock-in hybrid. Knobs whose
    hybrid cannot be written are left out; their results say why."""
    results = [make_hybrid(orig, start, diff, r, out_dir, context, rules, merge_leaks=True)
               for r in single_knob_requests(diff, ["knock-in"])]
    units = merge_units(frozenset(r.knobs) for r in results if r.status == "ok")
    return units, [r for r in results if r.status != "ok"]


def hybrid_id(request: HybridRequest) -> str:
    return f"{request.direction}:{'+'.join(sorted(request.knobs))}"


def write_if_new(path: Path, text: str) -> None:
    """Atomic write; an existing file with other content is never overwritten."""
    if path.exists():
        if path.read_text() == text:
            return
        raise UserError("exists with other content; not overwritten", path)
    write_atomic(path, text)


def make_hybrid(orig: LoadedConfig, start: LoadedConfig, diff: PairDiff, request: HybridRequest, out_dir: Path,
                context: LoadContext, rules: RuleTable, merge_leaks: bool = False) -> HybridResult:
    """Plan, render, load back and prove one hybrid; keep it only when the proof holds.

    With `merge_leaks`, a knob that cannot be switched without changing others (RETURNN couples them,
    e.g. #config learning rates that rebuild the network every epoch) is switched together with them.
    Environment knobs in the request choose the hybrid's environment; the config is proven without them.
    """
    fields = environment_fields(diff)
    if fields:
        return _with_environment(orig, start, diff, request, fields,
                                 lambda r: make_hybrid(orig, start, config_only(diff), r, out_dir, context, rules,
                                                       merge_leaks))
    labels = {"orig": orig.path, "start": start.path}
    first_problem: str | None = None
    queue, tried = [request], set()
    result = HybridResult(hybrid_id(request), labels[request.base_side], labels[request.donor_side],
                          request.direction, sorted(request.knobs), None, None, "refused")
    while queue and len(tried) < MAX_ATTEMPTS:
        attempt = queue.pop(0)
        if attempt.knobs in tried:
            continue
        tried.add(attempt.knobs)
        try:
            plan = plan_hybrid(diff, orig, start, attempt, rules)
            text = render_hybrid(plan)
        except PlanError as exc:
            if attempt is request:
                result.reason = exc.cause
                return result
            continue
        problems, leaked, kept, loaded = _prove(plan, text, out_dir, diff, attempt, context, rules)
        if not problems:
            path = out_dir / hybrid_file_name(plan, text)
            write_if_new(path, text)
            result = HybridResult(hybrid_id(attempt), result.base, result.donor, attempt.direction,
                                  sorted(attempt.knobs), str(path), hashlib.sha256(text.encode()).hexdigest(), "ok",
                                  requires=requirements_of(loaded).to_json())
            if attempt is not request:
                extra = sorted(attempt.knobs - request.knobs)
                result.reason = (f"switched together with {', '.join(extra)}: {', '.join(sorted(request.knobs))} "
                                 f"alone is not exact ({first_problem})")
            return result
        first_problem = first_problem or problems[0]
        if not merge_leaks:
            break
        if leaked:
            queue.append(HybridRequest(attempt.knobs | leaked, attempt.direction))
        elif kept:  # the base's own #config values (network rebuilds) hold the switched knob back
            candidates = sorted(_config_knobs(plan.base, rules) - attempt.knobs)
            queue += [HybridRequest(attempt.knobs | {c}, attempt.direction) for c in candidates]
            queue.append(HybridRequest(attempt.knobs | set(candidates), attempt.direction))
    result.status, result.reason = "failed", first_problem
    return result


def _with_environment(orig: LoadedConfig, start: LoadedConfig, diff: PairDiff, request: HybridRequest,
                      fields: dict[str, list[str]], make_config_hybrid) -> HybridResult:
    """A hybrid of config knobs (`make_config_hybrid`, or the base config itself when there are none) in the
    environment that takes the switched environment knobs' fields from the donor side."""
    config_knobs = request.knobs - set(fields)
    if config_knobs:
        result = make_config_hybrid(HybridRequest(config_knobs, request.direction))
    else:
        base = start if request.base_side == "start" else orig
        result = HybridResult("", base.path, (orig if base is start else start).path, request.direction, [],
                              base.path, base.sha256, "ok", requires=requirements_of(base).to_json())
    environment_knobs = sorted(request.knobs & set(fields))
    result.knobs = sorted({*result.knobs, *environment_knobs})
    result.id = hybrid_id(HybridRequest(frozenset(result.knobs), request.direction))
    result.environment = switched_sides(frozenset(environment_knobs), request.direction, fields)
    return result


def _config_knobs(config: LoadedConfig, rules: RuleTable) -> set[str]:
    """Knobs whose values the config sets through pretrain `#config` (they can force network rebuilds)."""
    if not config.per_epoch:
        return set()
    knobs = {rules.key_category(k) or "other" for k in config.per_epoch["override_keys"]}
    if any(e["config_learning_rate"] is not None for e in config.per_epoch["epochs"]):
        knobs.add("lr")
    return knobs


def _prove(plan, text: str, out_dir: Path, diff: PairDiff, request: HybridRequest, context: LoadContext,
           rules: RuleTable) -> tuple[list[str], set[str], set[str], LoadedConfig | None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    candidate = out_dir / f".candidate.{hybrid_file_name(plan, text)}"
    write_atomic(candidate, text)
    try:
        loaded = load(candidate, context)
        return (*round_trip_problems(loaded, plan.base, plan.donor, request, {k.name for k in diff.knobs}, rules),
                loaded)
    except UserError as exc:
        return [f"does not load: {exc.cause}"], set(), set(), None
    finally:
        candidate.unlink(missing_ok=True)


def make_hybrids(orig_path: str, start_path: str, out_dir: Path, requests: list[HybridRequest] | None,
                 directions: list[str], context: LoadContext, rules_file: str | None = None,
                 environment_knobs: list[EnvironmentKnob] = ()) -> tuple[PairDiff, list[HybridResult]]:
    """The hybrids of `requests` (None: each knob alone); `environment_knobs` join the config knobs."""
    rules = load_rules(rules_file)
    orig, start = load_pair(orig_path, start_path, context)
    diff = with_environment_knobs(diff_configs(orig, start, rules), environment_knobs)
    merge_leaks = requests is None
    requests = requests if requests is not None else single_knob_requests(diff, directions)
    results = [make_hybrid(orig, start, diff, r, out_dir, context, rules, merge_leaks) for r in requests]
    return diff, _unique(results)


def _unique(results: list[HybridResult]) -> list[HybridResult]:
    """Merged groups can repeat (lr+pretrain from both lr and pretrain): keep each hybrid once."""
    seen: set[str] = set()
    kept = []
    for result in results:
        key = result.id if result.status != "ok" else json.dumps([result.path, result.environment], sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(result)
    return kept


def write_manifest(out_dir: Path, diff: PairDiff, results: list[HybridResult]) -> Path:
    path = out_dir / "manifest.json"
    data = {"orig": diff.orig, "start": diff.start, "hybrids": [asdict(r) for r in results], "diff": diff.to_json()}
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path
