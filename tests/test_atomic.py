"""Atomic writes: a reader sees the old or the new file, and the file is as readable as any other of the user's."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from common.atomic import write_atomic


@pytest.fixture
def umask():
    """Set a umask for the test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=oct)
def test_the_file_mode_honours_the_umask(tmp_path, umask, mask):
    """Regression: every file was written 0600 (mkstemp), unreadable to colleagues on a shared cluster."""
    umask(mask)
    write_atomic(tmp_path / "results.json", "{}\n")
    write_atomic(tmp_path / "chart.png", b"\x89PNG")
    for name in ("results.json", "chart.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # the mode any other program of the user's would give it
    assert stat.S_IMODE(plain.stat().st_mode) == stat.S_IMODE((tmp_path / "results.json").stat().st_mode)


def test_replaces_whole_files_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "old\n")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    write_atomic(target, "old\n")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]  # neither str nor bytes: the write fails midway
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_concurrent_writers_never_leave_a_mixed_file(tmp_path):
    target = tmp_path / "out.txt"
    texts = [str(i) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(target, text)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.read_text() in texts and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
