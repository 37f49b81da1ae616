"""Job lifecycle through the real worker subprocess and a real SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from workbench.runs import folders as run_folders
from workbench.runs import processes
from workbench.runs import queue as run_queue
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.store.engine import open_store, sqlite_url
from workbench.store.models import utcnow
from workbench.train.config import TrainConfig
from workbench.train.synthetic import write_shapes_run


def tiny(**kw) -> TrainConfig:
    base = dict(backbone="tiny", weights="none", epochs=1, batch_size=2, num_workers=0, warmup_iters=1,
                log_every=1, augmentation="none", eval_every=100, early_stopping_patience=None)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def store(tmp_path):
    st = open_store(sqlite_url(tmp_path / "workbench.db"))
    yield st
    st.dispose()


@pytest.fixture
def project_id(store):
    with store.transaction() as s:
        return project_repo.create_project(s, "Shapes").id


def _run(tmp_path: Path, name: str, cfg: TrainConfig, n: int = 2) -> Path:
    return write_shapes_run(tmp_path / name, cfg, n_train=n, size_wh=(64, 48))


def _running_with_dead_worker(store, project_id: int, name: str, run_dir: Path) -> int:
    """A run row claimed as running on the cpu whose worker pid has already exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with store.transaction() as s:
        run = run_repo.create_run(s, project_id, name, {}, str(run_dir), device="cpu")
        run_repo.claim_next_queued_run(s, "cpu")
        run_repo.set_run_pid(s, run.id, proc.pid)
    return run.id


