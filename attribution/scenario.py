"""Simulation scenarios: knob effects on WER, interactions, seed noise, failed trainings, cost per training.

The WER of a hybrid is orig's WER plus the main effect of every knob with start's value plus the effect of
every interaction all of whose knobs have start's value. Main effects and pairs together describe any
function of two knobs (four free values): a pure pair has no main effects; a masking pair is a knob's main
effect plus an interaction that cancels it (the knob acts only while its partner has orig's value)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError

# A knob is a culprit when its effect (or an interaction it is in) is >= 15 % of the gap. Three additive
# culprits of which the largest is >= 3x the smallest leave the smallest at most 1/(3+1+1) = 20 % of the gap,
# so a 20 % share would put such a culprit on the boundary; 15 % lies midway between it and knobs at 10 %.
CULPRIT_SHARE = 0.15


@dataclass(frozen=True)
class Interaction:
    knobs: frozenset[str]
    effect: float


@dataclass(frozen=True)
class Scenario:
    knobs: tuple[str, ...]
    orig_wer: float
    effects: dict[str, float]  # WER added when the knob has start's value
    interactions: tuple[Interaction, ...] = ()
    seed_std: float = 0.0
    segment_count: int | None = None
    cost_per_run: float = 1.0
    name: str = "scenario"
    failure_rate: float = 0.0  # probability that a training returns no WER

    def wer(self, start_knobs: frozenset[str]) -> float:
        """Noise-free WER of the hybrid whose knobs in `start_knobs` have start's values."""
        return (self.orig_wer + sum(self.effects.get(k, 0.0) for k in start_knobs)
                + sum(i.effect for i in self.interactions if i.knobs <= start_knobs))

    @property
    def gap(self) -> float:
        return self.wer(frozenset(self.knobs)) - self.orig_wer

    def culprits(self) -> frozenset[str]:
        gap = abs(self.gap)
        if gap == 0:
            return frozenset()
        found = {k for k, e in self.effects.items() if abs(e) >= CULPRIT_SHARE * gap}
        for interaction in self.interactions:
            if abs(interaction.effect) >= CULPRIT_SHARE * gap:
                found |= interaction.knobs
        return frozenset(found)

    def culprit_interactions(self) -> list[frozenset[str]]:
        """The interactions that hold a culprit's share of the gap (knobs that act together)."""
        gap = abs(self.gap)
        return [i.knobs for i in self.interactions if gap and abs(i.effect) >= CULPRIT_SHARE * gap]


def parse_scenario(data: object, origin: str = "<scenario>") -> Scenario:
    def fail(cause: str) -> UserError:
        return UserError(cause, origin)

    if not isinstance(data, dict):
        raise fail("a scenario is a JSON object")
    try:
        knobs = tuple(str(k) for k in data["knobs"])
        orig_wer = float(data["orig_wer"])
        effects = {str(k): float(v) for k, v in data.get("effects", {}).items()}
        interactions = tuple(Interaction(frozenset(str(k) for k in i["knobs"]), float(i["effect"]))
                             for i in data.get("interactions", []))
        seed_std = float(data.get("seed_std", 0.0))
        segments = data.get("segment_count")
        cost = float(data.get("cost_per_run", 1.0))
        failure_rate = float(data.get("failure_rate", 0.0))
    except KeyError as exc:
        raise fail(f"missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise fail(f"malformed field: {exc}") from None
    if len(set(knobs)) != len(knobs) or not knobs:
        raise fail("'knobs' must be a non-empty list of distinct names")
    unknown = sorted((set(effects) | {k for i in interactions for k in i.knobs}) - set(knobs))
    if unknown:
        raise fail(f"effects or interactions name unknown knobs: {', '.join(unknown)}")
    if any(len(i.knobs) < 2 for i in interactions):
        raise fail("an interaction needs at least two knobs")
    if seed_std < 0 or cost < 0 or (segments is not None and (not isinstance(segments, int) or segments < 1)):
        raise fail("seed_std and cost_per_run must be >= 0, segment_count a positive integer")
    if not 0 <= failure_rate < 1:
        raise fail("failure_rate must be in [0, 1)")
    return Scenario(knobs, orig_wer, effects, interactions, seed_std, segments, cost, data.get("name", origin),
                    failure_rate)


def load_scenario(path: str | Path) -> Scenario:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", path) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"not valid JSON: {exc}", path) from None
    return parse_scenario(data, str(path))
