"""Interpolator: hybrid configs that switch exactly the chosen knobs, proven by round trip."""
