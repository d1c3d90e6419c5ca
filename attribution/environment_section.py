"""The report's environment section: per side the environment file, what its probe and its trainings' logs
state and what the original training's log states; then the warnings (plain data from results.json's
`environments`, see `runner.environment_facts`)."""

from __future__ import annotations

from typing import Any

SHOWN = ("returnn_version", "returnn_git", "tensorflow", "python_version", "gpu")


def _facts(facts: dict[str, Any] | None) -> str:
    if not facts:
        return "-"
    return ", ".join(f"{name} {facts[name]}" for name in SHOWN if facts.get(name) is not None)


def environment_rows(section: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(side, environment file, probed, trained (first training's log), original training's log)."""
    rows = []
    for side, info in section["sides"].items():
        original = info.get("original_log")
        rows.append((side, info.get("file") or "this tool's Python", _facts(info.get("probe")),
                     _facts(info.get("trained")), _facts(original) + (f" ({original['log']})" if original else "")))
    return rows


def environment_notes(section: dict[str, Any]) -> list[str]:
    knobs = [f"environment knob {k['name']} (switches {', '.join(k['fields'])}): {k['summary']}"
             for k in section.get("knobs", [])]
    return [*knobs, *(f"warning: {w}" for w in section.get("warnings", [])), *section.get("original", [])]


def environment_markdown(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    header = ["## Environments", "", "| side | environment | probed | trained (log) | original training (log) |",
              "|---|---|---|---|---|"]
    return header + [f"| {' | '.join(row)} |" for row in environment_rows(section)] + [""] + \
        [f"- {note}" for note in environment_notes(section)] + [""]
