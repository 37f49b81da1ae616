"""Fixtures shared by every test folder: real workspaces (SQLite file + migrations) and real images."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


def image_bytes(width: int = 32, height: int = 24, *, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A small real image with random content (distinct per seed, so distinct sha256)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, width: int = 32, height: int = 24, *, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF"}[
        path.suffix.lower()
    ]
    path.write_bytes(image_bytes(width, height, seed=seed, fmt=fmt))
    return path
