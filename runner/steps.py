"""The steps of one bisection job, as plain functions (the local runner and the Sisyphus jobs call these).

train: RETURNN trains a config in a work folder (own process; seed, model and LR file set on the
command line). recognize: RETURNN's forward task writes the output posteriors of the test split, which
are decoded greedily (CTC: best label per frame, repeats merged, blank dropped). score: WER against the
references with per-segment counts. A failed training never raises: it returns its reason and log.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from artefacts.lr_file import best_epoch, read_lr_file
from artefacts.training_log import parse_training_log
from common.atomic import write_atomic
from common.errors import UserError
from runner.environment import Environment, default_environment, process_env, returnn_command
from scoring.wer import ScoreResult, score_files

MODEL = "net-model/network"
LR_FILE = "learning_rates"
LOG = "./returnn.log"
PID_FILE = "returnn.pid"
FORWARD_BATCH_SIZE = 5000


@dataclass
class TrainResult:
    status: str  # "ok" or "failed"
    reason: str | None
    log: str
    work_dir: str
    final_epoch: int | None = None
    seconds: float = 0.0
    best_dev: dict | None = None  # cheap score: {"key", "epoch", "value"} from the learning-rate file
    environment: dict | None = None  # what RETURNN's log says it ran under (artefacts.training_log facts)
    returncode: int | None = None  # RETURNN's exit status; negative: killed by that signal

    def to_json(self) -> dict:
        return asdict(self)


def _returnn(config: Path, work_dir: Path, args: list[str], env: dict[str, str] | None, timeout: float | None,
             stdout_name: str, environment: Environment | None) -> int:
    """Run RETURNN in `work_dir` as `environment` says (default: the tool's own Python and RETURNN); its pid is
    kept in PID_FILE while it runs (so an orphan can be found)."""
    environment = environment or default_environment()
    cmd = returnn_command(environment, config, args)
    with open(work_dir / stdout_name, "w") as out:
        proc = subprocess.Popen(cmd, cwd=work_dir, env=process_env(environment, env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        (work_dir / PID_FILE).write_text(str(proc.pid))
        try:
            return proc.wait(timeout=timeout)
        except BaseException:  # timeout or Ctrl-C: do not leave RETURNN running
            proc.kill()
            proc.wait()
            raise
        finally:
            (work_dir / PID_FILE).unlink(missing_ok=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _last_error(log: Path) -> str:
    text = _ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def train(config: str | Path, work_dir: str | Path, seed: int, num_epochs: int | None = None,
          env: dict[str, str] | None = None, timeout: float | None = 3600.0, cheap_key: str = "dev_error",
          extra_args: tuple[str, ...] = (), environment: Environment | None = None) -> TrainResult:
    """Train `config` with `random_seed = seed` (and `num_epochs` if given) in `work_dir`, started in
    `environment`; `extra_args` are more RETURNN command-line arguments (e.g. `++demo_data_dir DIR`).
    The result records the environment facts RETURNN's log states (whatever the outcome).

    Never raises for a failed training: a non-zero exit, a timeout, a non-finite score in any trained epoch or
    a missing final checkpoint give status "failed" with the reason and the log."""
    config, work_dir = Path(config).resolve(), Path(work_dir).resolve()  # RETURNN runs inside work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    args = ["++task", "train", "++random_seed", str(seed), "++model", MODEL, "++learning_rate_file", LR_FILE,
            "++log", LOG, "++stop_on_nonfinite_train_score", "True"]
    if num_epochs:
        args += ["++num_epochs", str(num_epochs)]
    args += extra_args
    start = time.monotonic()
    log = work_dir / "returnn.stdout.txt"
    result = TrainResult("failed", None, str(log), str(work_dir))
    try:
        returncode = _returnn(config, work_dir, args, env, timeout, log.name, environment)
    except subprocess.TimeoutExpired:
        result.reason = f"training did not finish within {timeout:g} s"
        return result
    finally:
        result.seconds = round(time.monotonic() - start, 2)
        result.environment = logged_environment(log)
    result.returncode = returncode
    if returncode != 0:
        result.reason = f"RETURNN exited with {returncode}: {_last_error(log)}"
        return result
    failure, final, best = training_outcome(work_dir, num_epochs, cheap_key)
    if failure:
        result.reason = failure
        return result
    result.status, result.final_epoch, result.best_dev = "ok", final, best
    return result


def logged_environment(log: Path) -> dict | None:
    """The environment facts in a RETURNN stdout/log (None when RETURNN did not get as far as saying them)."""
    try:
        return parse_training_log(log).to_json()
    except UserError:
        return None


def training_outcome(work_dir: Path, epochs: int | None, cheap_key: str = "dev_error"
                     ) -> tuple[str | None, int | None, dict | None]:
    """(why the training in `work_dir` failed or None, final epoch, best `cheap_key` score) from what RETURNN
    left behind after exiting with 0: the learning-rate file (every score finite, the requested epochs
    trained) and the final checkpoint."""
    try:
        lr_data = read_lr_file(work_dir / LR_FILE)
    except UserError as exc:
        return exc.cause, None, None
    trained = [e for e, v in lr_data.items() if v.scores]  # RETURNN also stores the next epoch's LR, unscored
    if not trained:
        return "no epoch was trained", None, None
    final = max(trained)
    if epochs and final < epochs:
        return f"training stopped after epoch {final} of {epochs}", final, None
    bad = [(e, k) for e in sorted(trained) for k, v in lr_data[e].scores.items() if not math.isfinite(v)]
    if bad:
        return f"non-finite {bad[0][1]} in epoch {bad[0][0]}", final, None
    # checkpoints of pretrain epochs are called <model>.pretrain.NNN (engine/base.py:epoch_model_filename)
    if not any((work_dir / f"{MODEL}{kind}.{final:03d}.index").exists() for kind in ("", ".pretrain")):
        return f"no checkpoint {MODEL}.{final:03d} after training", final, None
    best = best_epoch(lr_data, cheap_key)
    return None, final, ({"key": cheap_key, "epoch": best[0], "value": best[1]} if best else None)


def ctc_greedy(posteriors: np.ndarray, blank: int) -> list[int]:
    """Best label per frame, repeats merged, blanks removed."""
    best = posteriors.argmax(axis=-1)
    labels, previous = [], None
    for label in best.tolist():
        if label != previous and label != blank:
            labels.append(label)
        previous = label
    return labels


def read_forward_hdf(path: Path) -> dict[str, np.ndarray]:
    """{seq_tag: (T, V) array} from RETURNN's forward HDF."""
    import h5py

    with h5py.File(path, "r") as f:
        inputs, lengths = f["inputs"][...], f["seqLengths"][...][:, 0]
        tags = [t.decode() if isinstance(t, bytes) else str(t) for t in f["seqTags"][...]]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return {tag: inputs[offsets[i]:offsets[i + 1]] for i, tag in enumerate(tags)}


def recognize(config: str | Path, work_dir: str | Path, epoch: int, vocab: list[str], name: str = "test",
              extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None, timeout: float | None = 1800.0,
              model: str | Path = MODEL, environment: Environment | None = None) -> Path:
    """Posteriors of the config's `eval` dataset (RETURNN's forward task) with the checkpoint of `epoch`,
    decoded to `<name>.hyp.txt`; `extra_args` may choose the data (e.g. `++demo_eval_split dev`).
    `model` is the checkpoint prefix (relative to `work_dir`, where training left it, or absolute); recognize
    in the environment the model was trained in (checkpoints need not load in another RETURNN/TF)."""
    config, work_dir = Path(config).resolve(), Path(work_dir).resolve()  # RETURNN runs inside work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    hdf = work_dir / f"{name}.posteriors.hdf"
    hdf.unlink(missing_ok=True)
    args = ["++task", "forward", "++model", str(model), "++load_epoch", str(epoch), "++output_file", str(hdf),
            "++log", f"./returnn.forward.{name}.log", "++learning_rate_file", LR_FILE,
            "++forward_batch_size", str(FORWARD_BATCH_SIZE), *extra_args]
    returncode = _returnn(config, work_dir, args, env, timeout, f"returnn.forward.{name}.stdout.txt", environment)
    if returncode != 0 or not hdf.exists():
        raise RuntimeError(f"recognition failed ({_last_error(work_dir / f'returnn.forward.{name}.stdout.txt')})")
    lines = []
    for tag, post in sorted(read_forward_hdf(hdf).items()):
        lines.append(" ".join([tag, *(vocab[i] for i in ctc_greedy(post, blank=post.shape[-1] - 1))]))
    hyp = work_dir / f"{name}.hyp.txt"
    write_atomic(hyp, "\n".join(lines) + "\n")
    return hyp


def recognize_and_score(config: str | Path, work_dir: str | Path, train_dir: str | Path, epoch: int,
                        vocab: list[str], ref_file: str | Path, extra_args: tuple[str, ...] = (),
                        env: dict[str, str] | None = None, timeout: float | None = 1800.0,
                        environment: Environment | None = None) -> tuple[Path, ScoreResult]:
    """Recognize the test split in `work_dir` with the checkpoint of `epoch` that training left in `train_dir`,
    and score it against `ref_file`: (the hypotheses file, the score, also written to `work_dir/score.json`)."""
    hyp = recognize(config, work_dir, epoch, vocab, extra_args=extra_args, env=env, timeout=timeout,
                    model=Path(train_dir).resolve() / MODEL, environment=environment)
    return hyp, score(hyp, ref_file, Path(work_dir) / "score.json")


def score(hyp_file: str | Path, ref_file: str | Path, out_file: str | Path | None = None) -> ScoreResult:
    result = score_files(hyp_file, ref_file)
    if out_file is not None:
        write_atomic(out_file, json.dumps(result.to_json(), indent=1) + "\n")
    return result
