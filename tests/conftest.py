"""Shared test helpers: paths to the shared fixtures and a writer for small configs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
RETURNN_CONFIGS = FIXTURES / "returnn-configs"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slurm tests start a cluster and train for minutes: they run only when asked for (`pytest -m slurm`)."""
    if "slurm" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="end-to-end Slurm test (starts a single-node cluster, several minutes of "
                                   "trainings): run with `pytest -m slurm`")
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(skip)


def requires_fixtures() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not RETURNN_CONFIGS.is_dir(), reason=f"shared fixtures not found at {FIXTURES}")


@pytest.fixture
def write_config(tmp_path: Path):
    """write_config(name, text) -> path of a dedented config file in tmp_path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write
