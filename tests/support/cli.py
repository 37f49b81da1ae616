"""The `workbench` command line run in this process, on a workspace folder."""

from __future__ import annotations

from pathlib import Path

from workbench.cli import main


def run(ws: Path, *args: str) -> int:
    """``workbench --workspace WS ARGS...``: its exit code; its output goes to the captured streams."""
    return main(["--workspace", str(ws), *args])
