"""Time to build the Sisyphus graph of a large bisection: N hybrids x S seeds (goal: 1000 x 3 in <= 30 s).

Run: .venv/bin/python benchmarks/graph_size.py [HYBRIDS] [SEEDS]. Needs RWTH Sisyphus. Builds the graph the
way a Sisyphus config's py() does (jobs created, hashed and aliased; nothing runs) for the demo pair.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(hybrids: int, seeds: int) -> None:
    try:
        from sisyphus import graph
    except ImportError:
        print("RWTH Sisyphus is not installed: nothing measured")
        return
    from jobs.graph import Plan, build_bisection

    knobs = ["optimizer", "batching", "pretrain", "l2", "dropout", "lr", "model", "loss", "augmentation", "data"]
    requests = [(tuple(k for j, k in enumerate(knobs) if i >> j & 1), "knock-in" if i % 2 else "knock-out")
                for i in range(1, hybrids + 1)]
    plan = Plan(requests=requests, seeds=seeds, baseline_seeds=seeds, vocab=tuple(f"w{i}" for i in range(24)),
                refs=str(ROOT / "tests" / "data" / "i6_context.config"))  # any file: only hashed here
    tracemalloc.start()
    t0 = time.perf_counter()
    gather = build_bisection(str(ROOT / "configs/orig/demo_ctc.config"), str(ROOT / "configs/start/demo_ctc.config"),
                             plan)
    built = time.perf_counter() - t0
    jobs = list(graph.graph.jobs())
    t1 = time.perf_counter()
    ids = {job._sis_id() for job in jobs}
    hashed = time.perf_counter() - t1
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    print(f"{hybrids} hybrids x {seeds} seeds: {len(jobs)} jobs ({len(ids)} distinct ids), graph built in "
          f"{built:.2f} s, job ids in {hashed:.2f} s, total {built + hashed:.2f} s, peak Python memory {peak:.0f} MiB; "
          f"gather job {gather._sis_id()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
