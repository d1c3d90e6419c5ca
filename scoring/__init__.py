"""Scoring: WER with per-segment error counts."""
