"""What a local bisection run is given: the pair, the work folder, seeds, parallelism, how trainings are scored and
where they run. One plain settings object, passed through from the command line to the runner."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from knobs.loader import LoadContext
from knobs.requirements import Requirements
from runner.pair_environments import PairEnvironments


@dataclass(frozen=True)
class Recognition:
    """How a training is scored: RETURNN's forward task on the config's `eval` data, greedy CTC decoding with
    `vocab` (label index -> word), WER against `ref_file` (`tag word ...` per line)."""

    vocab: tuple[str, ...]
    ref_file: str
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", tuple(self.vocab))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))

    def key(self) -> str:
        """Content hash of what of the scoring decides a WER: the vocabulary, the references' content, the
        recognition arguments (an unreadable references file is a UserError)."""
        try:
            refs = Path(self.ref_file).read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read the references: {exc.strerror or exc}", self.ref_file) from None
        parts = [list(self.vocab), hashlib.sha256(refs).hexdigest(), list(self.extra_args)]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass
class RunSettings:
    """A local bisection of `orig` vs `start` in `work`.

    `seeds`: seeds per hybrid (None: 1 for a fixed list; a strategy's own default); `baseline_seeds`: seeds of orig
    and start in a fixed list (a strategy chooses its own); `parallel`: trainings at once; `recognition`: how test
    WERs are computed (None: only the cheap dev score); `data_env`: environment variables that locate the data
    (e.g. the demo's); `environments`: each side's environment (default: the tool's own Python); `requires`: what
    orig's and start's configs need from RETURNN (checked against their environments before a batch starts)."""

    orig: Path
    start: Path
    work: Path
    epochs: int | None = None
    seeds: int | None = None
    baseline_seeds: int = 3
    parallel: int = 2
    retry_failed: bool = False
    recognition: Recognition | None = None
    data_env: dict[str, str] = field(default_factory=dict)
    context: LoadContext = field(default_factory=LoadContext)
    rules_file: str | None = None
    environments: PairEnvironments = field(default_factory=lambda: PairEnvironments.from_files(None, None))
    requires: dict[str, Requirements] = field(default_factory=dict)

    @property
    def score_key(self) -> str | None:
        """The folder name of this run's scorings (`jobs/<key>/scored/<score_key>`); None: not scored."""
        return self.recognition.key() if self.recognition else None

    @property
    def scorer(self) -> str:
        return "test WER" if self.recognition else "dev error"
