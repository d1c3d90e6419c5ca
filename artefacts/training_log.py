"""The environment a RETURNN training ran in, read from its log (2020 and current formats).

Lines used (everything else is ignored): `RETURNN starting up, version V, date/time T (TZ), pid P, cwd C,
Python EXE`; `Hostname: H`; `TensorFlow: V (...)`; the TF thread setup (`num_threads N`, `Use num_threads=N`,
`intra_op_parallelism_threads`); GPU lines of TF (`... with M MB memory) -> physical GPU (device: 0, name: G`)
and RETURNN's device list; an SGE/cluster prologue (`Cluster queue ....: Q`, `Execution host ...: H`,
`Started at .......: T`).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import UserError

_STARTUP = re.compile(r"RETURNN starting up, version (?P<version>\S+?),? date/time (?P<time>\S+(?: \(UTC[^)]*\))?)")
_PYTHON = re.compile(r", Python (?P<python>\S+)")
_TF = re.compile(r"^TensorFlow: (?P<version>\S+)")
_HOST = re.compile(r"^Hostname: (?P<host>\S+)")
_THREADS = [re.compile(r"Use num_threads=(\d+)"), re.compile(r"num_threads (\d+)"),
            re.compile(r"'intra_op_parallelism_threads': (\d+)")]
_GPU_TF = re.compile(r"with (?P<mem>\d+) MB memory\) -> physical GPU \(device: \d+, name: (?P<name>[^,]+)")
_GPU_LIST = re.compile(r'physical_device_desc: "device: \d+, name: (?P<name>[^,]+)')
_QUEUE = re.compile(r"Cluster queue \.*: (?P<queue>\S+)")
_EXEC_HOST = re.compile(r"Execution host \.*: (?P<host>\S+)")
_STARTED = re.compile(r"Started at \.*: (?P<time>.+)$")
_PYVER = re.compile(r"python(\d\.\d+)")


@dataclass
class TrainingEnvironment:
    returnn_version: str | None = None
    returnn_git: str | None = None
    tensorflow: str | None = None
    python: str | None = None
    python_version: str | None = None
    host: str | None = None
    gpu: str | None = None
    gpu_memory_mb: int | None = None
    threads: int | None = None
    cluster_queue: str | None = None
    start_time: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _split_version(version: str) -> tuple[str, str | None]:
    """`20200416.125355--git-eddd3f2-dirty` and `1.20261022.211313+git.a6e5adc` -> (version, git)."""
    match = re.match(r"(?P<v>[^+-]+?)(?:--git-|\+git\.)(?P<git>\S+)$", version)
    return (match["v"], match["git"]) if match else (version, None)


def parse_training_log(path: str | Path) -> TrainingEnvironment:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"cannot read the log: {exc.strerror}", path) from None
    env = TrainingEnvironment()
    found_startup = False
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if (m := _STARTUP.search(line)) and not found_startup:
            found_startup = True
            env.returnn_version, env.returnn_git = _split_version(m["version"])
            env.start_time = env.start_time or m["time"]
            env.python = (p := _PYTHON.search(line)) and p["python"]
        elif (m := _TF.match(line)) and env.tensorflow is None:
            env.tensorflow = m["version"]
        elif m := _HOST.match(line):
            env.host = m["host"]
        elif (m := _EXEC_HOST.search(line)) and env.host is None:
            env.host = m["host"]
        elif m := _QUEUE.search(line):
            env.cluster_queue = m["queue"]
        elif m := _STARTED.search(line):
            env.start_time = m["time"].strip()
        elif (m := _GPU_TF.search(line)) and env.gpu is None:
            env.gpu, env.gpu_memory_mb = m["name"].strip(), int(m["mem"])
        elif (m := _GPU_LIST.search(line)) and env.gpu is None:
            env.gpu = m["name"].strip()
        if env.threads is None:
            for pattern in _THREADS:
                if m := pattern.search(line):
                    env.threads = int(m.group(1))
                    break
        if env.python_version is None and (m := _PYVER.search(line)):
            env.python_version = m.group(1)
    if not found_startup:
        raise UserError("not a RETURNN training log (no 'RETURNN starting up' line)", path)
    if env.gpu is None and "device_type: \"CPU\"" in text and "device_type: \"GPU\"" not in text:
        env.gpu = "none (CPU)"
    return env


def environment_diff(a: TrainingEnvironment, b: TrainingEnvironment) -> list[tuple[str, object, object]]:
    """(field, a, b) for every field that differs."""
    da, db = a.to_json(), b.to_json()
    return [(k, da[k], db[k]) for k in da if da[k] != db[k]]
