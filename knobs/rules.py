"""The category rule table: which knob category a changed config path belongs to.

The shipped table is `knobs/rules.json`; a user file (`--knobs FILE`, same format) is tried first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path

from common.errors import UserError


def _shipped() -> dict:
    return json.loads(resources.files("knobs").joinpath("rules.json").read_text())


# the knob categories in display order: the shipped table's list (a new category is one line in rules.json)
CATEGORIES: tuple[str, ...] = tuple(_shipped()["categories"])


@dataclass(frozen=True)
class RuleTable:
    keys: tuple[tuple[str, str], ...]
    layer_attributes: tuple[tuple[str, str], ...]
    function_users: tuple[tuple[dict, str], ...]
    default_key: str = "other"
    default_layer: str = "model"

    def key_category(self, key: str) -> str | None:
        """Category of a top-level key by the table, or None when no rule matches."""
        return next((cat for pattern, cat in self.keys if fnmatchcase(key, pattern)), None)

    def attribute_category(self, attribute: str) -> str | None:
        return next((cat for pattern, cat in self.layer_attributes if fnmatchcase(attribute, pattern)), None)

    def function_user_rule(self, layer_name: str, layer: dict) -> str | None:
        """Category of a config function used by `layer` (e.g. a loss function, a feature transform) by the
        table, or None when no rule matches (then the layer's role in the graph decides)."""
        for condition, cat in self.function_users:
            if "attribute" in condition and condition["attribute"] not in layer:
                continue
            if "layer" in condition and not fnmatchcase(layer_name, condition["layer"]):
                continue
            return cat
        return None


def _validate(data: dict, origin: str) -> dict:
    if not isinstance(data, dict):
        raise UserError("a rule file must hold a JSON object", origin)
    for section in ("keys", "layer_attributes", "function_users"):
        for rule in data.get(section, []):
            if not (isinstance(rule, list) and len(rule) == 2 and rule[1] in CATEGORIES):
                raise UserError(f"bad rule {rule!r} in {section!r}: expected [pattern, category] with a "
                                f"category from {', '.join(CATEGORIES)}", origin)
    return data


def load_rules(user_file: str | Path | None = None) -> RuleTable:
    """The shipped table, with the rules of `user_file` (if any) taking precedence."""
    shipped = _validate(_shipped(), "rules.json")
    user: dict = {}
    if user_file is not None:
        try:
            user = _validate(json.loads(Path(user_file).read_text()), str(user_file))
        except FileNotFoundError:
            raise UserError("no such rule file", user_file) from None
        except json.JSONDecodeError as exc:
            raise UserError(f"not valid JSON: {exc}", user_file) from None

    def merged(section: str) -> tuple:
        return tuple(tuple(r) for r in user.get(section, []) + shipped[section])

    return RuleTable(keys=merged("keys"), layer_attributes=merged("layer_attributes"),
                     function_users=merged("function_users"),
                     default_key=user.get("default_key", shipped["default_key"]),
                     default_layer=user.get("default_layer", shipped["default_layer"]))
