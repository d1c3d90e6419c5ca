"""Per-epoch score curves of trainings: read, align, and tell from which epoch two curves stay apart.

Noise band. A score curve is a trend plus epoch-to-epoch jitter. We estimate each curve's jitter as the
standard deviation of its residual from a centred running median over 5 epochs (robust to the steep start
of a training and to single outliers), sigma_a and sigma_b. The difference of two independent curves then
jitters with sqrt(sigma_a^2 + sigma_b^2); the band is 2 of those (about 95 % of the jitter if it is
Gaussian). Where replicate runs of the same config exist, their spread is the better estimate
(`replicate_band`; `config-bisect run` uses the start replicates): a flat curve (all blank, dev error 1.0)
has no jitter, yet its seeds still differ.

Parting epoch: the first epoch from which |a - b| stays above the band in every later compared epoch (so a
crossing, or curves that meet again, do not count as parted).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.atomic import write_atomic
from common.errors import UserError
from scoring.lr_file import read_lr_file

_INFO_LINE = re.compile(r"^epoch\s+(\d+)\s+(\S+):\s+(\S+)\s*$")
SMOOTHING_WINDOW = 5


@dataclass
class Curve:
    label: str
    values: dict[int, float]  # epoch -> score


def read_train_info(path: str | Path, key: str = "dev_score") -> dict[int, float]:
    """`epoch   N dev_score: X` lines (RETURNN experiment score summaries); other lines are skipped, but a
    line starting with `epoch` must have that form."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror}", path) from None
    values: dict[int, float] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip().startswith("epoch"):  # summary lines (num params, epoch times) are not scores
            continue
        match = _INFO_LINE.match(line.strip())
        if not match:
            raise UserError(f"line {number} is not 'epoch N key: value': {line.strip()[:60]!r}", path)
        if match[2] == key:
            try:
                values[int(match[1])] = float(match[3])
            except ValueError:
                raise UserError(f"line {number}: {match[3]!r} is not a number", path) from None
    return values


def read_curve(path: str | Path, key: str = "dev_score") -> Curve:
    """A curve from a RETURNN learning-rate file or a `*.train.info.txt` score summary (detected by content)."""
    text = Path(path).read_text() if Path(path).is_file() else None
    if text is None:
        raise UserError("no such file", path)
    if text.lstrip().startswith("{"):
        epochs = read_lr_file(path)
        values = {e: v.scores[key] for e, v in epochs.items() if key in v.scores}
        if not values:
            found = sorted({k for v in epochs.values() for k in v.scores})
            raise UserError(f"no {key!r} scores in the learning-rate file (it has: {', '.join(found)})", path)
    else:
        values = read_train_info(path, key)
        if not values:
            raise UserError(f"no {key!r} lines", path)
    return Curve(Path(path).name, values)


def jitter(values: list[float]) -> float:
    """Standard deviation of the residual from a centred running median (window 5)."""
    if len(values) < 3:
        return 0.0
    arr = np.asarray(values, dtype=float)
    half = SMOOTHING_WINDOW // 2
    smooth = np.array([np.median(arr[max(0, i - half):i + half + 1]) for i in range(len(arr))])
    return float(np.std(arr - smooth, ddof=1))


@dataclass
class Comparison:
    epochs: list[int]
    a: list[float]
    b: list[float]
    band: float  # the widest band used
    parted_from: int | None
    best_gap: float  # best(b) - best(a), lower scores are better
    final_gap: float  # b - a in the last common epoch


def compare_curves(a: Curve, b: Curve, band: float | dict[int, float] | None = None) -> Comparison:
    """`band`: a number, per-epoch numbers (epochs without one use the smoothing band), or None."""
    epochs = sorted(set(a.values) & set(b.values))
    finite = [e for e in epochs if math.isfinite(a.values[e]) and math.isfinite(b.values[e])]
    if not finite:
        raise UserError(f"{a.label} and {b.label} have no common epoch with finite scores")
    va, vb = [a.values[e] for e in finite], [b.values[e] for e in finite]
    smooth_band = 2 * math.sqrt(jitter(va) ** 2 + jitter(vb) ** 2)
    per_epoch = band if isinstance(band, dict) else {}
    scalar = band if isinstance(band, int | float) else smooth_band
    bands = [max(per_epoch.get(e, scalar), 1e-12) for e in finite]
    parted = None
    for i in range(len(finite) - 1, -1, -1):
        if abs(va[i] - vb[i]) > bands[i]:
            parted = finite[i]
        else:
            break
    return Comparison(finite, va, vb, max(bands), parted, min(vb) - min(va), vb[-1] - va[-1])


def replicate_band(replicates: list[Curve]) -> dict[int, float] | None:
    """Per-epoch band from replicate runs of one config: 2*sqrt(2) times their standard deviation in that
    epoch (the difference of two runs with that spread stays inside it ~95 % of the time). Noise is far
    from constant over a training (all seeds sit at "all blank" early, then leave it at different epochs),
    so the band is kept per epoch. None with fewer than 2 replicates."""
    if len(replicates) < 2:
        return None
    epochs = sorted(set.intersection(*(set(c.values) for c in replicates)))
    return {e: 2 * math.sqrt(2) * float(np.std([c.values[e] for c in replicates], ddof=1)) for e in epochs}


def curves_png(curves: list[Curve], key: str) -> bytes:
    """A PNG plot of the curves (matplotlib, Agg backend)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for curve in curves:
        epochs = sorted(curve.values)
        ax.plot(epochs, [curve.values[e] for e in epochs], marker=".", label=curve.label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def plot_curves(curves: list[Curve], key: str, png: str | Path) -> None:
    write_atomic(png, curves_png(curves, key))
