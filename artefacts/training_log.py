"""The environment a RETURNN training ran in, read from its log (2020 and current formats).

Lines used (everything else is ignored):

* `RETURNN starting up, version V, date/time T (UTC+hhmm), pid P, cwd C, Python EXE` (both formats; V is
  `20200416.125355--git-eddd3f2-dirty` in 2020, `1.20261022.211313+git.a6e5adc` now), `Hostname: H`,
  `TensorFlow: V (git) (where)` (its site-packages path gives the Python version when the executable does
  not), `PyTorch: V`.
* Threads: `Setup TF inter and intra global thread pools, num_threads N, session opts {...}` (N, else
  `intra_op_parallelism_threads` in the session opts), else `Use num_threads=N (but min 2) via ...`.
* GPU: `Using gpu device 0: NAME` and `Hostname 'h', GPU 0, GPU-dev-name 'NAME', GPU-memory 10.7GB` (RETURNN,
  current), TF's `Created TensorFlow device (/device:GPU:0 with M MB memory) -> physical GPU (device: 0,
  name: NAME, ...` (TF 1, in a captured stdout such as the 2020 fixture) and `Created device ... with M MB
  memory:  -> device: 0, name: NAME, ...` (TF 2). A device list with CPUs only gives "none (CPU)".
* An SGE prologue before RETURNN starts: `Cluster queue ....: Q`, `Execution host ...: H`,
  `Started at .......: T` (start time only if RETURNN's own is missing).

RETURNN appends to its log, so a resumed training has several `RETURNN starting up` lines. The facts are
those of the first start; `starts` counts the starts and `changed_on_restart` names the facts that differ in
a later one (a training that moved to another GPU model half-way is worth knowing about).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from common.errors import UserError

_STARTUP_MARK = "RETURNN starting up"
_STARTUP = re.compile(r"RETURNN starting up, version (?P<version>\S+?),? date/time (?P<date>[\d-]+)"
                      r"(?: \(UTC(?P<tz>[+-]\d{4})\))?(?:.*, Python (?P<python>\S+))?")
_HOST = re.compile(r"^Hostname:? (?P<host>[^\s',]+)\s*$")
_TF = re.compile(r"^TensorFlow: (?P<version>\S+)(?P<rest>.*)")
_TORCH = re.compile(r"^PyTorch: (?P<version>\S+)")
_PYVER = re.compile(r"python(?P<version>\d\.\d+)")
_THREADS_SETUP = re.compile(r"global thread pools, num_threads (?P<n>\d+|None)")
_THREADS_OPTS = re.compile(r"'intra_op_parallelism_threads': (?P<n>\d+)")
_THREADS_USE = re.compile(r"Use num_threads=(?P<n>\d+) \(but min (?P<min>\d+)\)")
_GPU_RETURNN = re.compile(r"GPU-dev-name '(?P<name>[^']+)', GPU-memory (?P<mem>[\d.]+)(?P<unit>[KMGT]?)B")
_GPU_USING = re.compile(r"^Using gpu device \d+: (?P<name>.+?)\s*$")
_GPU_TF = re.compile(r"with (?P<mem>\d+) MB memory\)?:?\s*-> (?:physical GPU \()?device: \d+, name: (?P<name>[^,]+)")
_CPU_ONLY = re.compile(r'device_type: "(?P<type>[A-Z_]+)"')
_QUEUE = re.compile(r"Cluster queue \.*: (?P<queue>\S+)")
_EXEC_HOST = re.compile(r"Execution host \.*: (?P<host>\S+)")
_STARTED = re.compile(r"Started at \.*: (?P<time>.+)$")
_TRAINING = re.compile(r"^(?:pretrain |train )?epoch \d+|^start epoch \d+|^start training at epoch")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MB_PER_UNIT = {"": 1 / 2**20, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}


@dataclass
class TrainingEnvironment:
    """Facts about one RETURNN training's environment; None where the log does not say."""

    returnn_version: str | None = None
    returnn_git: str | None = None
    tensorflow: str | None = None
    pytorch: str | None = None
    python: str | None = None
    python_version: str | None = None
    host: str | None = None
    gpu: str | None = None
    gpu_memory_mb: int | None = None
    threads: int | None = None
    cluster_queue: str | None = None
    start_time: str | None = None
    starts: int = 1
    changed_on_restart: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


FACTS = [f.name for f in fields(TrainingEnvironment) if f.name not in ("starts", "changed_on_restart")]


def split_version(version: str) -> tuple[str, str | None]:
    """`20200416.125355--git-eddd3f2-dirty`, `1.20171017.163840+git-ab2a1da`, `1.20261022.211313+git.a6e5adc`
    -> (version, git revision or None)."""
    match = re.match(r"(?P<v>.+?)(?:--git-|\+git[.-])(?P<git>\S+)$", version)
    return (match["v"], match["git"]) if match else (version, None)


