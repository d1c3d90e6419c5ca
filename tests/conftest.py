"""Shared test helpers: paths to the shared fixtures, a writer for small configs, and the feed-forward pair with a
real gap with its local run (shared by the run, strategy and Sisyphus tests)."""

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


@pytest.fixture(scope="session")
def ff_pair(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """orig learns, start cannot (learning rate ~0); they also differ in L2 and dropout (tests/ff_pair.py):
    (orig, start, vocab, refs)."""
    from demo.task import ensure_demo_data
    from tests.ff_pair import TINY, write_pair

    data = ensure_demo_data(tmp_path_factory.mktemp("ff-data"), TINY)
    return write_pair(tmp_path_factory.mktemp("ff-pair"), data)


@pytest.fixture(scope="session")
def ff_fixed_run(ff_pair, tmp_path_factory):
    """`run` of the ff pair with FIXED_PLAN, then the same command again: (work folder, first, second result)."""
    from click.testing import CliRunner

    from bisect_cli.main import cli
    from tests.ff_pair import FIXED_PLAN

    orig, start, vocab, refs = ff_pair
    work = tmp_path_factory.mktemp("ff-run")
    args = ["run", str(orig), str(start), "-o", str(work), *FIXED_PLAN, "--vocab", str(vocab), "--refs", str(refs)]
    return work, CliRunner().invoke(cli, args), CliRunner().invoke(cli, args)
