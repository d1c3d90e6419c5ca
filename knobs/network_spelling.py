"""Spellings of a layer that RETURNN reads alike, folded into one before networks are compared.

- `from`: a single name is a list of one, a missing `from` is `["data"]`
  (tf/layers/base.py:LayerBase.transform_config_dict);
- a `rec` layer's `unit` name is looked up lower-cased, and `lstm`, `lstmp`, `lstmblock`, `lstmblockfused` are
  RETURNN's default native LSTM, NativeLSTM2, under TF 2 (tf/layers/rec.py:RecLayer.get_rnn_cell_class).

Used only for comparing (a hybrid keeps its base's spelling). Pure functions over encoded networks.
"""

from __future__ import annotations

from typing import Any

from knobs.values import comparable, is_tagged, value_at

DEFAULT_LSTM = "nativelstm2"
UNIT_ALIASES = {"lstm": DEFAULT_LSTM, "lstmp": DEFAULT_LSTM, "lstmblock": DEFAULT_LSTM, "lstmblockfused": DEFAULT_LSTM}
# RETURNN's LSTM cells that compute the same layer (tf/layers/rec.py, tf/native_op.py)
LSTM_KERNELS = frozenset({"nativelstm2", "nativelstm", "nativelstmlowmem", "standardlstm", "basiclstm", "cudnnlstm",
                          "vanillalstm"})
KERNEL_NOTE = ("implementation only: another LSTM kernel for the same layer (defaults can differ: StandardLSTM and "
               "BasicLSTM add a forget-gate bias of 1, tf/layers/rec.py:RecLayer.get_rnn_cell_class)")
WHY = ("RETURNN reads a single `from` as a list of one and a missing one as 'data' "
       "(tf/layers/base.py:LayerBase.transform_config_dict), and a rec `unit` name lower-cased, `lstm`/`lstmp`/"
       "`lstmblock[fused]` as NativeLSTM2 (tf/layers/rec.py:RecLayer.get_rnn_cell_class)")


def canonical_unit(unit: Any) -> Any:
    if not isinstance(unit, str):
        return unit
    return UNIT_ALIASES.get(unit.lower(), unit.lower())


def _layer(layer: Any, rewritten: list[list], path: list) -> Any:
    if not isinstance(layer, dict) or is_tagged(layer):
        return layer
    result = dict(layer)
    source = layer.get("from", ["data"])
    if not isinstance(source, list):
        source = [source]
    if source != layer.get("from"):
        result["from"] = source
        rewritten.append([*path, "from"])
    unit = layer.get("unit")
    if isinstance(unit, dict) and not is_tagged(unit):
        result["unit"] = canonical_network(unit, rewritten, [*path, "unit"])
    elif layer.get("class") == "rec" and canonical_unit(unit) != unit:
        result["unit"] = canonical_unit(unit)
        rewritten.append([*path, "unit"])
    if isinstance(layer.get("subnetwork"), dict):
        result["subnetwork"] = canonical_network(layer["subnetwork"], rewritten, [*path, "subnetwork"])
    return result


def canonical_network(net: Any, rewritten: list[list] | None = None, path: list | None = None) -> Any:
    """`net` with every layer in its canonical spelling; appends the rewritten paths to `rewritten`."""
    if not isinstance(net, dict) or is_tagged(net):
        return net
    rewritten = [] if rewritten is None else rewritten
    path = [] if path is None else path
    return {name: layer if str(name).startswith("#") else _layer(layer, rewritten, [*path, name])
            for name, layer in net.items()}


def spelled_alike(raw: tuple[Any, Any], canonical: tuple[Any, Any], rewritten: list[list]) -> list[list]:
    """The rewritten paths at which the raw networks differ but the canonical ones do not."""
    found = []
    for path in {tuple(p) for p in rewritten}:
        canon = [comparable(value_at(net, list(path))) for net in canonical]
        spelled = [comparable(value_at(net, list(path))) for net in raw]
        if canon[0] == canon[1] and spelled[0] != spelled[1]:
            found.append(list(path))
    return sorted(found, key=str)


def is_kernel_change(orig: Any, start: Any) -> bool:
    """Two LSTM kernels for the same model (a note: "implementation only")."""
    return {canonical_unit(orig), canonical_unit(start)} <= LSTM_KERNELS and orig != start
