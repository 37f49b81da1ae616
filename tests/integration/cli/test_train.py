"""`workbench train` and `workbench runs` through the real CLI, store and worker subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run
from workbench.cli import main


@pytest.fixture
def demo_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "6") == 0
    return ws


def test_train_wait_then_list_and_show(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo_ws, "train", "demo-shapes", "--epochs", "1", "--max-iters", "2", "--wait") == 0
    out = capsys.readouterr().out
    assert "run 1 succeeded" in out
    assert run(demo_ws, "runs", "list", "demo-shapes") == 0
    assert "succeeded" in capsys.readouterr().out
    assert run(demo_ws, "runs", "show", "1") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "succeeded" and shown["progress"]["step"] == 2
    run_dir = Path(shown["run_dir"])
    assert (run_dir / "model.pt").exists()
    # the worker evaluates the finished run on the val split before it exits
    import time

    metrics, report = run_dir / "eval" / "val" / "metrics.json", run_dir / "eval" / "val" / "report.html"
    deadline = time.time() + 120
    while not (metrics.exists() and report.exists()) and time.time() < deadline:
        time.sleep(0.5)
    assert metrics.exists(), (run_dir / "worker.log").read_text()[-2000:]
    assert {"bbox", "segm", "keypoints"} <= set(json.loads(metrics.read_text())["types"])
    assert "<html" in report.read_text()[:500].lower()
    # the worker and its loader workers exit (loader workers ignoring SIGTERM once hung it at exit)
    from workbench.runs import processes

    pid = shown["progress"]["pid"]
    deadline = time.time() + 60
    while processes.pid_alive(pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not processes.pid_alive(pid), "the worker did not exit after its run"


def test_cancel_then_resume_continues_from_the_checkpoint(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench.runs import queue as run_queue
    from workbench.services.workspace import open_workspace

    assert run(demo_ws, "train", "demo-shapes", "--epochs", "3", "--max-iters", "40") == 0
    capsys.readouterr()
    ws = open_workspace(demo_ws)
    # let it write an epoch checkpoint, then cancel
    info = run_queue.wait_for(ws.store, 1, ("running",), timeout_s=60)
    run_dir = Path(info.run_dir)
    import time

    deadline = time.time() + 120
    while not (run_dir / "checkpoints" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert run(demo_ws, "runs", "cancel", "1") == 0
    info = run_queue.wait_for(ws.store, 1, ("cancelled", "succeeded"), timeout_s=60)
    if info.status == "succeeded":
        pytest.skip("the run finished before the cancel landed")
    with pytest.raises(SystemExit):
        main(["runs", "resume"])  # argparse: RUN is required
    assert run(demo_ws, "runs", "resume", "1", "--wait") == 0
    assert "run 1 resumed from its last checkpoint" in capsys.readouterr().out
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "succeeded" and status["resumed_from_step"] > 0
    assert run(demo_ws, "runs", "resume", "1") == 1
    assert "only failed or cancelled" in capsys.readouterr().err


def test_train_errors_are_one_line(demo_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cfg.json"
    bad.write_text(json.dumps({"epochz": 3}))
    assert run(demo_ws, "train", "demo-shapes", "--config", str(bad)) == 1
    assert "unknown settings ['epochz']" in capsys.readouterr().err
    assert run(demo_ws, "train", "nope") == 1
    assert "no project 'nope'" in capsys.readouterr().err


def test_resume_waits_in_the_queue_while_the_device_is_busy(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One training job per device: a resumed run queues like any other, never starting beside a running one."""
    from workbench.runs import queue as run_queue
    from workbench.services.workspace import open_workspace

    ws = open_workspace(demo_ws)
    long = demo_ws / "long.json"  # no early stopping: it runs until cancelled
    long.write_text(json.dumps({"early_stopping_patience": None}))
    assert run(demo_ws, "train", "demo-shapes", "--epochs", "50", "--name", "long", "--config", str(long)) == 0
    run_queue.wait_for(ws.store, 1, ("running",), timeout_s=60)
    assert run(demo_ws, "train", "demo-shapes", "--epochs", "1", "--max-iters", "2", "--name", "short") == 0
    assert run(demo_ws, "runs", "cancel", "2") == 0  # cancelled while queued: no checkpoint
    capsys.readouterr()
    assert run(demo_ws, "runs", "resume", "2") == 0
    assert "run 2 queued: it resumes when its device (cpu) is free" in capsys.readouterr().out
    with ws.store.transaction() as s:
        from workbench.store import runs as run_repo

        assert run_repo.get_run(s, 2).status == "queued"
    assert run(demo_ws, "runs", "cancel", "1") == 0  # the device frees; run 2 starts from the beginning
    first = run_queue.wait_for(ws.store, 1, ("cancelled",), timeout_s=120)
    assert first.status == "cancelled", (Path(first.run_dir) / "worker.log").read_text()[-3000:]
    done = run_queue.wait_for(ws.store, 2, ("succeeded", "failed"), timeout_s=180)
    assert done.status == "succeeded", done.error
    capsys.readouterr()
    assert run(demo_ws, "runs", "cancel", "2") == 0
    assert "run 2 already succeeded: nothing to cancel" in capsys.readouterr().out
