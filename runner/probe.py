"""Probe an environment once (Python, RETURNN version and git revision, TensorFlow, which layer classes and
optimizers that RETURNN has, its newest behavior_version) and check a config's needs against it.

The probe runs in the environment's own Python, imports RETURNN the way a training there would (from
`returnn_root` first) and prints JSON. A probe that fails (Python does not start, RETURNN or TensorFlow cannot
be imported) is a `UserError` naming the environment file: nothing is trained.
"""

from __future__ import annotations

import json
import subprocess
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from artefacts.training_log import split_version
from common.errors import UserError
from knobs.requirements import Requirements
from runner.environment import Environment, process_env

PROBE_TIMEOUT = 180.0
_PROBE_SCRIPT = r"""
import json, platform, sys
root = sys.argv[1]
if root:
    sys.path.insert(0, root)  # as `python ROOT/rnn.py` does
out = {"python": sys.executable, "python_version": platform.python_version()}
def stop(stage, exc):
    out["error"] = "%s: %s: %s" % (stage, type(exc).__name__, (str(exc).strip().splitlines() or [""])[-1])
    print(json.dumps(out)); sys.exit(0)
try:
    import returnn
    out["returnn_long_version"] = returnn.__long_version__
    out["returnn_location"] = returnn.__file__.rsplit("/returnn/", 1)[0]
except Exception as exc:
    stop("RETURNN cannot be imported", exc)
try:
    import numpy
    out["numpy"] = numpy.__version__
    import tensorflow as tf
    out["tensorflow"] = tf.__version__
    out["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
except Exception as exc:
    stop("TensorFlow cannot be loaded", exc)
try:
    from returnn.util.basic import BehaviorVersion
    out["latest_behavior_version"] = BehaviorVersion._latest_behavior_version
    from returnn.tf.layers import basic as layers
    if not layers._LayerClassDictInitialized:
        layers._init_layer_class_dict()
    out["layer_classes"] = sorted(layers._LayerClassDict)
    from returnn.tf import updater
    updater._init_optimizer_classes_dict()
    out["optimizer_classes"] = sorted(updater._OptimizerClassesDict)
except Exception as exc:
    stop("RETURNN's TF backend cannot be loaded", exc)
print(json.dumps(out))
"""


@dataclass
class Probe:
    """What an environment runs: the facts `config-bisect env` reads from a training log, and more."""

    python: str
    python_version: str  # major.minor, as a training log gives it
    python_full_version: str
    returnn_version: str
    returnn_git: str | None
    returnn_location: str
    tensorflow: str
    numpy: str
    gpus: list[str] = field(default_factory=list)
    latest_behavior_version: int | None = None
    layer_classes: list[str] = field(default_factory=list)
    optimizer_classes: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        """The facts that decide a training (compared between sides, with logs and with trainings)."""
        return {"returnn_version": self.returnn_version, "returnn_git": self.returnn_git,
                "tensorflow": self.tensorflow, "python_version": self.python_version, "numpy": self.numpy}

    def to_json(self, with_classes: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_classes:
            data.pop("layer_classes")
            data.pop("optimizer_classes")
        return data


def parse_probe(data: dict[str, Any], environment: Environment) -> Probe:
    """A probe's JSON output, or a `UserError` naming the environment and what failed."""
    if "error" in data:
        raise UserError(f"environment with python {data.get('python', environment.python)}: {data['error']}",
                        environment.name)
    version, git = split_version(data["returnn_long_version"])
    major_minor = ".".join(data["python_version"].split(".")[:2])
    return Probe(data["python"], major_minor, data["python_version"], version, git, data["returnn_location"],
                 data["tensorflow"], data["numpy"], data.get("gpus", []), data.get("latest_behavior_version"),
                 data.get("layer_classes", []), data.get("optimizer_classes", []))


_cache: dict[Environment, Probe] = {}
_lock = threading.Lock()


def probe(environment: Environment, timeout: float = PROBE_TIMEOUT) -> Probe:
    """Probe `environment` (once per process: later calls return the first answer)."""
    with _lock:
        if environment in _cache:
            return _cache[environment]
    command = [environment.python, "-c", _PROBE_SCRIPT, environment.returnn_root or ""]
    try:
        proc = subprocess.run(command, env=process_env(environment), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, cwd="/")
    except OSError as exc:
        raise UserError(f"python {environment.python} cannot be started: {exc.strerror or exc}",
                        environment.name) from None
    except subprocess.TimeoutExpired:
        raise UserError(f"probing python {environment.python} took longer than {timeout:g} s",
                        environment.name) from None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"python {environment.python} did not run the probe (exit {proc.returncode}): {last}",
                        environment.name)
    result = parse_probe(json.loads(lines[-1]), environment)
    with _lock:
        _cache[environment] = result
    return result


def compatibility_problems(needs: Requirements, found: Probe) -> list[str]:
    """Why a config with `needs` cannot train with the RETURNN of `found` (empty: it can, as far as we see)."""
    where = f"RETURNN {found.returnn_version}"
    problems = []
    missing = [name for name in needs.layers if name not in found.layer_classes]
    if missing and found.layer_classes:
        problems.append(f"layer class {', '.join(repr(m) for m in missing)} does not exist in {where}")
    if needs.optimizer and found.optimizer_classes and needs.optimizer.lower() not in found.optimizer_classes:
        problems.append(f"optimizer class {needs.optimizer!r} does not exist in {where}")
    latest = found.latest_behavior_version
    if needs.behavior_version is not None and latest is not None and needs.behavior_version > latest:
        problems.append(f"behavior_version {needs.behavior_version} is newer than {where} knows ({latest})")
    return problems
