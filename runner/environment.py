"""How a training is started: the Python (a venv with its own TensorFlow), optionally a RETURNN source folder,
extra environment variables and, for cluster engines, resource requirements that select the hardware.

An environment file is JSON (or TOML, by the suffix `.toml`) with the keys `python`, `returnn_root`, `env`
and `engine_rqmt`; relative paths are relative to the file, `python` may also be a command on PATH. Without a
file (or without `python`) the tool's own interpreter is used. RETURNN is started the way i6_core's
`ReturnnTrainingJob(returnn_python_exe=..., returnn_root=...)` starts it: `PYTHON ROOT/rnn.py CONFIG ...`, or
`PYTHON -m returnn CONFIG ...` (the Python's installed RETURNN) without a root.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

FIELDS = ("python", "returnn_root", "env", "engine_rqmt")
SIDES = ("orig", "start")
# what Sisyphus' engines read from a task's rqmt (SGE, Slurm, LSF; *_args are passed to qsub/sbatch/bsub)
ENGINE_RQMT_KEYS = ("cpu", "mem", "rss", "gpu", "gpu_name", "time", "file_size", "multi_node_slots",
                    "qsub_args", "sbatch_args", "bsub_args")


@dataclass(frozen=True, eq=False)
class Environment:
    """One way to start RETURNN. Equal (and hashed) by what it starts, not by the file it came from."""

    python: str
    returnn_root: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    engine_rqmt: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the environment file (a description for a mix of two); None: the tool's own Python

    def spec(self) -> dict[str, Any]:
        """The four fields as plain data (what results.json and the Sisyphus plan store)."""
        return {"python": self.python, "returnn_root": self.returnn_root, "env": dict(sorted(self.env.items())),
                "engine_rqmt": dict(sorted(self.engine_rqmt.items()))}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec(), sort_keys=True, default=str))

    @property
    def name(self) -> str:
        return self.source or "the tool's own Python"

    def is_default(self) -> bool:
        """Starts RETURNN exactly as the tool always did (its interpreter, its RETURNN, no extra variables)."""
        return self.python == default_environment().python and self.returnn_root is None and not self.env

    def training_key(self) -> str | None:
        """What of this environment goes into a local job's key: None for the default (so that work folders of
        earlier versions are reused); `engine_rqmt` never (the local runner does not use it)."""
        if self.is_default():
            return None
        return json.dumps({k: v for k, v in self.spec().items() if k != "engine_rqmt"}, sort_keys=True)


def default_environment() -> Environment:
    return Environment(python=os.path.abspath(sys.executable))


def _read(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError("no such environment file", path) from None
    except OSError as exc:
        raise UserError(f"cannot read the environment file: {exc.strerror or exc}", path) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}", path) from None
    if not isinstance(data, dict):
        raise UserError("an environment file holds an object with the keys " + ", ".join(FIELDS), path)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown key {unknown[0]!r} (known: {', '.join(FIELDS)})", path)
    return data


def _python(value: Any, base: Path, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise UserError("'python' must be a path (a string)", path)
    candidate = base / Path(value).expanduser()
    if "/" not in value and not candidate.exists():  # a command such as python3.11, looked up on PATH
        found = shutil.which(value)
        if found is None:
            raise UserError(f"python {value!r} is not a file next to it nor a command on PATH", path)
        candidate = Path(found)
    if not candidate.is_file():
        raise UserError(f"python {str(candidate)!r} does not exist", path)
    if not os.access(candidate, os.X_OK):
        raise UserError(f"python {str(candidate)!r} is not executable", path)
    return os.path.abspath(candidate)  # not resolved: a venv's python is a symlink that must stay one


def _returnn_root(value: Any, base: Path, path: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UserError("'returnn_root' must be a path (a string)", path)
    root = (base / Path(value).expanduser()).resolve()
    if not root.is_dir():
        raise UserError(f"returnn_root {str(root)!r} is not a folder", path)
    if not (root / "rnn.py").is_file() or not (root / "returnn" / "__init__.py").is_file():
        raise UserError(f"returnn_root {str(root)!r} holds no RETURNN (rnn.py and returnn/__init__.py)", path)
    return str(root)


def _env(value: Any, path: Path) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UserError("'env' must be an object of strings, e.g. {\"TF_DETERMINISTIC_OPS\": \"1\"}", path)
    return dict(value)


def _engine_rqmt(value: Any, path: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError("'engine_rqmt' must be an object, e.g. {\"gpu\": 1, \"sbatch_args\": [\"--constraint=a100\"]}",
                        path)
    for key, item in value.items():
        if key not in ENGINE_RQMT_KEYS:
            raise UserError(f"engine_rqmt: unknown key {key!r} (known: {', '.join(ENGINE_RQMT_KEYS)})", path)
        is_args = key.endswith("_args")
        ok = (isinstance(item, str) or (isinstance(item, list) and all(isinstance(a, str) for a in item))) if is_args \
            else isinstance(item, str) if key == "gpu_name" else (isinstance(item, int | float | str)
                                                                    and not isinstance(item, bool))
        if not ok:
            kind = "a string or a list of strings" if is_args else "a string" if key == "gpu_name" else "a number"
            raise UserError(f"engine_rqmt: {key!r} must be {kind}, got {item!r}", path)
    return dict(value)


def load_environment(path: str | Path) -> Environment:
    """Read and validate an environment file (the files and folders it names must exist)."""
    path = Path(path)
    data = _read(path)
    base = path.resolve().parent
    python = _python(data["python"], base, path) if "python" in data else default_environment().python
    return Environment(python=python, returnn_root=_returnn_root(data.get("returnn_root"), base, path),
                       env=_env(data.get("env"), path), engine_rqmt=_engine_rqmt(data.get("engine_rqmt"), path),
                       source=str(path))


def environment_of(path: str | Path | None) -> Environment:
    """The environment in `path`, or the tool's own interpreter for None."""
    return default_environment() if path is None else load_environment(path)


