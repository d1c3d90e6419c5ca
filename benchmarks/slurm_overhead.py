"""Wall time of the demo bisection through Slurm + Sisyphus against the local runner (goal: <= 20 % more), and
whether both give the same verdict.

Run: .venv/bin/python benchmarks/slurm_overhead.py [OUT_DIR [EPOCHS] [slurm-first]]. Needs RWTH Sisyphus and a
Slurm cluster (`scripts/slurm-single-node.sh start`). Both runs train the same plan (one-at-a-time, both
directions, 3 baseline seeds; `--epochs` default: the configs' 8) from scratch with the same demo data: the local
runner with 2 trainings in parallel, Slurm with 1 CPU per job (2 at a time on a 2-core node); `slurm-first` swaps
the order (the load of a shared machine drifts). Also prints how busy the Slurm jobs kept the node's 2 CPUs and
the overhead against RETURNN's own training time in each run (which takes the drifting load out). Say under what
load you measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("config-bisect")
PAIR = [str(ROOT / "configs/orig/demo_ctc.config"), str(ROOT / "configs/start/demo_ctc.config")]


def timed(args: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.monotonic() - start


def movers(results: Path) -> tuple[list[str], set[str]]:
    """(the verdict lines, the hybrids that move at least half the gap)."""
    data = json.loads(results.read_text())
    moved = {h["label"].replace(":", ".") for h in data["hybrids"]
             if h["direction"] and h["gap_share"] is not None and abs(h["gap_share"]) >= 0.5}
    return data["verdict"], moved


def busy_seconds(setup: Path) -> float:
    """Run time of the setup's Slurm jobs, added up (from `sacct -c`, the single-node cluster's job completion file)."""
    from jobs.slurm_state import submitted_tasks

    ids = set(submitted_tasks(setup / "work"))
    out = subprocess.run(["sacct", "-c", "-n", "-P", "-o", "JobID,Elapsed"], capture_output=True, text=True).stdout
    rows = [line.split("|") for line in out.splitlines() if line.split("|")[0] in ids]
    return sum(sum(int(p) * 60**i for i, p in enumerate(reversed(elapsed.split(":")))) for _, elapsed in rows)


def training_seconds(out: Path) -> tuple[float, float]:
    """RETURNN's own training time, added up over the jobs (local, Slurm): how fast the machine was in each run."""
    local = sum(json.loads(p.read_text())["train_seconds"] for p in (out / "local/jobs").glob("*/result.json"))
    trained = (out / "slurm/work").glob("*/*/TrainJob.*/output/train.json")
    slurm = sum(json.loads(p.read_text())["seconds"] for p in trained)
    return local, slurm


def main(out: Path, epochs: str | None, slurm_first: bool) -> None:
    out.mkdir(parents=True, exist_ok=False)
    os.environ["CONFIG_BISECT_CACHE"] = str(out / "cache")
    env = dict(os.environ)
    extra = ["--epochs", epochs] if epochs else []
    from demo.task import ensure_demo_data

    ensure_demo_data()  # outside both timings
    runs = {"local": ["run", *PAIR, "-o", str(out / "local"), "--jobs", "2", *extra],
            "slurm": ["submit", *PAIR, "-o", str(out / "slurm"), "--engine", "slurm", *extra]}
    seconds = {name: timed(runs[name], env) for name in (["slurm", "local"] if slurm_first else ["local", "slurm"])}
    local_s, slurm_s = seconds["local"], seconds["slurm"]
    (local_v, local_m), (slurm_v, slurm_m) = (movers(out / "local/results.json"),
                                              movers(out / "slurm/output/bisect/demo_ctc/results.json"))
    trainings = len(list((out / "slurm/work").rglob("TrainJob.*")))
    print(f"demo bisection, {trainings} trainings{', ' + epochs + ' epochs' if epochs else ''}"
          f"{', Slurm first' if slurm_first else ''}, load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    print(f"local runner:      {local_s:7.1f} s")
    print(f"Slurm + Sisyphus:  {slurm_s:7.1f} s  ({100 * (slurm_s / local_s - 1):+.1f} %); its jobs kept the node's 2 "
          f"CPUs {100 * busy_seconds(out / 'slurm') / 2 / slurm_s:.0f} % busy")
    local_t, slurm_t = training_seconds(out)
    normalized = (slurm_s / slurm_t) / (local_s / local_t) - 1
    print(f"RETURNN's own training time, added up: local {local_t:.0f} s, Slurm {slurm_t:.0f} s (the machine's load "
          f"in each run); wall time per training second: {100 * normalized:+.1f} % on Slurm")
    print(f"hybrids that move >= half the gap: local {sorted(local_m)}, Slurm {sorted(slurm_m)}: "
          f"{'the same' if local_m == slurm_m else 'DIFFERENT'}")
    for name, lines in (("local", local_v), ("Slurm", slurm_v)):
        print(f"verdict ({name}):")
        for line in lines:
            print(f"  {line}")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0] if args else "out/slurm-overhead"), next((a for a in args[1:] if a.isdigit()), None),
         "slurm-first" in args)
