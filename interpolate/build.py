"""Built before it is trained: construct each hybrid's TF graph (first, last pretrain and final epoch)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from interpolate.hybrids import HybridResult
from knobs.loader import LoadContext, last_error_line, worker_env

BUILD_TIMEOUT = 600.0


def build_config(path: str, context: LoadContext, timeout: float = BUILD_TIMEOUT) -> dict:
    """{"status": "built" | "unresolved" | "not built", "epochs": [...], "error"/"reason": ...}."""
    with tempfile.TemporaryDirectory(prefix="config-bisect-build-") as work_dir:
        request = context.request(Path(path))
        request["context_files"] = [str(Path(f).resolve()) for f in context.context_files]
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
        epochs = json.loads(result_file.read_text())["epochs"]
    failed = [e for e in epochs if e["status"] != "built"]
    if not failed:
        return {"status": "built", "epochs": epochs}
    worst = next((e for e in failed if e["status"] == "unresolved"), failed[0])
    key = "error" if worst["status"] == "unresolved" else "reason"
    return {"status": worst["status"], key: f"epoch {worst['epoch']}: {worst['error']}", "epochs": epochs}


def build_hybrids(results: list[HybridResult], context: LoadContext) -> None:
    """Set `build` on every written hybrid (a hybrid that does not build stays written, flagged)."""
    for result in results:
        if result.status == "ok" and result.path:
            result.build = build_config(result.path, context)
