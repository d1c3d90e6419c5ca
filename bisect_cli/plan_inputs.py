"""Inputs shared by `hybrids`, `run` and `submit`: the knob requests and how trainings are scored."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from common.errors import UserError
from demo.task import DEMO_DATASETS, ensure_demo_data
from interpolate.hybrids import HybridResult, make_hybrid, switch_units
from interpolate.plan import DIRECTIONS, HybridRequest
from interpolate.units import Units
from knobs import LoadContext, PairDiff, diff_configs, load_pair, load_rules
from knobs.environment import EnvironmentKnob, with_environment_knobs
from runner.settings import Recognition


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
    first use, exported for loading too; `demo.task.DEMO_DATASETS` names the variable of each embedded pair),
    or `--vocab` with `--refs` (unreadable files are a UserError); None: only the cheap dev score."""
    env: dict[str, str] = {}
    recognition = None
    texts = orig.read_text() + start.read_text()
    for variable, spec in DEMO_DATASETS.items():
        if variable in texts:
            data_dir = ensure_demo_data(spec=spec)
            env[variable] = str(data_dir)
            recognition = Recognition(_labels(json.loads((data_dir / "vocab.json").read_text())),
                                      str(data_dir / "test.ref.txt"))
    os.environ.update(env)  # the configs read it while they are loaded for the diff, too
    if vocab_file or refs:
        if not (vocab_file and refs):
            raise UserError("--vocab and --refs go together")
        try:
            vocab = json.loads(Path(vocab_file).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read the vocabulary: {exc}", vocab_file) from None
        recognition = Recognition(_labels(vocab), str(Path(refs).resolve()))
        recognition.key()  # unreadable references: refused before anything is written
    return env, recognition


def strategy_units(orig: Path, start: Path, out_dir: Path, context: LoadContext, rules_file: str | None = None,
                   environment_knobs: list[EnvironmentKnob] = ()
                   ) -> tuple[Units, PairDiff, Callable[[HybridRequest], HybridResult]]:
    """(units, diff, writer of proven hybrids into `out_dir`) for a strategy over the pair (environment knobs
    are units of their own); knobs whose hybrid cannot be written are left out with a line saying why."""
    rules = load_rules(rules_file)
    orig_config, start_config = load_pair(str(orig), str(start), context)
    diff = with_environment_knobs(diff_configs(orig_config, start_config, rules), environment_knobs)
    units, left_out = switch_units(orig_config, start_config, diff, out_dir, context, rules)
    for h in left_out:
        click.echo(f"knob {'+'.join(h.knobs)} left out: its hybrid {h.status}: {h.reason}")
    if not units:
        raise UserError("the pair differs in no knob that can be switched: nothing to bisect")

    def write_hybrid(request: HybridRequest) -> HybridResult:
        return make_hybrid(orig_config, start_config, diff, request, out_dir, context, rules)

    return units, diff, write_hybrid


def proven_units(orig: Path, start: Path, context: LoadContext, rules_file: str | None = None,
                 environment_knobs: list[EnvironmentKnob] = ()) -> dict[str, list[str]]:
    """The units of `strategy_units` (unit name -> its knobs, sorted), proven in a scratch folder that is dropped."""
    with tempfile.TemporaryDirectory(prefix="config-bisect-units-") as scratch:
        units, _, _ = strategy_units(orig, start, Path(scratch), context, rules_file, environment_knobs)
    return {name: sorted(knobs) for name, knobs in units.items()}
