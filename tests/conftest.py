"""Fixtures shared by every test folder: real workspaces (SQLite file + migrations), the golden
fixtures of other tools, and tiny synthetic training run folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES_DIR = (REPO_ROOT / ".." / "shared" / "fixtures").resolve()


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the repository (CI clones the repo with ../shared beside it)."""
    if not SHARED_FIXTURES_DIR.is_dir():
        pytest.skip(f"golden fixtures of other tools not found at {SHARED_FIXTURES_DIR} (../shared/fixtures)")
    return SHARED_FIXTURES_DIR


@pytest.fixture
def ws(tmp_path: Path) -> Iterator:
    """A fresh workspace in a temp folder, migrations applied."""
    from workbench.services.workspace import open_workspace

    w = open_workspace(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture
def project(ws) -> str:  # noqa: ANN001
    from workbench.services.projects import create_project

    return create_project(ws, "Test project").slug


@pytest.fixture
def make_run(tmp_path: Path):  # noqa: ANN201 - a factory of run folders
    """Synthetic-shapes run folders with a tiny CPU config (for the trainer, the loader and DDP)."""
    from tests.support.training import tiny_config
    from workbench.train.synthetic import write_shapes_run

    def make(name: str = "run", *, n_train: int = 4, n_val: int = 0, empty_every: int = 0, **overrides) -> Path:
        return write_shapes_run(
            tmp_path / name, tiny_config(**overrides), n_train=n_train, n_val=n_val, empty_every=empty_every,
            size_wh=(96, 64),
        )

    return make
