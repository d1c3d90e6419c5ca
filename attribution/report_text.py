"""The report's sentences and small tables that are not effects: interactions and aliasing said in words, the
environment facts per side, the reproducibility warnings (pure functions over plain data)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

FACTS = (("returnn_version", "RETURNN"), ("returnn_git", "RETURNN git"), ("tensorflow", "TensorFlow"),
         ("pytorch", "PyTorch"), ("python_version", "Python"), ("host", "host"), ("gpu", "GPU"),
         ("gpu_memory_mb", "GPU memory (MB)"), ("threads", "threads"), ("cluster_queue", "cluster queue"))


class _Effect(Protocol):
    direction: str
    estimate: float
    low: float
    high: float


class _Knob(Protocol):
    name: str
    effects: list[_Effect]


@dataclass
class FactRow:
    name: str
    orig: str
    start: str

    @property
    def differs(self) -> bool:
        return self.orig != self.start


@dataclass
class WarningRow:
    message: str
    advice: str = ""
    code: str = ""


def _half(effect: _Effect) -> float:
    return (effect.high - effect.low) / 2


def _directions_disagree(knob: _Knob) -> str | None:
    """A sentence when the knob's knock-in and knock-out effects differ beyond their intervals, else None."""
    by = {e.direction: e for e in knob.effects}
    if set(by) != {"knock-in", "knock-out"}:
        return None
    into, out = by["knock-in"], by["knock-out"]
    if not (math.isfinite(_half(into)) and math.isfinite(_half(out))):
        return None
    difference, half = into.estimate - out.estimate, math.hypot(_half(into), _half(out))
    if abs(difference) <= half:
        return None
    return (f"{knob.name}: switched into start it moves the WER by {into.estimate:+.2f}, switched into orig by "
            f"{out.estimate:+.2f} (difference {difference:+.2f} ± {half:.2f}): its effect depends on the other knobs' "
            f"values, so it interacts with at least one of them")


def _additivity(knobs: list[_Knob], gap: tuple[float, float] | None) -> str | None:
    """Whether the knock-in effects of the knobs switched alone add up to the gap."""
    into = [e for k in knobs for e in k.effects if e.direction == "knock-in"]
    if gap is None or len(into) < 2 or not math.isfinite(gap[1]) or not all(math.isfinite(_half(e)) for e in into):
        return None
    total, half = sum(e.estimate for e in into), math.sqrt(sum(_half(e) ** 2 for e in into))
    margin = math.hypot(half, gap[1])
    if abs(total - gap[0]) <= margin:
        return (f"The knock-in effects add up to {total:+.2f} ± {half:.2f}, within the gap's {gap[0]:+.2f} ± "
                f"{gap[1]:.2f}: the knobs act (nearly) additively.")
    return (f"The knock-in effects add up to {total:+.2f} ± {half:.2f}, not to the gap's {gap[0]:+.2f} ± {gap[1]:.2f}: "
            f"part of the gap comes from knobs acting together (or from knobs switched only in groups).")


def _coupled(diff: dict | None) -> list[str]:
    sentences, seen = [], set()
    for knob in (diff or {}).get("knobs", []):
        group = tuple(sorted({knob["name"], *knob.get("coupled_with", [])}))
        if len(group) > 1 and group not in seen:
            seen.add(group)
            why = "; ".join(knob.get("coupling", [])) or "their code reads each other's values"
            sentences.append(f"{' and '.join(group)} can only be switched together ({why}): their effects are "
                             f"aliased, the report cannot tell them apart.")
    return sentences


def _strategy(strategy: dict | None) -> list[str]:
    if not strategy:
        return []
    sentences = [f"{' and '.join(i['knobs'])} act together: {i['effect']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}] "
                 f"only when both have start's value." for i in strategy.get("interactions", [])]
    sentences += [f"{' and '.join(pair)} are aliased in the strategy's runs: it cannot tell them apart."
                  for pair in strategy.get("aliased", [])]
    if strategy.get("undecided"):
        sentences.append(f"Undecided: {', '.join(strategy['undecided'])} (the runs could not settle them).")
    return sentences


def interaction_sentences(knobs: list[_Knob], diff: dict | None, strategy: dict | None,
                          gap: tuple[float, float] | None, complete: bool = True) -> list[str]:
    """Interactions and aliasing in words; `gap` is (estimate, half width) when known; what was not tested is only
    said of a `complete` run."""
    sentences = _coupled(diff)
    coupled = {k for s in (diff or {}).get("knobs", []) if s.get("coupled_with") for k in (s["name"],
                                                                                       *s["coupled_with"])}
    for knob in knobs:
        parts = knob.name.split("+")
        if len(parts) > 1 and not set(parts) <= coupled:
            sentences.append(f"{' and '.join(parts)} were only switched together (one hybrid switches all of them): "
                             f"their effects are aliased.")
    disagree = [s for k in knobs if (s := _directions_disagree(k)) is not None]
    sentences += [s + "." for s in disagree]
    both = [k.name for k in knobs if {e.direction for e in k.effects} == {"knock-in", "knock-out"}]
    if both and not disagree:
        sentences.append(f"Knock-in and knock-out agree within their intervals for {', '.join(both)}: no "
                         f"interaction seen.")
    elif not both and knobs and not strategy and complete:
        sentences.append("Each knob was switched in one direction only: interactions were not tested (switch "
                         "`--direction both`).")
    additive = _additivity([k for k in knobs if "+" not in k.name], gap)
    if additive:
        sentences.append(additive)
    return sentences + _strategy(strategy)


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


def fact_rows(jobs: list[dict]) -> list[FactRow]:
    """The environment facts the first finished training of each side states in its RETURNN log."""
    first = {side: next((j["environment"] for j in jobs if j["label"] == side and j.get("environment")), None)
             for side in ("orig", "start")}
    if not any(first.values()):
        return []
    rows = []
    for key, name in FACTS:
        orig, start = ((first[side] or {}).get(key) for side in ("orig", "start"))
        if orig is not None or start is not None:
            rows.append(FactRow(name, _shown(orig), _shown(start)))
    return rows


def warning_rows(diff: dict | None) -> list[WarningRow]:
    """The diff's reproducibility warnings: plain strings, or {"code", "message", "advice"[, "side"]}."""
    rows = []
    for warning in (diff or {}).get("warnings", []):
        if isinstance(warning, str):
            rows.append(WarningRow(warning))
        else:
            side = f"{warning['side']}: " if warning.get("side") else ""
            rows.append(WarningRow(side + warning["message"], warning.get("advice") or "", warning.get("code") or ""))
    return rows
