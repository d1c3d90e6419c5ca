"""Load RETURNN configs in a separate process (timeout, throw-away working directory)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

DEFAULT_TIMEOUT = 60.0
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class LoadContext:
    """What RETURNN would have set before the config runs: context files, then `key=value` settings."""

    context_files: tuple[str, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()
    epochs: int | None = None
    timeout: float = DEFAULT_TIMEOUT

    def request(self, path: Path) -> dict:
        return {"path": str(path), "context_files": list(self.context_files),
                "settings": dict(self.settings), "epochs": self.epochs}


@dataclass
class LoadedConfig:
    """JSON snapshot of one loaded config (see `knobs.worker.snapshot`)."""

    path: str
    sha256: str
    values: dict[str, dict]
    unresolved: list[dict]
    warnings: list[dict]  # {"code", "message", "advice"} (see knobs.worker)
    per_epoch: dict | None
    format: str = "py"
    imports: dict[str, str] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)  # environment variables the config sets

    @classmethod
    def from_json(cls, data: dict) -> LoadedConfig:
        return cls(path=data["path"], sha256=data["sha256"], values=data["values"],
                   unresolved=data["unresolved"], warnings=data["warnings"],
                   per_epoch=data.get("per_epoch"), format=data.get("format", "py"),
                   imports=data.get("imports", {}), environ=data.get("environ", {}))

    def value(self, name: str, default: Any = None) -> Any:
        entry = self.values.get(name)
        return default if entry is None else entry["value"]


def parse_setting(text: str) -> tuple[str, Any]:
    """`key=value` with a Python literal value (a bare word is taken as a string)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise UserError(f"--set expects KEY=VALUE with a Python identifier as KEY, got {text!r}")
    try:
        return key, ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        return key, raw.strip()


def worker_env() -> dict[str, str]:
    """Environment of a loader or build subprocess: this project importable, no GPU, quiet TF."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def load(path: str | Path, context: LoadContext = LoadContext()) -> LoadedConfig:
    """Load one config in a subprocess; a config that fails as a whole raises `UserError`."""
    path = Path(path).resolve()
    if not path.is_file():
        raise UserError("no such config file", path)
    for ctx_file in context.context_files:
        if not Path(ctx_file).is_file():
            raise UserError("no such context file", ctx_file)
    with tempfile.TemporaryDirectory(prefix="config-bisect-load-") as work_dir:
        request_file = Path(work_dir, "request.json")
        result_file = Path(work_dir, "result.json")
        request = context.request(path)
        request["context_files"] = [str(Path(f).resolve()) for f in context.context_files]
        request_file.write_text(json.dumps(request))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "knobs.worker", str(request_file), str(result_file)],
                cwd=work_dir, env=worker_env(), stdin=subprocess.DEVNULL,
                capture_output=True, text=True, timeout=context.timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"loading did not finish within {context.timeout:g} s (--timeout)", path) from None
        if proc.returncode != 0 or not result_file.exists():
            raise UserError(f"loading failed: {last_error_line(proc.stderr)}", path)
        return LoadedConfig.from_json(json.loads(result_file.read_text()))


def last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~")) and ":" in line:
            return line
    return lines[-1] if lines else "the loader process died without a message"


def load_pair(orig: Path, start: Path, context: LoadContext) -> tuple[LoadedConfig, LoadedConfig]:
    """Load both configs in parallel (two processes)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(load, orig, context), pool.submit(load, start, context)]
        return futures[0].result(), futures[1].result()
