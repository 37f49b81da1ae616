"""Background training jobs: freeze a run folder, queue it, start/cancel/observe the worker process.

The worker (``python -m workbench.train.worker RUN_DIR``) runs in its own session, so it survives
the UI; it reports through ``status.json`` in the run folder and, given the database URL, through
the run's store row (heartbeat, progress, final status). One job per device runs at a time; others
stay queued, and each worker starts the next queued run when it exits (:func:`schedule_next`).
Cancelling writes ``RUN_DIR/cancel`` and sends SIGTERM; the loop stops at the next step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.domain import AnnotatedImage, Dataset, ImageRecord, NotFoundError
from workbench.store import runs as run_repo
from workbench.store.engine import Store, open_store
from workbench.store.runs import RunInfo
from workbench.train.config import write_json_atomic

WORKER_MODULE = "workbench.train.worker"
LOG_NAME = "worker.log"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "torchvision", "albumentations", "pycocotools", "numpy", "pillow", "workbench"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _frozen_items(ds: Dataset, project_dir: Path | None, images_out: Path | None) -> list[AnnotatedImage]:
    """Items whose file_name points at the image: copied into the run (name = sha or id) or absolute."""
    items = []
    for n, item in enumerate(ds.items):
        rec = item.image
        src = Path(rec.path) if rec.path else Path(rec.file_name)
        if not src.is_absolute() and project_dir is not None:
            src = project_dir / src
        if not src.exists():
            raise NotFoundError(f"image {rec.file_name}: file {src} is missing, cannot freeze the run")
        if images_out is not None:
            name = f"{rec.sha256 or rec.id or n}{src.suffix.lower()}"
            dest = images_out / name
            if not dest.exists():
                shutil.copy2(src, dest)
            file_name = name
        else:
            file_name = str(src.resolve())
        new = ImageRecord(file_name=file_name, width=rec.width, height=rec.height, id=rec.id, sha256=rec.sha256)
        items.append(AnnotatedImage(image=new, instances=item.instances))
    return items


def write_run_folder(
    run_dir: Path,
    train: Dataset,
    val: Dataset | None,
    config: Any,
    *,
    project_dir: Path | None = None,
    copy_images: bool = False,
) -> Path:
    """Freeze a run: dataset/coco_{train,val}.json (+ images/ when copied), config.json, versions.json."""
    from workbench.formats.coco import dataset_to_coco

    run_dir = Path(run_dir)
    data_dir = run_dir / "dataset"
    images_out = data_dir / "images" if copy_images else None
    (images_out or data_dir).mkdir(parents=True, exist_ok=True)
    for split, ds in (("train", train), ("val", val)):
        if ds is None:
            continue
        frozen = Dataset(categories=list(ds.categories), items=_frozen_items(ds, project_dir, images_out))
        write_json_atomic(data_dir / f"coco_{split}.json", dataset_to_coco(frozen))
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    write_json_atomic(run_dir / "config.json", cfg)
    write_json_atomic(run_dir / "versions.json", package_versions())
    return run_dir


def start_worker(
    run_dir: Path,
    *,
    database_url: str | None = None,
    run_id: int | None = None,
    resume: bool = False,
    gpus: int = 1,
    threads: int | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the worker detached (own session, output to RUN_DIR/worker.log)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if gpus > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
               "-m", WORKER_MODULE, str(run_dir)]
    else:
        cmd = [sys.executable, "-m", WORKER_MODULE, str(run_dir)]
    if resume:
        cmd.append("--resume")
    if threads:
        cmd += ["--threads", str(threads)]
    child_env = dict(os.environ if env is None else env)
    if database_url and run_id is not None:
        child_env["WORKBENCH_DATABASE_URL"] = database_url
        child_env["WORKBENCH_RUN_ID"] = str(run_id)
    (run_dir / "cancel").unlink(missing_ok=True)
    with open(run_dir / LOG_NAME, "ab") as log:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=child_env, start_new_session=True
        )


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, parent, ...); None where unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parent_pid(pid: int) -> int | None:
    """The parent of a live process (Linux /proc), or None."""
    fields = _proc_stat(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def pid_alive(pid: int | None) -> bool:
    """True while the process exists and is not a zombie (an exited child nobody waited for)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _proc_stat(pid)
    return fields is None or fields[0] != "Z"


def default_device() -> str:
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def submit_run(
    store: Store,
    project_id: int,
    name: str,
    run_dir: Path,
    config: Any,
    *,
    device: str | None = None,
    start: bool = True,
    threads: int | None = None,
) -> RunInfo:
    """Queue a run whose folder is already written; start it now when its device is free."""
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
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


def cancel_run(store: Store, run_id: int) -> RunInfo:
    """Queued: cancelled at once. Running: cancel file + SIGTERM; the worker finishes the row."""
    with store.transaction() as s:
        info = run_repo.get_run(s, run_id)
        if info.status == "queued":
            return run_repo.finish_run(s, run_id, "cancelled", error="cancelled before it started")
    if info.status != "running":
        return info
    target = info.pid
    if info.run_dir:
        Path(info.run_dir).mkdir(parents=True, exist_ok=True)
        (Path(info.run_dir) / "cancel").write_text(str(time.time()))
        rank0 = read_status(Path(info.run_dir)).get("pid")
        if int(info.config.get("gpus", 1) or 1) > 1 and rank0 and info.pid and parent_pid(rank0) == info.pid:
            # Under torchrun: tell rank 0, which stops every rank at the next step. SIGTERM to the
            # launcher would make it kill the ranks' process groups and exit with a traceback.
            target = int(rank0)
    if pid_alive(info.pid):
        try:
            os.kill(target, signal.SIGTERM)  # type: ignore[arg-type]
        except ProcessLookupError:
            pass
    else:
        with store.transaction() as s:
            return run_repo.finish_run(s, run_id, "cancelled", error="cancelled (the worker was not running)")
    with store.transaction() as s:
        return run_repo.get_run(s, run_id)


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


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def tail_log(run_dir: Path, lines: int = 50) -> str:
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - 64 * 1024, 0))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


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


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / "checkpoints" / "last.pt").exists()
