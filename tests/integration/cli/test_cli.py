"""The `workbench` command line: real commands on a real workspace, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.images import write_image
from workbench.cli import main


def test_full_cli_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_fixtures: Path) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "Birds") == 0
    assert (
        run(
            ws,
            "classes",
            "add",
            "birds",
            "bird",
            "--keypoints",
            "beak,left_wing,right_wing",
            "--skeleton",
            "beak-left_wing,beak-right_wing",
            "--flip",
            "left_wing-right_wing",
        )
        == 0
    )
    write_image(tmp_path / "imgs" / "a.png", seed=1)
    write_image(tmp_path / "imgs" / "b.jpg", seed=2)
    (tmp_path / "imgs" / "bad.png").write_bytes(b"junk")
    assert run(ws, "import", "images", "birds", str(tmp_path / "imgs")) == 0
    out = capsys.readouterr().out
    assert "2 images imported" in out and "skipped bad.png" in out
    assert run(ws, "import", "labelme", "birds", str(shared_fixtures / "labelme")) == 0
    assert run(ws, "split", "birds", "--seed", "1") == 0
    assert run(ws, "stats", "birds", "--json") == 0
    capsys.readouterr()
    assert run(ws, "stats", "birds", "--json") == 0
    st = json.loads(capsys.readouterr().out)
    assert st["images"] == 5 and st["classes"]["person"]["instances"] == 6
    assert run(ws, "export", "coco", "birds", str(tmp_path / "out"), "--copy-images") == 0
    assert list((tmp_path / "out" / "annotations").glob("instances_*.json"))
    assert run(ws, "export", "labelmaps", "birds", str(tmp_path / "maps"), "--layout", "npz") == 0
    assert (tmp_path / "maps" / "classes.json").exists()
    assert run(ws, "classes", "list", "birds") == 0
    assert "beak,left_wing,right_wing" in capsys.readouterr().out
    assert run(ws, "project", "delete", "birds") == 1
    assert "--yes" in capsys.readouterr().err
    assert run(ws, "project", "delete", "birds", "--yes") == 0


def test_errors_are_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "workbench.cli", "--workspace", str(tmp_path / "ws"), "stats", "nope"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("workbench: error: no project 'nope'")


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`workbench project list | head -0`: no traceback and no 'Broken pipe' line."""
    ws = tmp_path / "ws"
    assert main(["--workspace", str(ws), "project", "create", "Birds"]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    cmd = [sys.executable, "-m", "workbench.cli", "--workspace", str(ws), "project", "list"]
    proc = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_workspace_flag_after_subcommand(tmp_path: Path) -> None:
    ws = tmp_path / "late"
    assert main(["project", "create", "X", "--workspace", str(ws)]) == 0
    assert (ws / "workbench.db").exists()


@pytest.mark.parametrize(
    ("url", "args", "reason"),
    [
        ("sqlite:////nonexistent-dir/sub/x.db", ["project", "list"], "unable to open database file"),
        ("postgresql://me:s3cret@127.0.0.1:1/x", ["project", "list"], "port 1 failed"),
        ("not a url", ["project", "list"], "Could not parse SQLAlchemy URL"),
        ("nosuchdialect://x", ["stats", "p"], "Can't load plugin"),
        (None, ["db", "upgrade", "bogus"], "Can't locate revision identified by 'bogus'"),
        ("not a url", ["db", "current"], "Could not parse SQLAlchemy URL"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str | None, args: list[str], reason: str
) -> None:
    db = ["--database-url", url] if url else []
    assert run(tmp_path / "ws", *args, *db) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: database ") and err.count("\n") == 1
    assert reason in err
    assert "s3cret" not in err


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
