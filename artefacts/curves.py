"""Per-epoch score curves of trainings: read, align, and tell from which epoch two curves stay apart.

Noise band. How far apart may two curves be by chance? Two estimates, both of a noise the curves share:

* Replicates (preferred; `replicate_band`): runs of one config that differ only in the seed. In each epoch
  their standard deviation s_e estimates how much one run scatters around the config's expected curve;
  the difference of two such runs scatters with s_e*sqrt(2), and the band is 2*sqrt(2)*s_e (~95 % if
  Gaussian). Kept per epoch: the noise is far from constant over a training (early on every seed sits at
  "all blank", later they leave it at different epochs). This is the only estimate that also covers the
  slow, persistent offsets between seeds.
* Jitter (`jitter`, from 5 finite epochs on): a curve is a smooth trend plus epoch-to-epoch jitter. The
  second difference x[i-1] - 2 x[i] + x[i+1] cancels any locally linear trend and leaves white noise of
  variance 6 sigma^2 (the pseudo-residuals of Gasser, Sroka & Jennen-Steinmetz 1986), so
  sigma = 1.4826 * MAD(second differences) / sqrt(6). The median (not the standard deviation) keeps the
  curved start of a training, learning-rate resets and single outliers from inflating it (simulated: 1.00
  sigma for white noise, 1.14 sigma for noise on an exp(-epoch/5) start). A running-median residual does
  not work here: on a monotone stretch the median of 5 epochs is the middle one, so a steadily falling
  noisy curve shows no residual at all. For two curves the band is 2*sqrt(sigma_a^2 + sigma_b^2). It does
  not see seed offsets, so without replicates it is a lower bound of the noise: "parted" then means "apart
  by more than the curves' own jitter", which is necessary, not sufficient, for a real difference.
With replicates the band in an epoch is the larger of the two, so that a replicate spread that is 0 by
chance (two or three seeds that agree in one epoch) does not shrink it below the jitter.

Parting epoch: the first epoch e such that in e and in every later compared epoch (both scores finite)
|a - b| exceeds the band with the same sign, and that run covers at least `MIN_PARTED_EPOCHS` epochs.
"Every later epoch" rules out curves that meet or cross again; the same sign rules out a crossing that jumps
over the band between two epochs; the minimum run length keeps one noisy final epoch (a 5 % event per
epoch under the band) from counting as a parting (three independent ones: ~0.01 %).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artefacts.lr_file import parse_lr_text
from artefacts.train_info import looks_like_train_info, parse_train_info
from common.atomic import write_atomic
from common.errors import UserError

MIN_JITTER_EPOCHS = 5
MAD_TO_SIGMA = 1.4826  # MAD -> standard deviation for Gaussian noise
BAND_SIGMAS = 2.0
MIN_PARTED_EPOCHS = 3


@dataclass
class Curve:
    label: str
    values: dict[int, float]  # epoch -> score (lower is better; may be nan/inf)


def read_scores(path: str | Path) -> dict[int, dict[str, float]]:
    """Epoch -> {key: score} of a RETURNN learning-rate file or a `*.train.info.txt` file (told apart by
    content: a learning-rate file is a dict literal)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", path) from None
    except UnicodeDecodeError:
        raise UserError("neither a RETURNN learning-rate file nor a score file: not UTF-8 text", path) from None
    try:
        if text.lstrip().startswith("{"):
            return {epoch: data.scores for epoch, data in parse_lr_text(text).items()}
        if looks_like_train_info(text):
            return parse_train_info(text)
    except ValueError as exc:
        kind = "RETURNN learning-rate file" if text.lstrip().startswith("{") else "score file"
        raise UserError(f"malformed {kind}: {exc}", path) from None
    raise UserError("neither a RETURNN learning-rate file ({epoch: EpochData(...)}) nor a score file "
                    "('epoch N key: value' lines)", path)


def curve_of(scores: dict[int, dict[str, float]], key: str, label: str, path: str | Path | None = None) -> Curve:
    """The `key` scores as a curve; `UserError` listing the keys there are if none has `key`."""
    values = {epoch: s[key] for epoch, s in scores.items() if key in s}
    if not values:
        found = score_keys_of(scores)
        raise UserError(f"no {key!r} scores (there are: {', '.join(found) or 'none'})", path)
    return Curve(label, values)


def score_keys_of(scores: dict[int, dict[str, float]]) -> list[str]:
    """All score keys in any epoch, sorted."""
    return sorted({k for s in scores.values() for k in s})


def read_curve(path: str | Path, key: str = "dev_score") -> Curve:
    """The `key` curve of a learning-rate file or `*.train.info.txt` file, labelled with the file name."""
    return curve_of(read_scores(path), key, Path(path).name, path)


def jitter(values: list[float]) -> float | None:
    """Epoch-to-epoch noise sigma of a curve: 1.4826 * MAD of its second differences / sqrt(6) (see the module
    docstring); non-finite values are skipped. None with fewer than `MIN_JITTER_EPOCHS` finite values."""
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(arr) < MIN_JITTER_EPOCHS:
        return None
    pseudo = (arr[:-2] - 2 * arr[1:-1] + arr[2:]) / math.sqrt(6)
    return MAD_TO_SIGMA * float(np.median(np.abs(pseudo - np.median(pseudo))))


