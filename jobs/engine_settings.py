"""What a bisection asks the cluster for, and the Sisyphus `settings.py` that asks for it (no Sisyphus import).

Requests of a training, in order of precedence: `--rqmt`, the pair's configs (a GPU when a config says
`device = "gpu"`, the number of epochs), a RETURNN training log of the pair (`--runtime-log`: the GPU model it
ran on, the measured time per epoch), defaults. Time = epochs × measured epoch time × TIME_MARGIN when an epoch
time is known. Scoring asks for the training's cpu, memory and GPU and SCORE_HOURS. Site flags (`--engine-opts`:
partition, account, QoS) go to every cluster task as the engine's own argument list (`sbatch_args`, ...).
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

DEFAULT_RQMT: dict[str, Any] = {"cpu": 1, "mem": 4, "gpu": 0, "time": 1}
TIME_MARGIN = 1.5  # a measured epoch time is a mean; data loading, checkpoints and a slower node cost more
SCORE_HOURS = 1.0
RQMT_KEYS = {"cpu": int, "mem": float, "gpu": int, "time": float, "gpu_name": str}
ENGINE_ARGS = {"slurm": "sbatch_args", "sge": "qsub_args", "lsf": "bsub_args"}
# what the Sisyphus engines set themselves (from rqmt, or their own bookkeeping): a site flag must not repeat them
MANAGED_FLAGS = {
    "slurm": ("-J", "--job-name", "-o", "--output", "-e", "--error", "-a", "--array", "--wrap", "--mem",
              "--mem-per-cpu", "-t", "--time", "-c", "--cpus-per-task", "--gres", "-G", "--gpus", "--export",
              "--ntasks-per-node", "--mail-type"),
    "sge": ("-N", "-o", "-e", "-t", "-l", "-pe", "-cwd", "-S", "-j", "-w", "-m"),
    "lsf": ("-J", "-o", "-e", "-M", "-R", "-n", "-W", "-gpu"),
}
ENGINES = {
    "local": ("from sisyphus.localengine import LocalEngine", "LocalEngine(cpus={cpus})"),
    "sge": ("from sisyphus.son_of_grid_engine import SonOfGridEngine", "SonOfGridEngine(default_rqmt={rqmt!r})"),
    "slurm": ("from sisyphus.simple_linux_utility_for_resource_management_engine import "
              "SimpleLinuxUtilityForResourceManagementEngine",
              "SimpleLinuxUtilityForResourceManagementEngine(default_rqmt={rqmt!r})"),
    "lsf": ("from sisyphus.load_sharing_facility_engine import LoadSharingFacilityEngine",
            "LoadSharingFacilityEngine(default_rqmt={rqmt!r})"),
}


def parse_rqmt(items: tuple[str, ...]) -> dict[str, Any]:
    """`--rqmt cpu=2 --rqmt gpu_name=a100 ...` as a Sisyphus rqmt dict."""
    rqmt: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in RQMT_KEYS:
            raise UserError(f"--rqmt expects cpu=N, mem=GB, gpu=N, gpu_name=TYPE or time=HOURS, got {item!r}")
        try:
            rqmt[key] = RQMT_KEYS[key](value)
        except ValueError:
            raise UserError(f"--rqmt {key} needs a number, got {value!r}") from None
    return rqmt


def join_rqmt(*parts: dict[str, Any]) -> dict[str, Any]:
    """Requests of several sources: later ones win, except the engines' argument lists (`sbatch_args`, ...), which
    add up (site flags and an environment's own flags both reach sbatch)."""
    joined: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ENGINE_ARGS.values() and key in joined:
                value = [*_arg_list(joined[key]), *_arg_list(value)]
            joined[key] = value
    return joined


def _arg_list(value: str | list[str]) -> list[str]:
    return value.split() if isinstance(value, str) else list(value)


def parse_engine_opts(engine: str, text: str | None) -> tuple[str, ...]:
    """Site flags for every cluster task (e.g. `--partition=gpu --account=asr -q normal`); flags the engine sets
    from the requests are refused (they would contradict them)."""
    if not text:
        return ()
    if engine not in ENGINE_ARGS:
        raise UserError(f"--engine-opts are flags for a cluster's submit command; the {engine} engine has none")
    try:
        args = tuple(shlex.split(text))
    except ValueError as exc:
        raise UserError(f"--engine-opts: {exc}") from None
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in MANAGED_FLAGS[engine]:
            raise UserError(f"--engine-opts {arg!r}: Sisyphus sets {flag} itself (use --rqmt for cpu, mem, gpu "
                            "and time)")
    if not args[0].startswith("-"):
        raise UserError(f"--engine-opts must start with a flag, got {args[0]!r}")
    return args


@dataclass(frozen=True)
class Runtime:
    """What an earlier training of the pair measured (from its RETURNN log)."""

    source: str
    epoch_seconds: float | None = None
    gpu_model: str | None = None  # None: trained on the CPU, or the log does not say


_FINISHED = re.compile(r"^(?:pretrain |train )?epoch (?P<epoch>\d+)(?:, | (?P<eval>'[^']*') eval, )finished after \d+ "
                       r"steps, (?P<hms>[\d:]+) elapsed")
_STEP = re.compile(r"^(?:pre)?train epoch (?P<epoch>\d+), step \d+.*elapsed (?P<hms>[\d:]+), "
                   r"exp\. remaining (?P<left>[\d:]+)")


def _seconds(hms: str) -> float:
    return float(sum(int(part) * 60**i for i, part in enumerate(reversed(hms.split(":")))))


def epoch_seconds_from_log(lines: list[str]) -> float | None:
    """Median time of an epoch, its evaluations included: RETURNN's `train epoch N, finished after S steps, H:MM:SS
    elapsed` and `epoch N 'dev' eval, finished after ...` lines, else (a log cut short, old RETURNN) each epoch's
    last `elapsed ..., exp. remaining ...` step line."""
    finished: dict[int, dict[str, float]] = {}
    estimated: dict[int, float] = {}
    for line in lines:
        if match := _FINISHED.match(line):
            finished.setdefault(int(match["epoch"]), {})[match["eval"] or "train"] = _seconds(match["hms"])
        elif match := _STEP.match(line):
            estimated[int(match["epoch"])] = _seconds(match["hms"]) + _seconds(match["left"])
    times = sorted([sum(parts.values()) for parts in finished.values() if "train" in parts] or estimated.values())
    return times[len(times) // 2] if times else None


def runtime_from_log(path: str | Path) -> Runtime:
    from artefacts.training_log import parse_training_log

    environment = parse_training_log(path)  # refuses a file that is not a RETURNN log
    text = Path(path).read_text(errors="replace")
    gpu = environment.gpu if environment.gpu and not environment.gpu.startswith("none") else None
    return Runtime(str(path), epoch_seconds_from_log(text.splitlines()), gpu)


def config_gpus(device: object) -> int | None:
    """GPUs a training asks for by its config's `device` (None: not set; RETURNN then takes what it finds)."""
    if not isinstance(device, str):
        return None
    return 1 if device.lower().startswith("gpu") else 0


def _gpu_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def gres_type_for(gpu_model: str, gres_types: list[str]) -> str | None:
    """The cluster's GPU gres type that names `gpu_model` (`1080ti` for `GeForce GTX 1080 Ti`), if one does."""
    model = _gpu_key(gpu_model)
    matches = [t for t in gres_types if _gpu_key(t) and _gpu_key(t) in model]
    return max(matches, key=len) if matches else None


@dataclass
class Requests:
    """Per-task requests of trainings and scorings, with where each value comes from."""

    train: dict[str, Any]
    score: dict[str, Any]
    why: dict[str, str] = field(default_factory=dict)  # rqmt key of the training -> source

    def describe(self) -> list[str]:
        def show(rqmt: dict[str, Any]) -> str:
            return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in rqmt.items())

        lines = [f"  training: {show(self.train)}", f"  scoring:  {show(self.score)}"]
        return lines + [f"    {key}: {why}" for key, why in self.why.items()]


def derive_requests(user: dict[str, Any], devices: tuple[object, object], epochs: int | None,
                    runtime: Runtime | None, gres_types: list[str] | None) -> Requests:
    """Requests of the pair's trainings and scorings (see the module doc); `devices` are the configs' `device`
    values, `gres_types` the cluster's GPU types (None: not known here)."""
    train = dict(DEFAULT_RQMT)
    why = {"cpu": "default", "mem": "default (Sisyphus doubles it when a task runs out of memory)"}
    gpus = [g for g in map(config_gpus, devices) if g is not None]
    if gpus:
        train["gpu"], why["gpu"] = max(gpus), f"the configs' device ({', '.join(map(str, devices))})"
    elif runtime and runtime.gpu_model:
        train["gpu"], why["gpu"] = 1, f"trained on {runtime.gpu_model} ({runtime.source})"
    else:
        why["gpu"] = "no device in the configs: CPU"
    if train["gpu"] and runtime and runtime.gpu_model:
        gres = gres_type_for(runtime.gpu_model, gres_types or [])
        if gres:
            train["gpu_name"], why["gpu_name"] = gres, f"the cluster's gres type for {runtime.gpu_model}"
        else:
            known = "not known here" if gres_types is None else ", ".join(gres_types) or "none"
            why["gpu_name"] = (f"not asked: no gres type of the cluster names {runtime.gpu_model} (types: {known}); "
                               "--rqmt gpu_name=TYPE")
    if runtime and runtime.epoch_seconds and epochs:
        hours = epochs * runtime.epoch_seconds * TIME_MARGIN / 3600
        train["time"] = math.ceil(hours * 4) / 4
        why["time"] = (f"{epochs} epochs x {runtime.epoch_seconds:g} s measured ({runtime.source}) x {TIME_MARGIN:g}, "
                       "in quarter hours")
    else:
        why["time"] = ("default: no measured epoch time (--runtime-log); Sisyphus doubles it and resumes the "
                       "training when Slurm stops it at the limit")
    for key in user:
        why[key] = "--rqmt"
    train.update(user)
    score = {**train, "time": user.get("time", SCORE_HOURS)}
    return Requests(train, score, why)


def pair_requests(configs: tuple[Any, Any], user: dict[str, Any], epochs: int | None, runtime: Runtime | None,
                  gres: list[str] | None) -> Requests:
    """`derive_requests` for two loaded configs (`knobs.LoadedConfig`): their `device`, and `epochs` or the larger
    `num_epochs`."""
    epochs = epochs or max((c.value("num_epochs") or 0 for c in configs), default=0) or None
    return derive_requests(user, tuple(c.value("device") for c in configs), epochs, runtime, gres)


def settings_text(engine: str, rqmt: dict[str, Any], engine_opts: tuple[str, ...], cpus: int) -> str:
    """The setup's settings.py: mini tasks run in the manager's machine, the rest on `engine` with `rqmt` (plus the
    site flags) as its defaults."""
    import_line, engine_expr = ENGINES[engine]
    default_rqmt = {**rqmt, **({ENGINE_ARGS[engine]: list(engine_opts)} if engine_opts else {})}
    long_engine = engine_expr.format(cpus=cpus, rqmt=default_rqmt)
    return f'''"""Sisyphus settings written by `config-bisect submit` (engine: {engine})."""


def engine():
    # imported here: settings.py is read while sisyphus itself is being imported
    from sisyphus.engine import EngineSelector
    from sisyphus.localengine import LocalEngine
    {import_line}

    return EngineSelector(engines={{"short": LocalEngine(cpus=1), "long": {long_engine}}}, default_engine="long")


# quick turn-around for short jobs (defaults make a trivial local run take ~30 s)
WAIT_PERIOD_JOB_FS_SYNC = 1
WAIT_PERIOD_BETWEEN_CHECKS = 1
WAIT_PERIOD_CACHE = 1
WAIT_PERIOD_JOB_CLEANUP = 1
WAIT_PERIOD_MTIME_OF_INPUTS = 1
JOB_AUTO_CLEANUP = False
# a task whose usage file is older than this (+ the two periods above) and that the queue no longer lists was
# interrupted (scancel, time limit, node failure): resubmitted, the training resumes from its last checkpoint
PLOGGING_UPDATE_FILE_PERIOD = 10
# tasks start RETURNN with this Python; keep the environment (PATH, the venv) they were started with
CLEANUP_ENVIRONMENT = False
'''
