"""What a config needs from RETURNN: its layer classes, its optimizer class and its behavior_version
(checked against a probed environment by `runner.probe.compatibility_problems`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from knobs.loader import LoadedConfig


@dataclass(frozen=True)
class Requirements:
    """What a config needs from RETURNN: its layer classes, its optimizer class (the dict spelling), its
    behavior_version."""

    layers: tuple[str, ...] = ()
    optimizer: str | None = None
    behavior_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "optimizer": self.optimizer, "behavior_version": self.behavior_version}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Requirements | None:
        if data is None:
            return None
        return cls(tuple(data["layers"]), data["optimizer"], data["behavior_version"])


def _layer_classes(net: Any, found: set[str]) -> None:
    if not isinstance(net, dict):
        return
    for layer in net.values():
        if isinstance(layer, dict) and isinstance(layer.get("class"), str):
            found.add(layer["class"])
            for sub in ("unit", "subnetwork"):
                _layer_classes(layer.get(sub), found)


def requirements_of(config: LoadedConfig) -> Requirements:
    """The needs of a loaded config (its network and every pretrain network)."""
    found: set[str] = set()
    nets = list(config.per_epoch["networks"]) if config.per_epoch else []
    for net in [config.value("network"), *nets]:
        _layer_classes(net, found)
    optimizer = config.value("optimizer")
    optimizer_class = optimizer.get("class") if isinstance(optimizer, dict) else None
    behavior = config.value("behavior_version")
    return Requirements(tuple(sorted(found)), optimizer_class if isinstance(optimizer_class, str) else None,
                        behavior if isinstance(behavior, int) and not isinstance(behavior, bool) else None)
