"""Team mode on the command line: `workbench users|members|jobs|history|audit`, `--as USER`, and
`workbench ui --host 0.0.0.0` refusing to start without an account."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.cli import run

PW = "long enough password\n"


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_users_roles_as_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "4") == 0
    capsys.readouterr()
    _stdin(monkeypatch, PW)
    assert run(ws, "users", "add", "boss", "--role", "admin", "--password-stdin") == 0
    assert "added user boss (admin)" in capsys.readouterr().out
    # accounts exist: a command needs a user (the OS user has no account here)
    monkeypatch.setattr("getpass.getuser", lambda: "someone")
    assert run(ws, "project", "list") == 1
    err = capsys.readouterr().err
    assert "the OS user 'someone' has no account (name one with --as USER)" in err and "Traceback" not in err
    _stdin(monkeypatch, PW)
    assert run(ws, "--as", "boss", "users", "add", "ann", "--role", "annotator", "--password-stdin") == 0
    _stdin(monkeypatch, PW)
    assert run(ws, "--as", "boss", "users", "add", "vic", "--role", "viewer", "--password-stdin") == 0
    assert run(ws, "--as", "boss", "members", "add", "demo-shapes", "vic") == 0
    capsys.readouterr()
    # the OS user mapped to an account
    monkeypatch.setattr("getpass.getuser", lambda: "vic")
    assert run(ws, "project", "list") == 0
    assert "demo-shapes" in capsys.readouterr().out
    assert run(ws, "project", "delete", "demo-shapes", "--yes") == 1
    assert "user 'vic' (role viewer) may not delete projects (project.delete)" in capsys.readouterr().err
    assert run(ws, "--as", "ann", "project", "list") == 0
    assert "demo-shapes" not in capsys.readouterr().out  # not a member: sees no project
    assert run(ws, "--as", "ann", "users", "list") == 1
    assert "may not manage users" in capsys.readouterr().err
    assert run(ws, "--as", "boss", "users", "list") == 0
    out = capsys.readouterr().out
    assert "boss" in out and "annotator" in out and "long enough" not in out
    # jobs, review and history through the CLI
    assert run(ws, "--as", "boss", "jobs", "assign", "demo-shapes", "ann", "--split", "train", "--count", "2") == 0
    assert "2 images assigned to ann" in capsys.readouterr().out
    assert run(ws, "--as", "boss", "jobs", "list", "demo-shapes") == 0
    assert "ann" in capsys.readouterr().out
    assert run(ws, "--as", "boss", "users", "disable", "ann") == 0
    assert run(ws, "--as", "ann", "project", "list") == 1
    assert "'ann' is disabled" in capsys.readouterr().err
    assert run(ws, "--as", "boss", "users", "delete", "boss", "--yes") == 1
    assert "last admin" in capsys.readouterr().err
    assert run(ws, "--as", "boss", "audit") == 0
    audit = capsys.readouterr().out
    assert "boss" in audit and "assign" in audit and "users" in audit and "long enough" not in audit


def test_a_password_from_a_pipe_needs_password_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    _stdin(monkeypatch, PW)
    assert run(tmp_path / "ws", "users", "add", "boss", "--role", "admin") == 1
    assert "pipe it with --password-stdin" in capsys.readouterr().err
    _stdin(monkeypatch, "short\n")
    assert run(tmp_path / "ws", "users", "add", "boss", "--role", "admin", "--password-stdin") == 1
    assert "at least 8 characters" in capsys.readouterr().err


def test_ui_beyond_loopback_needs_an_account_or_no_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path / "ws", "ui", "--host", "0.0.0.0") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--host 0.0.0.0 opens the UI beyond this machine, and the workspace has no accounts" in err