def from_spec(spec: dict[str, Any], source: str | None = None) -> Environment:
    """The inverse of `Environment.spec()` (no validation: the spec came from a validated environment)."""
    return Environment(spec["python"], spec.get("returnn_root"), dict(spec.get("env") or {}),
                       dict(spec.get("engine_rqmt") or {}), source)


def compose(sides: dict[str, str], environments: dict[str, Environment]) -> Environment:
    """The environment that takes each field from the side `sides[field]` names ("orig" or "start")."""
    picked = {name: getattr(environments[sides[name]], name) for name in FIELDS}
    composed = Environment(**picked)
    same = [side for side in SIDES if environments[side] == composed]
    if same:
        return Environment(**picked, source=environments[same[0]].source)
    differing = [name for name in FIELDS if getattr(environments["orig"], name) != getattr(environments["start"], name)]
    return Environment(**picked, source="mixed: " + ", ".join(f"{name} of {environments[sides[name]].name}"
                                                               for name in differing))


def describe_sides(sides: dict[str, str]) -> str:
    """"orig", "start", or e.g. "start's python, orig's returnn_root, env, engine_rqmt" for a mix."""
    used = set(sides.values())
    if len(used) == 1:
        return used.pop()
    return ", ".join(f"{side}'s {' and '.join(n for n in FIELDS if sides[n] == side)}" for side in SIDES
                     if side in used)


def returnn_command(environment: Environment, config: str | Path, args: list[str]) -> list[str]:
    """The command line that starts RETURNN on `config` in `environment`."""
    if environment.returnn_root:
        return [environment.python, str(Path(environment.returnn_root) / "rnn.py"), str(config), *args]
    return [environment.python, "-m", "returnn", str(config), *args]


def process_env(environment: Environment, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment of a RETURNN run: ours, quiet TF logging, `extra_env` (data locations), then the
    environment's own variables (they win)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {}), **environment.env}
    if environment.python != default_environment().python:
        env.pop("PYTHONHOME", None)  # ours would point another interpreter at the wrong standard library
    return env
