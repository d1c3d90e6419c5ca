"""Add a bisection to an existing Sisyphus setup (i6_experiments style), with the jobs `submit` uses.

    # config/experiments/my_exp.py of your setup
    from jobs.setup_api import add_bisection

    def sis_run_with_prefix(prefix_name: str = "experiments/my_exp"):
        ...  # the experiment's own jobs, e.g. the two ReturnnConfigs it trains
        add_bisection(prefix_name, orig_config, start_config, name="lr_fix", epochs=20)

The configs are files (paths) or ReturnnConfig-like objects: a dict of config values, or anything with
`write(path)` (i6_core's ReturnnConfig), written once into `config-bisect-inputs/` of the setup under a name
from their content. Aliases: `<prefix>/<name>/<hybrid>/seed<k>/{hybrid,train,score}`; outputs
`<prefix>/<name>/results.json`, `report.txt`, `report/`. The jobs and their hashes are those of
`config-bisect submit` for the same plan, so a bisection added here and one submitted share finished work.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bisect_cli.plan_inputs import directions_of, recognition_setup, requests_from
from common.atomic import write_atomic
from interpolate.hybrids import single_knob_requests
from jobs import engine_settings as es
from knobs import LoadContext, diff_configs, load_pair, load_rules

if TYPE_CHECKING:
    from jobs.bisect_jobs import GatherResultsJob

INPUT_DIR = "config-bisect-inputs"


def config_text(config: Any) -> str:
    """RETURNN config text of a dict of values (`#!rnn.py`, one `key = repr(value)` per line, as i6_core's
    ReturnnConfig writes plain values) or of an object with `write(path)`."""
    if isinstance(config, dict):
        return "#!rnn.py\n" + "".join(f"{key} = {value!r}\n" for key, value in config.items())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "returnn.config"
        config.write(str(path))
        return path.read_text()


def config_file(config: Any, side: str, setup_dir: Path) -> Path:
    """A path to `config`: given (str, Path, or tk.Path) or written into the setup, named by its content."""
    if isinstance(config, (str, Path)) or hasattr(config, "get_path"):
        return Path(config.get_path() if hasattr(config, "get_path") else config).resolve()
    text = config_text(config)
    path = setup_dir / INPUT_DIR / f"{side}.{hashlib.sha256(text.encode()).hexdigest()[:12]}.config"
    if not path.exists():
        write_atomic(path, text)
    return path.resolve()


def add_bisection(prefix: str, orig: Any, start: Any, *, name: str | None = None, knobs: list[str] | None = None,
                  direction: str = "both", seeds: int = 1, baseline_seeds: int = 3, epochs: int | None = None,
                  vocab: str | None = None, refs: str | None = None, rqmt: dict[str, Any] | None = None,
                  runtime_log: str | None = None, context: LoadContext | None = None,
                  setup_dir: str | Path = ".") -> GatherResultsJob:
    """Add the bisection of `orig` vs `start` under `prefix` to the Sisyphus graph being built (call it from a
    config's `py()` or `sis_run_with_prefix`); returns the job that gathers the results.

    `knobs` switched together (default: each knob alone), in `direction` (knock-in, knock-out or both); `vocab` and
    `refs` score the test split (the demo pair needs neither); `rqmt` wins over what the configs and `runtime_log`
    say (see `jobs.engine_settings`); `context` loads the configs as `--context`/`--set`/`--epochs` do."""
    from jobs.graph import Plan, build_bisection  # Sisyphus: imported where a graph is built

    context = context or LoadContext(epochs=epochs)
    setup = Path(setup_dir).resolve()
    orig_path, start_path = config_file(orig, "orig", setup), config_file(start, "start", setup)
    data_env, recognition = recognition_setup(orig_path, start_path, vocab, refs)
    loaded = load_pair(orig_path, start_path, context)
    directions = directions_of(direction)
    chosen = requests_from(",".join(knobs) if knobs else None, directions) or single_knob_requests(
        diff_configs(*loaded, load_rules()), directions)
    resources = es.pair_requests(loaded, rqmt or {}, epochs, es.runtime_from_log(runtime_log) if runtime_log else None,
                                 None)
    plan = Plan(requests=[(tuple(sorted(r.knobs)), r.direction) for r in chosen], seeds=seeds,
                baseline_seeds=baseline_seeds, epochs=epochs, vocab=list(recognition.vocab) if recognition else [],
                refs=recognition.ref_file if recognition else None, data_env=data_env, rqmt=resources.train,
                score_rqmt=resources.score, context_files=tuple(context.context_files), settings=context.settings)
    return build_bisection(str(orig_path), str(start_path), plan, pair=name or orig_path.stem, prefix=prefix)
