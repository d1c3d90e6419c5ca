"""TF stand-ins for RETURNN's native units, so that a graph can be built where native ops do not compile.

RETURNN's `rec` layer units `nativelstm2`, `nativelstm`, `lstm`/`lstmp` (both mean the native LSTM,
tf/layers/rec.py:RecLayer.get_rnn_cell_class), `lstmblock`/`lstmblockfused` (native LSTM under TF 2) and, on a
CPU, `cudnnlstm` compile a C++/CUDA op at first use (returnn/tf/native_op.py). The stand-in is TF's own
`LSTMCell` (`standardlstm`): the same inputs, outputs and state shapes, another kernel (and parameter layout),
which is all a graph check needs. Options the stand-in does not take are dropped and listed.
"""

from __future__ import annotations

import copy
from typing import Any

STAND_IN = "standardlstm"
NATIVE_LSTM_UNITS = frozenset({"nativelstm2", "nativelstm", "nativelstmlowmem", "lstm", "lstmp", "lstmblock",
                               "lstmblockfused", "cudnnlstm"})
# tf.compat.v1.nn.rnn_cell.LSTMCell's keyword arguments (besides num_units)
STAND_IN_OPTIONS = frozenset({"use_peepholes", "cell_clip", "initializer", "num_proj", "proj_clip", "forget_bias",
                              "activation"})


def _replace(net: dict, replaced: dict[str, str], dropped: set[str]) -> None:
    for layer in net.values():
        if not isinstance(layer, dict):
            continue
        unit = layer.get("unit")
        if isinstance(unit, dict):
            _replace(unit, replaced, dropped)
        elif isinstance(unit, str) and unit.lower() in NATIVE_LSTM_UNITS and layer.get("class") == "rec":
            replaced[unit] = STAND_IN
            layer["unit"] = STAND_IN
            options = layer.get("unit_opts")
            if isinstance(options, dict):
                dropped.update(k for k in options if k not in STAND_IN_OPTIONS)
                layer["unit_opts"] = {k: v for k, v in options.items() if k in STAND_IN_OPTIONS}
        if isinstance(layer.get("subnetwork"), dict):
            _replace(layer["subnetwork"], replaced, dropped)


def with_stand_in_units(net: dict) -> tuple[dict, dict[str, str], list[str]]:
    """A copy of `net` with every native LSTM unit replaced by the TF stand-in; the replacements
    (`{"nativelstm2": "standardlstm"}`) and the unit options dropped on the way."""
    net = copy.deepcopy(net)
    replaced: dict[str, str] = {}
    dropped: set[str] = set()
    _replace(net, replaced, dropped)
    return net, replaced, sorted(dropped)


def describe_stand_ins(replaced: dict[str, Any]) -> str:
    """`nativelstm2 → standardlstm` for the table."""
    return ", ".join(f"{unit} → {stand_in}" for unit, stand_in in sorted(replaced.items()))
