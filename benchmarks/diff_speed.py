"""Wall time of the knob diff on real config pairs (loading both in subprocesses included).

Run: .venv/bin/python benchmarks/diff_speed.py [REPEATS]. Prints one line per pair: best and median seconds,
knob count, epochs compared. The goal is "a few seconds" per pair on 2 cores.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from knobs import LoadContext, compare

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "returnn-configs"
I6_CONTEXT = ROOT / "tests" / "data" / "i6_context.config"
PAIRS = [
    ("RNA orig vs start (configs/)", ROOT / "configs/orig/rna_transducer.config",
     ROOT / "configs/start/rna_transducer.config", LoadContext()),
    ("2020 RNA vs RNN-T (fixtures, 150/250 epochs)",
     FIXTURES / "rnnt2020/rna-tf2.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.config",
     FIXTURES / "rnnt2020/rnnt-warp.blank0.enc6l-grow2l.scratch-lm.rdrop02.lm1-1024.attwb5-drop02.l2_1e_4.mlr50.config",
     LoadContext()),
    ("i6 orig vs pre20bs5k (context file)", FIXTURES / "i6-orig-variants/_orig_native_config.py",
     FIXTURES / "i6-orig-variants/_orig_pre20bs5k_native_config.py",
     LoadContext(context_files=(str(I6_CONTEXT),))),
    ("Conformer 12l vs 6l (1747-line net dicts)", FIXTURES / "conformer2021/baseline_12l.config",
     FIXTURES / "conformer2021/baseline_6l.config", LoadContext()),
]


def main(repeats: int) -> None:
    for name, orig, start, context in PAIRS:
        if not orig.exists():
            print(f"{name}: skipped (missing {orig})")
            continue
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            diff = compare(str(orig), str(start), context)
            times.append(time.perf_counter() - t0)
        print(f"{name}: best {min(times):.2f} s, median {statistics.median(times):.2f} s over {repeats}; "
              f"{len(diff.knobs)} knobs, {diff.epochs} epochs compared")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
