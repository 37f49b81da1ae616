"""The run queue: one job per device at a time, the others wait as ``queued`` rows.

A run is submitted with its folder already written (:func:`workbench.runs.folders.write_run_folder`);
it starts at once when its device is free, otherwise each worker starts the next queued run when it
exits (:func:`schedule_next`). Given the database URL, the worker also reports through the run's row
(heartbeat, progress, final status: :func:`store_progress_callback`); rows whose worker died without
a word are failed by :func:`refresh_runs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from workbench.domain import RunInfo
from workbench.runs.devices import default_device
from workbench.runs.folders import config_dict, has_checkpoint, read_status
from workbench.runs.processes import pid_alive, start_worker
from workbench.store import runs as run_repo
from workbench.store.engine import Store, open_store
from workbench.train.config import TrainConfig


def submit_run(
    store: Store,
    project_id: int,
    name: str,
    run_dir: Path,
    config: TrainConfig | Mapping[str, Any],
    *,
    device: str | None = None,
    start: bool = True,
    threads: int | None = None,
) -> RunInfo:
    """Queue a run whose folder is already written; start it now when its device is free."""
    cfg = config_dict(config)
    with store.transaction() as s:
        info = run_repo.create_run(s, project_id, name, cfg, str(run_dir), device=device or default_device())
    if start:
        schedule_next(store, threads=threads)
        with store.transaction() as s:
            info = run_repo.get_run(s, info.id)
    return info


def schedule_next(store_or_url: Store | str, *, device: str | None = None, threads: int | None = None) -> RunInfo | None:
    """Claim the next queued run for a free device and start its worker; None when nothing to start."""
    store = open_store(store_or_url, migrate=False) if isinstance(store_or_url, str) else store_or_url
    devices = [device] if device else None
    with store.transaction() as s:
        if devices is None:
            devices = sorted({r.device or "cpu" for r in run_repo.list_runs(s, status="queued")})
    for dev in devices:
        with store.transaction() as s:
            info = run_repo.claim_next_queued_run(s, dev)
        if info is None:
            continue
        gpus = int(info.config.get("gpus", 1) or 1)
        resume = has_checkpoint(Path(info.run_dir))  # a resumed run continues where it stopped
        try:
            proc = start_worker(
                Path(info.run_dir), database_url=store.url, run_id=info.id, resume=resume, gpus=gpus, threads=threads
            )
        except Exception as exc:
            with store.transaction() as s:
                run_repo.finish_run(s, info.id, "failed", error=f"could not start the worker: {exc}")
            continue
        with store.transaction() as s:
            run_repo.set_run_pid(s, info.id, proc.pid)
            return run_repo.get_run(s, info.id)
    return None


def refresh_runs(store: Store, *, max_heartbeat_age_s: float = 120.0) -> list[int]:
    """Fail runs whose worker is gone: dead pid on this machine, or heartbeat older than the limit."""
    failed: list[int] = []
    with store.transaction() as s:
        for info in run_repo.list_runs(s, status="running"):
            if info.pid and not pid_alive(info.pid):
                status = read_status(Path(info.run_dir)) if info.run_dir else {}
                final = status.get("status")
                if final in run_repo.FINAL_STATUSES:
                    run_repo.finish_run(s, info.id, final, error=status.get("error"))
                elif info.run_dir and (Path(info.run_dir) / "cancel").exists():
                    # cancelled before the worker could install its handlers (SIGTERM killed it outright)
                    run_repo.finish_run(s, info.id, "cancelled", error="cancelled before it started training")
                else:
                    run_repo.finish_run(s, info.id, "failed", error="the worker process exited without reporting (killed?)")
                failed.append(info.id)
        failed += run_repo.mark_stale_runs_failed(s, max_age_s=max_heartbeat_age_s)
    if failed:  # their devices are free: start what waits for them (a dead worker never did)
        schedule_next(store)
    return failed


def store_progress_callback(database_url: str, run_id: int, *, min_interval_s: float = 1.0) -> Callable[[dict[str, Any]], None]:
    """The worker's hook into the store: heartbeat + progress (throttled), final status at the end."""
    store = open_store(database_url, migrate=False)
    last = [0.0]

    def callback(data: dict[str, Any]) -> None:
        status = data.get("status")
        metrics = data.get("last_val") or None
        with store.transaction() as s:
            if status in run_repo.FINAL_STATUSES:
                run_repo.update_run_progress(s, run_id, data, metrics=metrics)
                run_repo.finish_run(s, run_id, status, error=data.get("error"), metrics=metrics)
                return
            now = time.monotonic()
            if now - last[0] < min_interval_s:
                return
            last[0] = now
            run_repo.update_run_progress(s, run_id, data, metrics=metrics)

    return callback


def wait_for(store: Store, run_id: int, statuses: tuple[str, ...], *, timeout_s: float = 60.0) -> RunInfo:
    """Poll the store until the run reaches one of ``statuses`` (tests, CLI ``--wait``); every few
    seconds also notice workers that died without a word (:func:`refresh_runs`)."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        polls += 1
        if polls % 25 == 0:
            refresh_runs(store)
        with store.transaction() as s:
            info = run_repo.get_run(s, run_id)
        if info.status in statuses or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def resume_run(store: Store, run_id: int, *, threads: int | None = None) -> RunInfo:
    """Queue a failed or cancelled run again; it starts now if its device is free, continuing from
    checkpoints/last.pt (from the start where it has none)."""
    with store.transaction() as s:
        info = run_repo.reopen_run(s, run_id)
    schedule_next(store, device=info.device or "cpu", threads=threads)
    with store.transaction() as s:
        return run_repo.get_run(s, info.id)
