"""The dev-score curves of a bisection's trainings (what `artefacts.curves.parting_epochs` compares). Used by
`run` and by the Sisyphus gather job."""

from __future__ import annotations

from pathlib import Path

from artefacts.curves import Curve, read_curve
from common.errors import UserError
from runner.local import JobResult
from runner.steps import LR_FILE

DEV_KEY = "dev_error"


def dev_curves(results: list[JobResult], key: str = DEV_KEY) -> dict[tuple[str, int], Curve]:
    """(label, seed) -> the dev curve in the learning-rate file of each finished training."""
    curves = {}
    for result in results:
        if result.status != "ok" or not result.train_dir:
            continue
        try:
            curve = read_curve(Path(result.train_dir) / LR_FILE, key)
        except UserError:
            continue
        curve.label = f"{result.label} seed {result.seed}"
        curves[(result.label, result.seed)] = curve
    return curves
