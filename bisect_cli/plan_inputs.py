"""Inputs shared by `hybrids`, `run` and `submit`: the knob requests and how trainings are scored."""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.errors import UserError
from demo.task import ensure_demo_data
from interpolate.plan import DIRECTIONS, HybridRequest
from runner.local import Recognition

DEMO_ENV = "CONFIG_BISECT_DEMO_DATA"


def directions_of(direction: str) -> list[str]:
    return list(DIRECTIONS) if direction == "both" else [direction]


def requests_from(knob_list: str | None, directions: list[str]) -> list[HybridRequest] | None:
    """`--knobs a,b` switched together in each direction; None means each knob alone."""
    if not knob_list:
        return None
    knobs = frozenset(k.strip() for k in knob_list.split(",") if k.strip())
    return [HybridRequest(knobs, d) for d in directions]


def _labels(vocab: object) -> list[str]:
    return vocab if isinstance(vocab, list) else [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def recognition_setup(orig: Path, start: Path, vocab_file: str | None, refs: str | None
                      ) -> tuple[dict[str, str], Recognition | None]:
    """(environment for the trainings, how to score): the demo data when the configs read it (generated on
    first use, exported for loading too), or `--vocab` with `--refs`; None: only the cheap dev score."""
    env: dict[str, str] = {}
    recognition = None
    if DEMO_ENV in orig.read_text() + start.read_text():
        data_dir = ensure_demo_data()
        env[DEMO_ENV] = str(data_dir)
        os.environ.update(env)  # the configs read it while they are loaded for the diff, too
        recognition = Recognition(_labels(json.loads((data_dir / "vocab.json").read_text())),
                                  str(data_dir / "test.ref.txt"))
    if vocab_file or refs:
        if not (vocab_file and refs):
            raise UserError("--vocab and --refs go together")
        try:
            vocab = json.loads(Path(vocab_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read the vocabulary: {exc}", vocab_file) from None
        recognition = Recognition(_labels(vocab), str(Path(refs).resolve()))
    return env, recognition
