"""The dev-score curves of a bisection's trainings, and from which epoch each hybrid's curve parts from start's
(so that a user can stop hopeless trainings early). Used by `run` and by the Sisyphus gather job."""

from __future__ import annotations

from pathlib import Path

from artefacts.curves import Curve, compare_curves, read_curve, replicate_band
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


def parting_epochs(curves: dict[tuple[str, int], Curve]) -> dict[str, int | None]:
    """Per label: the epoch from which its seed-1 dev curve stays apart from start's. The noise band comes from
    the start replicates (see `artefacts.curves.replicate_band`)."""
    reference = curves.get(("start", 1))
    if reference is None:
        return {}
    band = replicate_band([c for (label, _), c in curves.items() if label == "start"])
    return {label: compare_curves(reference, c, band).parted_from
            for (label, seed), c in curves.items() if seed == 1 and label != "start"}


def first_seed_curves(curves: dict[tuple[str, int], Curve]) -> list[Curve]:
    """The seed-1 curve of each label, in label order (what the report plots)."""
    return [c for (_, seed), c in sorted(curves.items()) if seed == 1]
