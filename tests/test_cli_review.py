"""CLI error lines for problems the operating system reports (review of the backend)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("kind", ["coco", "labelmaps"])
def test_an_os_error_is_one_line_naming_the_path(tmp_path: Path, kind: str) -> None:
    """An output path under a file (NotADirectoryError, FileExistsError) ends in one line, exit 1."""
    ws = tmp_path / "ws"
    base = [sys.executable, "-m", "workbench.cli", "--workspace", str(ws)]
    subprocess.run([*base, "demo", "--images", "2"], check=True, capture_output=True)
    blocker = tmp_path / "a_file.txt"
    blocker.write_text("x")
    proc = subprocess.run(
        [*base, "export", kind, "demo-shapes", str(blocker / "out")], capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("workbench:")]
    assert len(lines) == 1 and "a_file.txt" in lines[0], proc.stderr
