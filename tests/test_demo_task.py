"""Demo generator: deterministic from its seed, written once (atomically) in a RETURNN-readable form."""

from __future__ import annotations

import numpy as np

from demo.task import DemoSpec, default_cache_dir, ensure_demo_data, utterances, word_name

SMALL = DemoSpec(num_seqs=(30, 8, 8))


def test_generator_is_deterministic_and_seed_dependent():
    a, b = utterances(SMALL, "train"), utterances(SMALL, "train")
    assert [t for t, _, _ in a] == [t for t, _, _ in b]
    assert all(np.array_equal(x, y) and lx == ly for (_, x, lx), (_, y, ly) in zip(a, b, strict=True))
    other = utterances(DemoSpec(seed=7, num_seqs=SMALL.num_seqs), "train")
    assert not all(np.array_equal(x, y) for (_, x, _), (_, y, _) in zip(a, other, strict=True))
    assert [labels for _, _, labels in a] != [labels for _, _, labels in other]
    assert utterances(SMALL, "dev")[0][1].shape[1] == SMALL.feature_dim
    assert {len(labels) for _, _, labels in a} <= {2, 3, 4, 5}
    assert SMALL.digest() != DemoSpec(seed=7, num_seqs=SMALL.num_seqs).digest()


def test_demo_data_written_once_with_references(tmp_path):
    folder = ensure_demo_data(tmp_path, SMALL)
    assert ensure_demo_data(tmp_path, SMALL) == folder
    assert {p.name for p in folder.iterdir()} >= {"train.hdf", "dev.hdf", "test.hdf", "dev.ref.txt", "test.ref.txt"}
    refs = (folder / "test.ref.txt").read_text().splitlines()
    expected = [f"{tag} {' '.join(word_name(x) for x in labels)}" for tag, _, labels in utterances(SMALL, "test")]
    assert refs == expected and refs[0].startswith("test/seq00000 w")
    assert not list(tmp_path.glob(".demo-*"))  # no temporary folder left behind


def test_returnn_reads_back_what_was_generated(tmp_path):
    from returnn.datasets.hdf import HDFDataset

    folder = ensure_demo_data(tmp_path, SMALL)
    dataset = HDFDataset(files=[str(folder / "dev.hdf")], use_cache_manager=False)
    dataset.init_seq_order(epoch=1)
    generated = utterances(SMALL, "dev")
    assert dataset.num_seqs == len(generated)
    for index, (tag, features, labels) in enumerate(generated):
        dataset.load_seqs(index, index + 1)
        assert dataset.get_tag(index) == tag
        np.testing.assert_array_equal(dataset.get_data(index, "data"), features)
        assert dataset.get_data(index, "classes").tolist() == labels


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIG_BISECT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CONFIG_BISECT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "config-bisect"
