"""How often Sisyphus runs a task of ours, and which try a job folder is at (no Sisyphus import).

A task with `Task(tries=N)` that fails while a try is left is run again: when the manager next looks at it, it
moves the task's log `log.<task>.<n>` to `log.<task>.<n>.error.NN` and removes the error marker
`error.<task>.<n>` (sisyphus/task.py `Task.error`). So the rotated logs count the failed tries so far, and an
error marker is final only once the task has no try left.
"""

from __future__ import annotations

from pathlib import Path

TRAIN_TRIES = 2  # a failed training is run once more; failing again, its TrainJob records the failure and finishes
TASK_TRIES = {"TrainJob": TRAIN_TRIES}  # job class -> tries of its tasks; every other task of ours: 1


def current_try(job_dir: Path, task: str = "run", task_id: int = 1) -> int:
    """The try a task of the job in `job_dir` is at (1 + its earlier failed tries), read while it runs."""
    return 1 + len(list(job_dir.glob(f"log.{task}.{task_id}.error.*")))


def final_errors(job_dir: Path) -> list[Path]:
    """The error markers of `job_dir`'s tasks that have no try left (the others are run again)."""
    tries = TASK_TRIES.get(job_dir.name.split(".")[0], 1)
    markers = sorted(job_dir.glob("error.*"))
    return [m for m in markers if current_try(job_dir, *_task_of(m)) >= tries]


def _task_of(marker: Path) -> tuple[str, int]:
    """(task, task id) of an error marker `error.<task>.<n>`."""
    task, _, task_id = marker.name.removeprefix("error.").rpartition(".")
    return task, int(task_id)