def replicate_band(replicates: list[Curve]) -> dict[int, float] | None:
    """Per-epoch band from replicate runs of one config: 2*sqrt(2) times their standard deviation in each
    epoch where all have a finite score (see the module docstring). None with fewer than 2 replicates."""
    if len(replicates) < 2:
        return None
    epochs = sorted(set.intersection(*(set(c.values) for c in replicates)))
    band = {}
    for epoch in epochs:
        values = [c.values[epoch] for c in replicates]
        if all(math.isfinite(v) for v in values):
            band[epoch] = BAND_SIGMAS * math.sqrt(2) * float(np.std(values, ddof=1))
    return band


@dataclass
class Comparison:
    a: str
    b: str
    epochs: list[int]  # common epochs where both scores are finite
    gaps: list[float]  # b - a per compared epoch
    bands: list[float | None]  # noise band per compared epoch (None: no estimate)
    band_source: str  # "replicates", "jitter" or "none"
    parted_from: int | None
    best_a: tuple[int, float]  # (epoch, score) of the lowest finite score
    best_b: tuple[int, float]
    final_epoch: int
    final_gap: float  # b - a in the last compared epoch
    notes: list[str] = field(default_factory=list)

    @property
    def best_gap(self) -> float:
        """best(b) - best(a), lower scores being better."""
        return self.best_b[1] - self.best_a[1]

    @property
    def band(self) -> float | None:
        """The widest band used."""
        known = [b for b in self.bands if b is not None]
        return max(known) if known else None


def _best(curve: Curve) -> tuple[int, float] | None:
    finite = [(v, e) for e, v in curve.values.items() if math.isfinite(v)]
    return (min(finite)[1], min(finite)[0]) if finite else None


def parted_from(epochs: list[int], gaps: list[float], bands: list[float | None]) -> int | None:
    """The parting rule of the module docstring on aligned gaps and bands."""
    start = None
    sign = 0.0
    for i in range(len(epochs) - 1, -1, -1):
        band = bands[i]
        if band is None or abs(gaps[i]) <= band or (sign and math.copysign(1.0, gaps[i]) != sign):
            break
        sign = math.copysign(1.0, gaps[i])
        start = i
    if start is None or len(epochs) - start < MIN_PARTED_EPOCHS:
        return None
    return epochs[start]


def compare_curves(a: Curve, b: Curve, band: dict[int, float] | None = None) -> Comparison:
    """Align `b` to `a` per epoch and apply the parting rule. `band`: a per-epoch replicate band (from
    `replicate_band`), combined with the jitter band as described in the module docstring."""
    best_a, best_b = _best(a), _best(b)
    for curve, best in ((a, best_a), (b, best_b)):
        if best is None:
            raise UserError(f"{curve.label} has no finite score")
    epochs = [e for e in sorted(set(a.values) & set(b.values))
              if math.isfinite(a.values[e]) and math.isfinite(b.values[e])]
    if not epochs:
        raise UserError(f"{a.label} and {b.label} have no common epoch where both scores are finite")
    gaps = [b.values[e] - a.values[e] for e in epochs]
    sigma_a, sigma_b = jitter([a.values[e] for e in sorted(a.values)]), jitter([b.values[e] for e in sorted(b.values)])
    jitter_band = None if sigma_a is None or sigma_b is None else BAND_SIGMAS * math.hypot(sigma_a, sigma_b)
    replicate = band or {}
    bands: list[float | None] = []
    for epoch in epochs:
        known = [x for x in (replicate.get(epoch), jitter_band) if x is not None]
        bands.append(max(known) if known else None)
    source = "replicates" if replicate else "jitter" if jitter_band is not None else "none"
    notes = []
    if source == "none":
        notes.append(f"fewer than {MIN_JITTER_EPOCHS} epochs and no replicates: no noise band")
    for curve in (a, b):
        bad = sorted(e for e, v in curve.values.items() if not math.isfinite(v))
        if bad:
            notes.append(f"{curve.label}: non-finite score in epoch {', '.join(map(str, bad[:5]))}"
                         f"{' ...' if len(bad) > 5 else ''} (not compared)")
    return Comparison(a.label, b.label, epochs, gaps, bands, source, parted_from(epochs, gaps, bands),
                      best_a, best_b, epochs[-1], gaps[-1], notes)


def parting_epochs(curves: dict[tuple[str, int], Curve]) -> dict[str, int | None]:
    """Per label: the epoch from which its seed-1 dev curve stays apart from start's, so that a user can stop
    hopeless trainings early. The noise band comes from the start replicates (see `replicate_band`)."""
    reference = curves.get(("start", 1))
    band = replicate_band([c for (label, _), c in curves.items() if label == "start"])
    if reference is None:
        return {}
    return {label: compare_curves(reference, c, band).parted_from
            for (label, seed), c in curves.items() if seed == 1 and label != "start"}


def curves_png(curves: list[Curve], key: str, parted: dict[str, int] | None = None) -> bytes:
    """A PNG plot of the curves (matplotlib's Agg canvas, no pyplot state; log scale when the scores span more
    than a factor 10); `parted`: label -> parting epoch, marked with a dotted line in the curve's colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for curve in curves:
        epochs = sorted(curve.values)
        values = [curve.values[e] if math.isfinite(curve.values[e]) else np.nan for e in epochs]
        (line,) = ax.plot(epochs, values, marker=".", label=curve.label)
        if parted and curve.label in parted:
            ax.axvline(parted[curve.label], color=line.get_color(), linestyle=":", linewidth=1)
    finite = [v for c in curves for v in c.values.values() if math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) > 10 * min(finite):  # a steep start would flatten the rest
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def plot_curves(curves: list[Curve], key: str, png: str | Path, parted: dict[str, int] | None = None) -> None:
    """Write `curves_png` to `png` atomically."""
    write_atomic(png, curves_png(curves, key, parted))

