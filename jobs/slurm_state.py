"""What a Slurm cluster says about a setup's jobs, watched by `submit` while the Sisyphus manager runs.

Sisyphus resubmits a task that Slurm ended (a resumable training continues from its last checkpoint) and waits,
without a word, for jobs whose nodes are down. The watch reports each task Slurm ended abnormally with Slurm's
reason (TIMEOUT with the limit, NODE_FAIL, OUT_OF_MEMORY, CANCELLED, ...), and says when jobs of the setup have
waited longer than a grace period for nodes that are all down (or for a controller that does not answer), so that
`submit` stops instead of waiting forever. The Slurm job ids come from Sisyphus's submit logs in the setup.
Queries use squeue, scontrol and sinfo; parsing is pure. No Sisyphus import at module level.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDED_BADLY = {"TIMEOUT": "over its time limit", "NODE_FAIL": "its node failed", "OUT_OF_MEMORY": "out of memory",
               "CANCELLED": "by scancel or an administrator", "FAILED": "its command failed", "PREEMPTED": "preempted",
               "BOOT_FAIL": "node boot failed", "DEADLINE": "past its deadline"}
_UNUSABLE_NODE = re.compile(r"^(down|drain|fail|inval|future|maint|unknown)|\*$")
_FIELD = re.compile(r"(\S+?)=(.*?)(?= \S+?=|$)")


@dataclass(frozen=True)
class SubmittedTask:
    slurm_id: str
    job: str  # the Sisyphus job folder, relative to work/
    task: str


def submitted_tasks(work: Path) -> dict[str, SubmittedTask]:
    """Slurm job id -> Sisyphus task, from the submit logs (`submit_log.<task>`: one `(task ids, rqmt with
    engine_name and engine_info [(task ids, job id)])` per submission)."""
    found = {}
    for log in work.rglob("submit_log.*"):
        for line in log.read_text().splitlines():
            try:
                _, info = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                continue
            if info.get("engine_name") == "slurm":
                for _, slurm_id in info.get("engine_info") or []:
                    if slurm_id is not None:
                        found[str(slurm_id)] = SubmittedTask(str(slurm_id), str(log.parent.relative_to(work)),
                                                             log.name.split(".", 1)[1])
    return found


def parse_scontrol_job(line: str) -> dict[str, str]:
    """`scontrol show job -o ID` as {field: value}."""
    return {key: value.strip() for key, value in _FIELD.findall(line.strip())}


def describe_end(fields: dict[str, str]) -> str | None:
    """Why Slurm ended a job, when it ended it abnormally (None while it runs or when it completed)."""
    state = fields.get("JobState", "")
    if state not in ENDED_BADLY:
        return None
    reason = fields.get("Reason", "None")
    text = f"{state} ({ENDED_BADLY[state]}{'' if reason in ('None', '') else ', reason ' + reason})"
    if state == "TIMEOUT":
        text += f": time limit {fields.get('TimeLimit')}, ran {fields.get('RunTime')}"
    return text + f", exit code {fields.get('ExitCode', '?')}"


@dataclass(frozen=True)
class Node:
    name: str
    partitions: tuple[str, ...]
    state: str
    reason: str

    @property
    def usable(self) -> bool:
        return not _UNUSABLE_NODE.search(self.state)


def parse_nodes(text: str) -> list[Node]:
    """`sinfo -h -N -o '%N|%P|%T|%E'` (a node is listed once per partition)."""
    nodes: dict[str, Node] = {}
    for line in text.splitlines():
        if line.count("|") < 3:
            continue
        name, partition, state, reason = line.split("|", 3)
        known = nodes.get(name)
        partitions = (known.partitions if known else ()) + (partition.rstrip("*"),)
        nodes[name] = Node(name, partitions, state, reason.strip())
    return list(nodes.values())


def parse_queue(text: str) -> dict[str, tuple[str, str, str]]:
    """`squeue -h -o '%A|%T|%P|%r'` as {job id: (state, partitions, reason)}."""
    queue = {}
    for line in text.splitlines():
        if line.count("|") >= 3:
            job_id, state, partitions, reason = line.split("|", 3)
            queue[job_id.strip()] = (state, partitions, reason.strip())
    return queue


def down_nodes_blocking(queue: dict[str, tuple[str, str, str]], nodes: list[Node]) -> dict[str, list[Node]]:
    """Pending jobs whose partitions have no usable node: {job id: the down nodes they wait for}."""
    blocked = {}
    for job_id, (state, partitions, _) in queue.items():
        if state != "PENDING":
            continue
        wanted = set(partitions.split(","))
        candidates = [n for n in nodes if wanted & set(n.partitions)]
        if candidates and not any(n.usable for n in candidates):
            blocked[job_id] = candidates
    return blocked


def gres_types(text: str) -> list[str]:
    """GPU types of `sinfo -h -o %G` (`gpu:1080ti:4(S:0),gpu:a100:2`)."""
    types = set()
    for item in re.split(r"[,\s]+", text):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if len(parts) == 3 and parts[0] == "gpu":
            types.add(parts[1])
    return sorted(types)


def run_command(args: list[str], timeout: float = 30) -> str | None:
    """stdout of a Slurm command, None when it fails or does not answer."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def cluster_gres_types() -> list[str] | None:
    """The cluster's GPU types; None when no Slurm answers here."""
    out = run_command(["sinfo", "-h", "-o", "%G"])
    return None if out is None else gres_types(out)


