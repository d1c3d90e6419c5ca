"""Built before it is trained: construct each hybrid's TF graph (first, last pretrain and final epoch).

Native LSTM units are built with TF stand-in units by default (`interpolate.stand_in_units`: the rest of the
network is still checked where native ops do not compile); `native_units=True` builds them as they are.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from interpolate.hybrids import HybridResult
from interpolate.stand_in_units import describe_stand_ins
from knobs.loader import LoadContext, last_error_line, worker_env

BUILD_TIMEOUT = 600.0


def build_config(path: str, context: LoadContext, timeout: float = BUILD_TIMEOUT, native_units: bool = False
                 ) -> dict:
    """{"status": "built" | "unresolved" | "not built", "epochs": [...], "error"/"reason": ...,
    "stand_in": {unit: stand-in}} (`stand_in` only when native units were replaced)."""
    with tempfile.TemporaryDirectory(prefix="config-bisect-build-") as work_dir:
        request = context.request(Path(path).resolve())
        request["context_files"] = [str(Path(f).resolve()) for f in context.context_files]
        request["native_units"] = native_units
        request_file, result_file = Path(work_dir, "request.json"), Path(work_dir, "result.json")
        request_file.write_text(json.dumps(request))
        try:
            proc = subprocess.run([sys.executable, "-m", "interpolate.build_worker", str(request_file),
                                   str(result_file)], cwd=work_dir, env=worker_env(), capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return {"status": "not built", "reason": f"graph construction took longer than {timeout:g} s"}
        if proc.returncode != 0 or not result_file.exists():
            return {"status": "unresolved", "error": last_error_line(proc.stderr)}
        result = json.loads(result_file.read_text())
    if "error" in result:
        return {"status": "unresolved", "error": result["error"]}
    epochs = result["epochs"]
    stand_in = {unit: sub for e in epochs for unit, sub in e.get("stand_in", {}).items()}
    summary = {"stand_in": stand_in} if stand_in else {}
    failed = [e for e in epochs if e["status"] != "built"]
    if not failed:
        return {"status": "built", "epochs": epochs, **summary}
    worst = next((e for e in failed if e["status"] == "unresolved"), failed[0])
    key = "error" if worst["status"] == "unresolved" else "reason"
    return {"status": worst["status"], key: f"epoch {worst['epoch']}: {worst['error']}", "epochs": epochs, **summary}


def build_label(build: dict | None) -> str:
    """The table's build column: `built (with TF stand-in units: nativelstm2 → standardlstm)`, the status and
    reason of a graph that does not build, or `skipped`."""
    if not build:
        return "skipped"
    label = build["status"]
    if build.get("stand_in"):
        label += f" (with TF stand-in units: {describe_stand_ins(build['stand_in'])})"
    reason = build.get("error") or build.get("reason")
    return f"{label}: {reason}" if reason else label


def build_hybrids(results: list[HybridResult], context: LoadContext, native_units: bool = False) -> None:
    """Set `build` on every written hybrid (a hybrid that does not build stays written, flagged)."""
    for result in results:
        if result.status == "ok" and result.path:
            result.build = build_config(result.path, context, native_units=native_units)
