"""A tiny feed-forward CTC model on the demo task (partly trained after 2 epochs of 200 sequences, a few seconds),
and a pair of it with a real gap: orig learns, start cannot (learning rate ~0); they also differ in L2 and dropout,
so a strategy has three units to search."""

from __future__ import annotations

import json
from pathlib import Path

from demo.task import DemoSpec, word_name

TINY = DemoSpec(num_seqs=(200, 20, 20))
VOCAB = [word_name(i) for i in range(TINY.vocab_size)]
FF_CONFIG = """#!rnn.py
task = config.value("task", "train")
use_tensorflow = True
data_dir = config.value("demo_data_dir", "")
extern_data = {"data": {"dim": 16}, "classes": {"dim": 24, "sparse": True}}
hdf_opts = {"class": "HDFDataset", "use_cache_manager": False, "cache_byte_size": 0}
train = {**hdf_opts, "files": [data_dir + "/train.hdf"]}
dev = {**hdf_opts, "files": [data_dir + "/dev.hdf"]}
if task != "train":
    eval = {**hdf_opts, "files": [data_dir + "/%s.hdf" % config.value("demo_eval_split", "test")]}
network = {
    "win": {"class": "window", "window_size": 5, "from": "data"},
    "flat": {"class": "merge_dims", "axes": "static", "from": "win"},
    "hidden": {"class": "linear", "activation": "tanh", "n_out": 64, "from": "flat"},
    "output": {"class": "softmax", "from": "hidden", "loss": "ctc", "target": "classes",
               "loss_opts": {"beam_width": 1}},
}
num_epochs = 2
batch_size = 400
max_seqs = 40
adam = True
learning_rate = 0.01
tf_session_opts = {"intra_op_parallelism_threads": 1, "inter_op_parallelism_threads": 1}
"""
UNITS = ("lr", "l2", "dropout")  # in the order of the diff
FIXED_PLAN = ("--knobs", "lr", "--baseline-seeds", "2")  # conftest's ff_fixed_run: lr in both directions


def pair_configs(data: Path) -> tuple[str, str]:
    """(orig, start) config texts that read `data` unless told otherwise."""
    orig = (FF_CONFIG.replace('config.value("demo_data_dir", "")', f'config.value("demo_data_dir", {str(data)!r})')
            .replace('"n_out": 64, "from": "flat"}', '"n_out": 64, "from": "flat", "L2": 1e-4, "dropout": 0.1}'))
    start = (orig.replace("learning_rate = 0.01", "learning_rate = 1e-9").replace('"L2": 1e-4', '"L2": 1e-3')
             .replace('"dropout": 0.1', '"dropout": 0.2'))
    assert start.count("1e-9") == start.count("1e-3") == start.count("0.2}") == 1
    return orig, start


def write_pair(folder: Path, data: Path) -> tuple[Path, Path, Path, Path]:
    """orig/ff.config, start/ff.config, the vocabulary (JSON) and the test references: what `run` needs."""
    paths = []
    for side, text in zip(("orig", "start"), pair_configs(data), strict=True):
        path = folder / side / "ff.config"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    vocab = folder / "vocab.json"
    vocab.write_text(json.dumps(VOCAB))
    return paths[0], paths[1], vocab, data / "test.ref.txt"
