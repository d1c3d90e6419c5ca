"""Variants of the real configs in the shared fixtures, made at test time (never copied into the project)."""

from __future__ import annotations

import ast
import copy
import pprint
from collections.abc import Callable
from pathlib import Path

from tests.conftest import RETURNN_CONFIGS

# the 2021 SWB Conformer hybrid baseline (rwth-i6/returnn-experiments, 2021-swb-conformer-hybrid/)
CONFORMER = RETURNN_CONFIGS / "conformer2021" / "baseline_12l.config"


def split_network(text: str) -> tuple[str, dict, str]:
    """(text before, the literal network dict, text after) of the Sisyphus-written baseline."""
    start = text.index("network = {")
    end = text.index("\nnewbob_learning_rate_decay", start)  # the next key in the sorted dump
    return text[:start], ast.literal_eval(text[start + len("network = "):end]), text[end:]


def conformer_variant(folder: Path, name: str, edit_net: Callable[[dict], None] | None = None,
                      edit_text: Callable[[str], str] | None = None) -> Path:
    """The baseline with its network edited (and then its text), re-rendered; no edits: the baseline."""
    head, net, tail = split_network(CONFORMER.read_text())
    net = copy.deepcopy(net)
    if edit_net:
        edit_net(net)
    text = head + "network = " + pprint.pformat(net, width=120) + "\n" + tail
    if edit_text:
        text = edit_text(text)
    path = folder / f"{name}.config"
    path.write_text(text)
    return path
