"""Subprocess: construct a config's TF network for some epochs (graph only, no data, no session).

Run as `python -m interpolate.build_worker REQUEST.json RESULT.json`, like RETURNN's compile-graph tool:
load the config as RETURNN does, take the network of each epoch (pretrain included) and build it into a
fresh TF graph with `TFNetwork.construct_from_dict`.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

# errors that mean "this machine cannot build it" rather than "the config is broken"
NOT_BUILDABLE_HERE = ("cuda_runtime.h", "nvcc", "NativeOp", "native_op", "OpCodeCompiler", "CUDA")


def build(request: dict) -> dict:
    from returnn.config import Config, global_config_ctx, set_global_config
    from returnn.log import log
    from returnn.pretrain import pretrain_from_config
    from returnn.util.basic import BehaviorVersion

    log.initialize(verbosity=[0])
    config = Config()
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
    num_pretrain = pretrain.get_train_num_epochs() if pretrain else 0
    num_epochs = config.int("num_epochs", 5)
    epochs = sorted({1, min(max(num_pretrain, 1), num_epochs), num_epochs})
    results = []
    for epoch in epochs:
        if pretrain and epoch <= num_pretrain:
            net_dict = pretrain.get_network_json_for_epoch(epoch)
        else:
            net_dict = config.typed_dict["network"]
        results.append({"epoch": epoch, **build_network(config, net_dict)})
    return {"epochs": results}


def build_network(config, net_dict: dict) -> dict:
    from returnn.tf import compat as tf_compat
    from returnn.tf.network import TFNetwork

    graph = tf_compat.v1.Graph()
    try:
        with graph.as_default():
            network = TFNetwork(config=config, train_flag=True, eval_flag=True, search_flag=False)
            network.construct_from_dict(net_dict)
            return {"status": "built", "params": sum(int(p.get_shape().num_elements() or 0)
                                                     for p in network.get_params_list())}
    except Exception as exc:  # RETURNN raises many kinds; all are reported
        message = f"{type(exc).__name__}: {exc}".strip()
        text = message + traceback.format_exc()
        status = "not built" if any(marker in text for marker in NOT_BUILDABLE_HERE) else "unresolved"
        return {"status": status, "error": message.splitlines()[0][:500]}


def main(argv: list[str]) -> int:
    request_file, result_file = argv
    result = build(json.loads(Path(request_file).read_text()))
    Path(result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
