"""Durations as people read them."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """'42 s', '7 min 31 s', '2 h 05 min'; '-' for None."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