def sbatch_flags(rqmt: dict[str, Any]) -> list[str]:
    """The flags the Sisyphus Slurm engine gives sbatch for `rqmt` (its own rendering)."""
    logging.disable(logging.WARNING)  # importing sisyphus outside a setup warns that settings.py is missing
    try:
        from sisyphus.simple_linux_utility_for_resource_management_engine import (
            SimpleLinuxUtilityForResourceManagementEngine,
        )
    finally:
        logging.disable(logging.NOTSET)

    return SimpleLinuxUtilityForResourceManagementEngine(default_rqmt=rqmt).options(rqmt)


def sbatch_refusal(flags: list[str]) -> str | None:
    """What `sbatch --test-only` says against these flags (a partition, account or QoS the cluster does not
    know, more than a node has), None when it would take the job."""
    try:
        proc = subprocess.run(["sbatch", "--test-only", *flags, "--wrap=true"], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sbatch --test-only did not answer: {exc}"
    if proc.returncode == 0:
        return None
    return " ".join(line.strip() for line in proc.stderr.splitlines() if line.strip()) or f"exit {proc.returncode}"


class SlurmWatch:
    """Polled while the manager runs: prints each task Slurm ended abnormally (once) and returns a problem that
    should stop the manager: jobs waiting longer than `grace` seconds for down nodes, or no answer from the
    controller for that long."""

    def __init__(self, setup: Path, grace: float, echo: Callable[[str], None],
                 run: Callable[[list[str]], str | None] = run_command, clock: Callable[[], float] = time.monotonic):
        self.work, self.grace, self.echo, self.run, self.clock = setup / "work", grace, echo, run, clock
        self.ended: dict[str, str] = {}  # slurm id -> report line
        self.checked: set[str] = set()  # jobs that left the queue and whose end was looked at
        self.blocked_since: float | None = None
        self.silent_since: float | None = None

    def poll(self) -> str | None:
        tasks = submitted_tasks(self.work) if self.work.is_dir() else {}
        if not tasks:
            return None
        out = self.run(["squeue", "-h", "-u", _user(), "-o", "%A|%T|%P|%r"])
        if out is None:
            self.silent_since = self.silent_since or self.clock()
            if self.clock() - self.silent_since > self.grace:
                return f"the Slurm controller has not answered squeue for {self.grace:g} s"
            return None
        self.silent_since = None
        queue = {job_id: entry for job_id, entry in parse_queue(out).items() if job_id in tasks}
        left = set(tasks) - set(queue) - self.checked
        if left:
            self._report_ends([tasks[slurm_id] for slurm_id in sorted(left, key=int)])
        return self._check_nodes(queue, tasks)

    def _report_ends(self, tasks: list[SubmittedTask]) -> None:
        """Look once at each job that left the queue (the controller keeps ended jobs for MinJobAge, 300 s by
        default: the watch polls far more often)."""
        jobs = {}
        for line in (self.run(["scontrol", "show", "job", "-o"]) or "").splitlines():
            fields = parse_scontrol_job(line)
            jobs[fields.get("JobId")] = fields
        for task in tasks:
            self.checked.add(task.slurm_id)
            why = describe_end(jobs.get(task.slurm_id, {}))
            if why:
                self.ended[task.slurm_id] = f"Slurm job {task.slurm_id} ({task.job}, task {task.task}): {why}"
                self.echo(f"slurm: {self.ended[task.slurm_id]}")

    def _check_nodes(self, queue: dict[str, tuple[str, str, str]], tasks: dict[str, SubmittedTask]) -> str | None:
        blocked = down_nodes_blocking(queue, parse_nodes(self.run(["sinfo", "-h", "-N", "-o", "%N|%P|%T|%E"]) or ""))
        if not blocked:
            self.blocked_since = None
            return None
        self.blocked_since = self.blocked_since or self.clock()
        if self.clock() - self.blocked_since <= self.grace:
            return None
        nodes = {n.name: n for waiting in blocked.values() for n in waiting}
        said = ", ".join(f"{n.name} is {n.state}" + (f" ({n.reason})" if n.reason else "") for n in nodes.values())
        jobs = ", ".join(f"{job_id} ({tasks[job_id].job})" for job_id in sorted(blocked)[:3])
        more = f" and {len(blocked) - 3} more" if len(blocked) > 3 else ""
        return (f"{len(blocked)} Slurm job(s) waited over {self.grace:g} s for nodes that are down: {said}; "
                f"waiting: {jobs}{more}. They stay queued; rerun submit when the nodes are back (finished jobs are "
                "kept), or scancel them")


def _user() -> str:
    import getpass

    return os.environ.get("USER") or getpass.getuser()