def test_queued_then_running_then_succeeded(store, project_id, tmp_path):
    run_dir = _run(tmp_path, "ok", tiny())
    info = run_queue.submit_run(store, project_id, "ok", run_dir, tiny(), device="cpu", start=False, threads=1)
    assert info.status == "queued" and info.pid is None
    started = run_queue.schedule_next(store, threads=1)
    assert started is not None and started.id == info.id and started.status == "running" and started.pid
    done = run_queue.wait_for(store, info.id, run_repo.FINAL_STATUSES, timeout_s=90)
    assert done.status == "succeeded", run_folders.tail_log(run_dir)
    assert done.finished_at is not None and done.heartbeat_at is not None
    assert done.progress["step"] == done.progress["total_steps"] == 1
    assert (run_dir / "model.pt").exists()
    deadline = time.monotonic() + 20
    while processes.pid_alive(done.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.pid_alive(done.pid)  # the worker exits once its row is final


def test_second_job_queues_and_cancel_works_for_both(store, project_id, tmp_path):
    long_cfg = tiny(epochs=500)
    a_dir, b_dir = _run(tmp_path, "a", long_cfg), _run(tmp_path, "b", tiny())
    a = run_queue.submit_run(store, project_id, "a", a_dir, long_cfg, device="cpu", threads=1)
    b = run_queue.submit_run(store, project_id, "b", b_dir, tiny(), device="cpu", threads=1)
    assert a.status == "running" and b.status == "queued"  # one job per device
    assert processes.cancel_run(store, b.id).status == "cancelled"
    # Wait until the worker really trains, then cancel it.
    deadline = time.monotonic() + 60
    while run_folders.read_status(a_dir).get("step", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    processes.cancel_run(store, a.id)
    done = run_queue.wait_for(store, a.id, run_repo.FINAL_STATUSES, timeout_s=60)
    assert done.status == "cancelled", run_folders.tail_log(a_dir)
    assert (a_dir / "cancel").exists()
    with store.transaction() as s:
        assert run_repo.get_run(s, b.id).status == "cancelled"  # not started by a's exit


def test_a_failing_run_reports_its_error(store, project_id, tmp_path):
    run_dir = _run(tmp_path, "bad", tiny())
    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["weights"] = str(tmp_path / "missing.pt")
    (run_dir / "config.json").write_text(json.dumps(cfg))
    info = run_queue.submit_run(store, project_id, "bad", run_dir, cfg, device="cpu", threads=1)
    done = run_queue.wait_for(store, info.id, run_repo.FINAL_STATUSES, timeout_s=90)
    assert done.status == "failed"
    assert "missing.pt: no such checkpoint file" in done.error
    assert run_folders.read_status(run_dir)["status"] == "failed"


def test_stale_and_dead_workers_are_marked_failed(store, project_id, tmp_path):
    with store.transaction() as s:
        stale = run_repo.create_run(s, project_id, "stale", {}, str(tmp_path / "s"), device="cpu")
        run_repo.claim_next_queued_run(s, "cpu")
    with store.transaction() as s:
        assert run_repo.mark_stale_runs_failed(s, max_age_s=60, now=utcnow() + timedelta(seconds=61)) == [stale.id]
        assert "stopped responding" in run_repo.get_run(s, stale.id).error
    dead = _running_with_dead_worker(store, project_id, "dead", tmp_path / "d")
    assert run_queue.refresh_runs(store) == [dead]
    with store.transaction() as s:
        info = run_repo.get_run(s, dead)
    assert info.status == "failed" and "exited without reporting" in info.error


def test_finish_is_first_word_wins_and_progress_stops_after(store, project_id, tmp_path):
    with store.transaction() as s:
        r = run_repo.create_run(s, project_id, "r", {"epochs": 1}, str(tmp_path))
        run_repo.claim_next_queued_run(s)
        run_repo.finish_run(s, r.id, "cancelled")
        run_repo.finish_run(s, r.id, "succeeded")
        run_repo.update_run_progress(s, r.id, {"step": 5})
        info = run_repo.get_run(s, r.id)
    assert info.status == "cancelled" and info.progress is None
    with pytest.raises(ValueError, match="finishes as one of"), store.transaction() as s:
        run_repo.finish_run(s, r.id, "running")


def test_a_worker_killed_by_an_early_cancel_counts_as_cancelled(store, project_id, tmp_path):
    """Cancel pressed before the worker installed its handlers: SIGTERM kills it, the cancel file stays."""
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    (run_dir / "cancel").write_text("now")
    early = _running_with_dead_worker(store, project_id, "early", run_dir)
    run_queue.refresh_runs(store)
    with store.transaction() as s:
        info = run_repo.get_run(s, early)
    assert info.status == "cancelled" and "before it started" in info.error


def test_a_multi_gpu_run_waits_for_every_one_of_its_devices(store, project_id, tmp_path):
    with store.transaction() as s:
        one = run_repo.create_run(s, project_id, "one", {}, str(tmp_path / "1"), device="cuda:1")
        both = run_repo.create_run(s, project_id, "both", {}, str(tmp_path / "2"), device="cuda:0,cuda:1")
        other = run_repo.create_run(s, project_id, "other", {}, str(tmp_path / "3"), device="cuda:0")
        assert run_repo.claim_next_queued_run(s, "cuda:1").id == one.id
        assert run_repo.claim_next_queued_run(s, "cuda:0,cuda:1") is None  # cuda:1 is taken
        assert run_repo.claim_next_queued_run(s, "cuda:0").id == other.id  # cuda:0 is free
        run_repo.finish_run(s, one.id, "succeeded")
        assert run_repo.claim_next_queued_run(s, "cuda:0,cuda:1") is None  # cuda:0 is taken now
        run_repo.finish_run(s, other.id, "succeeded")
        assert run_repo.claim_next_queued_run(s, "cuda:0,cuda:1").id == both.id
        cpu = run_repo.create_run(s, project_id, "cpu", {}, str(tmp_path / "4"), device="cpu")
        assert run_repo.claim_next_queued_run(s, "cpu").id == cpu.id  # no GPU involved


@pytest.mark.parametrize(
    ("device", "gpus", "cuda", "key"),
    [
        ("cpu", 2, True, "cpu"),
        ("cuda", 1, True, "cuda:0"),
        ("cuda", 3, True, "cuda:0,cuda:1,cuda:2"),
        ("auto", 2, True, "cuda:0,cuda:1"),
        ("auto", 2, False, "cpu"),
        ("cuda:1", 1, True, "cuda:1"),
    ],
)
def test_queue_device_names_every_gpu_a_run_uses(monkeypatch, device, gpus, cuda, key):
    from workbench.runs import devices
    from workbench.services import training

    monkeypatch.setattr(devices, "cuda_available", lambda: cuda)
    assert training.queue_device(tiny(device=device, gpus=gpus)) == key


def test_a_cancel_while_the_worker_starts_ends_cancelled_by_the_worker(store, project_id, tmp_path):
    """SIGTERM at once after the start (torch still importing): the worker notes it and stops at the
    first step, saying 'cancelled' itself, so the row never stays 'running' after the worker is gone."""
    run_dir = _run(tmp_path, "early", tiny(epochs=5))
    info = run_queue.submit_run(store, project_id, "early", run_dir, tiny(epochs=5), device="cpu", threads=1)
    import os
    import signal

    def catches_sigterm_before_torch() -> bool:  # the worker's first handler is in place, torch not loaded
        status = Path(f"/proc/{info.pid}/status").read_text()
        mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
        return bool(mask & (1 << (signal.SIGTERM - 1))) and "libtorch" not in Path(f"/proc/{info.pid}/maps").read_text()

    deadline = time.monotonic() + 30
    while not (hit := catches_sigterm_before_torch()) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert hit, "the worker caught SIGTERM only after torch was loaded"
    os.kill(info.pid, signal.SIGTERM)  # no cancel file: only the signal
    done = run_queue.wait_for(store, info.id, run_repo.FINAL_STATUSES, timeout_s=120)
    assert done.status == "cancelled", (run_dir / "worker.log").read_text()[-2000:]
    assert run_folders.read_status(run_dir)["status"] == "cancelled"


def test_refresh_starts_the_queued_run_a_dead_worker_left_waiting(store, project_id, tmp_path):
    dead = _running_with_dead_worker(store, project_id, "dead", tmp_path / "d")
    waiting_dir = _run(tmp_path, "waiting", tiny(max_iters=1))
    waiting = run_queue.submit_run(store, project_id, "waiting", waiting_dir, tiny(max_iters=1), device="cpu", threads=1)
    assert waiting.status == "queued"  # the (dead) run holds the cpu
    assert run_queue.refresh_runs(store) == [dead]
    done = run_queue.wait_for(store, waiting.id, run_repo.FINAL_STATUSES, timeout_s=120)
    assert done.status == "succeeded", done.error