def _iso_time(date: str, tz: str | None) -> str:
    """RETURNN's `2020-04-23-15-47-46` and `+0200` -> `2020-04-23T15:47:46+02:00`."""
    parts = date.split("-")
    if len(parts) != 6:
        return date
    iso = f"{parts[0]}-{parts[1]}-{parts[2]}T{parts[3]}:{parts[4]}:{parts[5]}"
    return f"{iso}{tz[:3]}:{tz[3:]}" if tz else iso


class _Section:
    """The facts of one start, gathered line by line."""

    def __init__(self) -> None:
        self.env = TrainingEnvironment()
        self.started = False
        self.training = False  # after the first epoch/step line only a new start is looked for
        self.threads_setup: int | None = None
        self.threads_use: int | None = None
        self.device_types: set[str] = set()
        self.sge_start: str | None = None
        self.sge_host: str | None = None

    def startup(self, line: str) -> None:
        env = self.env
        self.started = True
        match = _STARTUP.search(line)
        if not match:
            return
        env.returnn_version, env.returnn_git = split_version(match["version"])
        env.start_time = _iso_time(match["date"], match["tz"])
        env.python = match["python"]
        if env.python and (m := _PYVER.search(Path(env.python).name)):
            env.python_version = m["version"]

    def line(self, line: str) -> None:
        env = self.env
        if m := _HOST.match(line):
            env.host = m["host"]
        elif m := _TF.match(line):
            env.tensorflow = env.tensorflow or m["version"]
            if env.python_version is None and (p := _PYVER.search(m["rest"])):
                env.python_version = p["version"]
        elif m := _TORCH.match(line):
            env.pytorch = env.pytorch or m["version"]
        elif m := _THREADS_SETUP.search(line):
            if m["n"] != "None":
                self.threads_setup = int(m["n"])
            elif o := _THREADS_OPTS.search(line):
                self.threads_setup = int(o["n"])
        elif m := _THREADS_USE.search(line):
            self.threads_use = max(int(m["n"]), int(m["min"]))
        elif m := _GPU_RETURNN.search(line):
            env.gpu = m["name"].strip()
            env.gpu_memory_mb = round(float(m["mem"]) * _MB_PER_UNIT[m["unit"]])
        elif m := _GPU_TF.search(line):
            env.gpu = env.gpu or m["name"].strip()
            env.gpu_memory_mb = env.gpu_memory_mb or int(m["mem"])
        elif m := _GPU_USING.match(line):
            env.gpu = env.gpu or m["name"]
        elif m := _CPU_ONLY.search(line):
            self.device_types.add(m["type"])
        elif m := _QUEUE.search(line):
            env.cluster_queue = m["queue"]
        elif m := _EXEC_HOST.search(line):
            self.sge_host = m["host"]
        elif m := _STARTED.search(line):
            self.sge_start = m["time"].strip()
        elif self.started and _TRAINING.match(line):
            self.training = True

    def finish(self) -> TrainingEnvironment:
        env = self.env
        env.threads = self.threads_setup if self.threads_setup is not None else self.threads_use
        if env.gpu is None and self.device_types and "GPU" not in self.device_types:
            env.gpu = "none (CPU)"
        env.host = env.host or self.sge_host
        env.start_time = env.start_time or self.sge_start
        return env


def parse_training_log_lines(lines, path: str | Path | None = None) -> TrainingEnvironment:
    """The environment from the lines of a RETURNN log; `UserError` if there is no `RETURNN starting up`."""
    sections = [_Section()]
    for raw in lines:
        if _STARTUP_MARK in raw:
            if sections[-1].started:
                sections.append(_Section())
            sections[-1].startup(_ANSI.sub("", raw).strip())
            continue
        if sections[-1].training:
            continue
        sections[-1].line(_ANSI.sub("", raw).strip() if "\x1b" in raw else raw.strip())
    if not sections[0].started:
        raise UserError("not a RETURNN training log (no 'RETURNN starting up' line)", path)
    first, *later = (s.finish() for s in sections)
    first.starts = len(sections)
    first.changed_on_restart = [name for name in FACTS if name != "start_time"
                                and any(getattr(env, name) != getattr(first, name) for env in later)]
    return first


def parse_training_log(path: str | Path) -> TrainingEnvironment:
    """The environment of the RETURNN training whose log (or captured stdout) is at `path`."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_training_log_lines(f, path)
    except OSError as exc:
        raise UserError(f"cannot read the log: {exc.strerror or exc}", path) from None


def environment_diff(a: TrainingEnvironment, b: TrainingEnvironment) -> list[tuple[str, object, object]]:
    """(fact, a, b) for every fact that differs (start time included)."""
    da, db = a.to_json(), b.to_json()
    return [(k, da[k], db[k]) for k in FACTS if da[k] != db[k]]
