"""Wall time and peak memory of the README's main command (`run` on the demo pair, every one-knob hybrid).

Run: .venv/bin/python benchmarks/demo_run.py [WORKDIR] [-- extra run options]. Starts `config-bisect run
configs/orig/demo_ctc.config configs/start/demo_ctc.config -o WORKDIR` (a fresh temporary folder by default, so
nothing is reused) and samples the resident memory of its whole process tree (the runner and its RETURNN
processes) every 0.5 s from /proc. Prints the wall time, the peak memory of the tree and of its largest process,
the trainings `run` reports, and the machine's load before and after: figures taken on a busy machine are upper
bounds of the idle ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = [str(ROOT / "configs/orig/demo_ctc.config"), str(ROOT / "configs/start/demo_ctc.config")]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(parent, []).append(int(stat.parent.name))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(resident KiB of `root` and all its descendants, of the largest single process)."""
    tree, stack, sizes = _children(), [root], []
    while stack:
        pid = stack.pop()
        sizes.append(_rss_kib(pid))
        stack.extend(tree.get(pid, []))
    return sum(sizes), max(sizes, default=0)


def main(args: list[str]) -> None:
    work = Path(args[0]) if args and not args[0].startswith("-") else Path(tempfile.mkdtemp(prefix="demo-run-"))
    extra = args[args.index("--") + 1:] if "--" in args else []
    load_before = os.getloadavg()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "bisect_cli", "run", *PAIR, "-o", str(work), *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    peak_tree = peak_one = 0
    while proc.poll() is None:
        total, largest = tree_rss(proc.pid)
        peak_tree, peak_one = max(peak_tree, total), max(peak_one, largest)
        time.sleep(0.5)
    wall = time.monotonic() - started
    output = proc.stdout.read()
    summary = [line for line in output.splitlines() if " trainings (" in line and "wall time" in line]
    print(f"work folder: {work} (exit {proc.returncode})")
    print(f"wall time: {wall / 60:.1f} min ({wall:.0f} s) on {os.cpu_count()} cores")
    print(f"peak memory: {peak_tree / 2**20:.2f} GiB for the runner and its RETURNN processes together, "
          f"{peak_one / 2**20:.2f} GiB for the largest single process")
    print(f"run said: {summary[-1] if summary else output.splitlines()[-1:]}")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}: "
          f"{'busy machine, an upper bound' if max(load_before[0], os.getloadavg()[0]) > 1.5 else 'idle machine'}")


if __name__ == "__main__":
    main(sys.argv[1:])
