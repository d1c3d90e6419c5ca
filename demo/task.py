"""The embedded demo task: synthetic "speech" made of word prototypes, deterministic from a seed.

Each of the `vocab_size` words is a prototype: 2-4 states, each a random mean vector of `feature_dim`
features. An utterance is 2-5 random words; every state lasts 2-4 frames (duration jitter), 0-2 frames
of a silence prototype separate the words, and Gaussian noise is added to every frame. Targets are the
word indices (CTC over words: WER = label error rate). Splits are written with RETURNN's own HDF writer,
with word references (`seq_tag w1 w2 ...`) for dev and test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SPLITS = ("train", "dev", "test")
GENERATOR_VERSION = 1  # part of the cache folder's name: bump it when the generator's output changes


@dataclass(frozen=True)
class DemoSpec:
    """The generator's parameters; the cache folder is named by their hash (and GENERATOR_VERSION)."""

    seed: int = 42
    vocab_size: int = 24
    feature_dim: int = 16
    noise: float = 0.9
    num_seqs: tuple[int, int, int] = (600, 80, 80)  # train, dev, test

    def digest(self) -> str:
        payload = {**asdict(self), "generator_version": GENERATOR_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


# The embedded pairs find their data through an environment variable each (set by `run`/`submit`); the subtle
# pair's task is noisier and larger, so that its trainings converge to a WER with a small seed spread.
DEMO_DATASETS: dict[str, DemoSpec] = {
    "CONFIG_BISECT_DEMO_DATA": DemoSpec(),
    "CONFIG_BISECT_SUBTLE_DATA": DemoSpec(noise=1.2, num_seqs=(1000, 100, 600)),
}


def word_name(index: int) -> str:
    """The word of label `index` as written in the references and hypotheses."""
    return f"w{index:02d}"


def prototypes(spec: DemoSpec) -> tuple[list[np.ndarray], np.ndarray]:
    """Per word an array (states, features), and the silence mean."""
    rng = np.random.RandomState(spec.seed)
    words = [rng.normal(0.0, 1.0, size=(rng.randint(2, 5), spec.feature_dim)) for _ in range(spec.vocab_size)]
    silence = rng.normal(0.0, 0.3, size=spec.feature_dim)
    return words, silence


def utterances(spec: DemoSpec, split: str) -> list[tuple[str, np.ndarray, list[int]]]:
    """(tag, features (T, F) float32, word indices) for one split; the same for the same spec."""
    words, silence = prototypes(spec)
    split_index = SPLITS.index(split)
    rng = np.random.RandomState(spec.seed * 1000 + split_index + 1)
    result = []
    for n in range(spec.num_seqs[split_index]):
        labels = list(rng.randint(0, spec.vocab_size, size=rng.randint(2, 6)))
        frames = [silence] * rng.randint(1, 3)
        for label in labels:
            for state in words[label]:
                frames += [state] * rng.randint(2, 5)
            frames += [silence] * rng.randint(0, 3)
        clean = np.array(frames)
        features = (clean + rng.normal(0.0, spec.noise, size=clean.shape)).astype("float32")
        result.append((f"{split}/seq{n:05d}", features, [int(x) for x in labels]))
    return result


def write_split(spec: DemoSpec, split: str, folder: Path) -> None:
    """`<split>.hdf` with RETURNN's own HDF writer (features as `data`, word labels as `classes`), and for
    dev and test the references `<split>.ref.txt`."""
    from returnn.datasets.hdf import SimpleHDFWriter

    data = utterances(spec, split)
    writer = SimpleHDFWriter(str(folder / f"{split}.hdf"), dim=spec.feature_dim, ndim=2,
                             extra_type={"classes": (spec.vocab_size, 1, "int32")})
    for tag, features, labels in data:
        writer.insert_batch(features[None], seq_len=[len(features)], seq_tag=[tag],
                            extra={"classes": np.array([labels], dtype="int32")})
    writer.close()
    if split != "train":
        refs = "".join(f"{tag} {' '.join(word_name(x) for x in labels)}\n" for tag, _, labels in data)
        (folder / f"{split}.ref.txt").write_text(refs)


def default_cache_dir() -> Path:
    """$CONFIG_BISECT_CACHE, else $XDG_CACHE_HOME/config-bisect, else ~/.cache/config-bisect."""
    if os.environ.get("CONFIG_BISECT_CACHE"):
        return Path(os.environ["CONFIG_BISECT_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "config-bisect"


def ensure_demo_data(cache_dir: Path | None = None, spec: DemoSpec = DemoSpec()) -> Path:
    """The demo data folder, generated on first use (into a temp folder, then renamed: atomic)."""
    folder = (cache_dir or default_cache_dir()) / f"demo-{spec.digest()}"
    if (folder / "spec.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-", dir=folder.parent))
    try:
        for split in SPLITS:
            write_split(spec, split, tmp)
        vocab = {word_name(i): i for i in range(spec.vocab_size)}
        (tmp / "vocab.json").write_text(json.dumps(vocab, indent=1))
        (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=1))
        try:
            tmp.rename(folder)
        except OSError:  # another process was faster: its data is the same
            if not (folder / "spec.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder
