"""Subprocess: construct a config's TF network for some epochs (graph only, no data, no session).

Run as `python -m interpolate.build_worker REQUEST.json RESULT.json`, like RETURNN's compile-graph tool:
load the config as RETURNN does, take the network of each epoch (pretrain included) and build it into a
fresh TF graph with `TFNetwork.construct_from_dict`. Native LSTM units are replaced by TF stand-ins
(`interpolate.stand_in_units`) unless the request asks for `native_units`; then a native op that does not
compile is reported with the compiler's message. Any other failure is RETURNN's exception type and message,
with the layer being constructed.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import traceback
from pathlib import Path
from types import TracebackType

from interpolate.stand_in_units import with_stand_in_units
from knobs.exceptions import describe

# errors that mean "this machine cannot build it" rather than "the config is broken"
GPU_ONLY = ("cuda_runtime.h", "nvcc", "CUDA", "GPU")
COMPILER_ERROR = re.compile(r"\berror\b:|\bError \d+\b")  # gcc/clang/nvcc `...: error: ...`, make's `Error 1`


def build(request: dict) -> dict:
    from returnn.config import Config, global_config_ctx, set_global_config
    from returnn.log import log
    from returnn.pretrain import pretrain_from_config
    from returnn.util.basic import BehaviorVersion

    log.initialize(verbosity=[0])
    config = Config()
    try:
        with global_config_ctx(config):
            for ctx_file in request.get("context_files", []):
                config.load_file(ctx_file)
            config.typed_dict.update(request.get("settings", {}))
            config.typed_dict.setdefault("task", "train")
            config.load_file(request["path"])
            config.typed_dict.update(request.get("settings", {}))
        set_global_config(config)
        BehaviorVersion.set(config.int("behavior_version", None))
        pretrain = pretrain_from_config(config)
    except Exception as exc:  # the config itself does not load here (a cluster path, a missing module)
        return {"error": f"RETURNN does not load it: {describe(exc)}"}
    num_pretrain = pretrain.get_train_num_epochs() if pretrain else 0
    num_epochs = config.int("num_epochs", 5)
    epochs = sorted({1, min(max(num_pretrain, 1), num_epochs), num_epochs})
    results = []
    for epoch in epochs:
        if pretrain and epoch <= num_pretrain:
            net_dict = pretrain.get_network_json_for_epoch(epoch)
        else:
            net_dict = config.typed_dict["network"]
        replaced: dict[str, str] = {}
        dropped: list[str] = []
        if not request.get("native_units"):
            net_dict, replaced, dropped = with_stand_in_units(net_dict)
        result = {"epoch": epoch, **build_network(config, net_dict)}
        if replaced:
            result.update(stand_in=replaced, dropped_unit_options=dropped)
        results.append(result)
    return {"epochs": results}


def build_network(config, net_dict: dict) -> dict:
    from returnn.tf import compat as tf_compat
    from returnn.tf.network import TFNetwork

    graph = tf_compat.v1.Graph()
    printed = io.StringIO()  # RETURNN prints the compiler's output of a failed native op here
    try:
        with graph.as_default(), contextlib.redirect_stdout(printed):
            network = TFNetwork(config=config, train_flag=True, eval_flag=True, search_flag=False)
            network.construct_from_dict(net_dict)
            return {"status": "built", "params": sum(int(p.get_shape().num_elements() or 0)
                                                     for p in network.get_params_list())}
    except Exception as exc:  # RETURNN raises many kinds; all are reported
        native = native_op_failure(exc, printed.getvalue())
        if native:
            return {"status": "not built", "error": native}
        layers = layers_in_construction(exc.__traceback__)
        where = f" (constructing {' → '.join(layers)})" if layers else ""
        message = describe(exc, limit=400) + where
        status = "not built" if any(marker in str(exc) for marker in GPU_ONLY) else "unresolved"
        return {"status": status, "error": message}


def _frames(tb: TracebackType | None):
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def layers_in_construction(tb: TracebackType | None) -> list[str]:
    """The layers RETURNN was constructing when it failed, outermost first (a layer pulls in its inputs)."""
    names: list[str] = []
    for frame in _frames(tb):
        if frame.f_code.co_name == "construct_layer" and frame.f_code.co_filename.endswith("network.py"):
            name = frame.f_locals.get("name")
            if isinstance(name, str) and (not names or names[-1] != name):
                names.append(name)
    return names


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def native_op_failure(exc: BaseException, printed: str) -> str | None:
    """"native op NativeLstm2 does not compile here: <the compiler's first error line>", or None."""
    for error in _chain(exc):
        op = _native_op_name(error)
        if op is None:
            continue
        if isinstance(error, subprocess.CalledProcessError):
            lines = [ln.strip() for ln in printed.splitlines() if ln.strip()]
            errors = [ln for ln in lines if COMPILER_ERROR.search(ln)]
            reason = errors[0] if errors else f"the compiler exited with status {error.returncode}"
        else:
            reason = describe(error)
        return f"native op {op} does not compile here: {reason}"[:400]
    return None


def _native_op_name(error: BaseException) -> str | None:
    """The native op whose compilation raised `error` (None: not a native op compilation)."""
    frames = list(_frames(error.__traceback__))
    if not any(f.f_code.co_filename.endswith("native_code_compiler.py") for f in frames):
        return None
    for frame in reversed(frames):
        owner = frame.f_locals.get("self")
        name = getattr(owner, "base_name", None) or getattr(owner, "name", None)
        if frame.f_code.co_filename.endswith(("native_op.py", "native_code_compiler.py")) and isinstance(name, str):
            return name
    if isinstance(error, subprocess.CalledProcessError):
        return next((Path(a).stem for a in error.cmd if str(a).endswith(".cc")), None)
    return "(unknown)"


def main(argv: list[str]) -> int:
    request_file, result_file = argv
    try:
        result = build(json.loads(Path(request_file).read_text()))
    except Exception:  # a crash outside RETURNN's construction: the caller reports the last line
        traceback.print_exc()
        return 1
    Path(result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
