"""Integration fixtures: a small demo project (circles, squares, keypoint triangles) in the workspace."""

from __future__ import annotations

import pytest

from workbench.services.demo import create_demo_project


@pytest.fixture
def demo(ws) -> str:  # noqa: ANN001
    return create_demo_project(ws, num_images=6).slug
