"""The worker process of a run: start it detached, look at it through /proc, cancel it.

The worker (``python -m workbench.runs.worker RUN_DIR``) runs in its own session, so it survives
the UI. Cancelling writes ``RUN_DIR/cancel`` and sends SIGTERM; the loop stops at the next step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.domain import RunInfo
from workbench.runs.folders import LOG_NAME, read_status
from workbench.store import runs as run_repo
from workbench.store.engine import Store

WORKER_MODULE = "workbench.runs.worker"


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
