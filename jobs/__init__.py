"""Sisyphus jobs of a bisection (needs RWTH Sisyphus; nothing else in config-bisect imports this package)."""
