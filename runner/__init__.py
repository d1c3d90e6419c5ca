"""Local runner: train, recognize and score hybrids on one machine (no Sisyphus)."""
