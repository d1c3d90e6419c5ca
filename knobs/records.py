"""What a knob diff is made of: changes, knobs, warnings and the pair's diff (plain data, JSON via `asdict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from knobs.values import show, show_per_epoch


@dataclass
class Change:
    path: str
    orig: Any
    start: Any
    epochs: str | None = None  # None: every epoch (or not epoch-dependent)
    category: str = "other"
    note: str | None = None
    parts: list = field(default_factory=list)  # the path as keys (layer names may contain dots)
    trains_model_layers: list = field(default_factory=list)  # a loss change training these model layers' params
    per_epoch: bool = False  # orig/start are lists, one value per epoch of `epochs` (a warmup, a growing layer)

    def epoch_list(self, num_epochs: int) -> list[int]:
        """The epochs of this change as numbers (all epochs when `epochs` is None)."""
        if self.epochs is None:
            return list(range(1, num_epochs + 1))
        result: list[int] = []
        for piece in self.epochs.split(","):
            first, _, last = piece.partition("-")
            result.extend(range(int(first), int(last or first) + 1))
        return result

    def shown(self, limit: int = 30) -> tuple[str, str]:
        """Short renderings of both values; per-epoch values as `value (epochs)` pieces."""
        if not self.per_epoch:
            return show(self.orig, limit), show(self.start, limit)
        epochs = self.epoch_list(len(self.orig))
        return show_per_epoch(self.orig, epochs, limit), show_per_epoch(self.start, epochs, limit)


@dataclass
class Knob:
    name: str
    category: str
    changes: list[Change]
    switchable: bool = True
    coupled_with: list[str] = field(default_factory=list)
    coupling: list[str] = field(default_factory=list)  # why, one sentence per coupling
    summary: str = ""
    affects_results: bool = True


@dataclass(frozen=True)
class DiffWarning:
    """A fact about the pair that a user must know before trusting a comparison (see `knobs.lint`).

    `code` is stable (tools and the report key on it), `message` says what was found, `advice` what to do;
    `side` is "orig", "start", "both" (each side on its own, alike) or None (a fact about the pair)."""

    code: str
    message: str
    advice: str
    side: str | None = None

    def text(self) -> str:
        return f"{self.side + ': ' if self.side else ''}{self.message} — {self.advice}"


@dataclass
class PairDiff:
    orig: str
    start: str
    knobs: list[Knob]
    equivalent: list[dict]
    unresolved: list[dict]
    warnings: list[DiffWarning]
    epochs: int | None = None
    helpers: list[Change] = field(default_factory=list)  # values RETURNN never reads; shown, not knobs

    def to_json(self) -> dict:
        return asdict(self)

    def knob(self, name: str) -> Knob | None:
        return next((k for k in self.knobs if k.name == name), None)

    def warning_codes(self) -> list[str]:
        return [w.code for w in self.warnings]
