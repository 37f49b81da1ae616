"""Training runs in the store: queue, claim, heartbeat/progress, finish, stale detection.

The worker process updates its row (heartbeat + progress) through these functions, so a UI that
restarts finds running jobs again; a run whose heartbeat stops is marked failed, not left running.
One running job per device: :func:`claim_next_queued_run` refuses while another one runs there.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from workbench.domain import NotFoundError, RunInfo, ValidationError, check_name_length
from workbench.store.models import RunRow, utcnow

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATUSES = ("succeeded", "failed", "cancelled")


def _info(row: RunRow) -> RunInfo:
    return RunInfo(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        status=row.status,
        config=dict(row.config or {}),
        device=row.device,
        pid=row.pid,
        heartbeat_at=row.heartbeat_at,
        progress=dict(row.progress) if row.progress is not None else None,
        metrics=dict(row.metrics) if row.metrics is not None else None,
        error=row.error,
        run_dir=row.run_dir,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _row(s: Session, run_id: int) -> RunRow:
    row = s.get(RunRow, run_id)
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    return row


def create_run(
    s: Session, project_id: int, name: str, config: dict[str, Any], run_dir: str, *, device: str | None = None
) -> RunInfo:
    """A queued run; ``device`` is the accelerator it waits for (``cpu``, ``cuda:0``...)."""
    check_name_length("run name", name)
    row = RunRow(
        project_id=project_id,
        name=name,
        status="queued",
        config=dict(config),
        device=device,
        run_dir=str(run_dir),
        created_at=utcnow(),
    )
    s.add(row)
    s.flush()
    return _info(row)


def set_run_dir(s: Session, run_id: int, run_dir: str) -> None:
    _row(s, run_id).run_dir = str(run_dir)


def claim_next_queued_run(s: Session, device: str | None = None) -> RunInfo | None:
    """Move the oldest queued run for ``device`` to running, unless a run already uses one of its devices.

    A device key names one device (``cpu``, ``cuda:1``) or, for a run over several GPUs, a comma-joined
    list (``cuda:0,cuda:1``): a run waits while any of its devices is taken.
    """
    running = list(s.scalars(select(RunRow.device).where(RunRow.status == "running")))
    if device is None:
        if running:
            return None
    elif any(set(device.split(",")) & set(d.split(",")) for d in running if d):
        return None
    query = select(RunRow).where(RunRow.status == "queued").order_by(RunRow.created_at, RunRow.id)
    if device is not None:
        query = query.where((RunRow.device == device) | (RunRow.device.is_(None)))
    for row in s.scalars(query):
        now = utcnow()
        # Conditional update: of two schedulers racing for this row, only one sees rowcount 1.
        result = s.execute(
            update(RunRow)
            .where(RunRow.id == row.id, RunRow.status == "queued")
            .values(status="running", started_at=now, heartbeat_at=now, device=device or row.device)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            s.refresh(row)
            return _info(row)
    return None


def set_run_pid(s: Session, run_id: int, pid: int | None) -> None:
    _row(s, run_id).pid = pid


def update_run_progress(
    s: Session, run_id: int, progress: dict[str, Any], *, metrics: dict[str, Any] | None = None
) -> None:
    """Heartbeat plus the latest progress (and metrics); ignored once the run has finished."""
    row = _row(s, run_id)
    if row.status in FINAL_STATUSES:
        return
    row.progress = dict(progress)
    if metrics is not None:
        row.metrics = dict(metrics)
    row.heartbeat_at = utcnow()


def finish_run(
    s: Session, run_id: int, status: str, *, error: str | None = None, metrics: dict[str, Any] | None = None
) -> RunInfo:
    if status not in FINAL_STATUSES:
        raise ValidationError(f"a run finishes as one of {FINAL_STATUSES}, not {status!r}")
    row = _row(s, run_id)
    if row.status in FINAL_STATUSES:  # first word wins (e.g. cancelled before the worker noticed)
        return _info(row)
    row.status = status
    row.error = error
    if metrics is not None:
        row.metrics = dict(metrics)
    row.finished_at = utcnow()
    return _info(row)


def get_run(s: Session, run_id: int) -> RunInfo:
    return _info(_row(s, run_id))


def list_runs(s: Session, project_id: int | None = None, *, status: str | None = None) -> list[RunInfo]:
    query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc())
    if project_id is not None:
        query = query.where(RunRow.project_id == project_id)
    if status is not None:
        query = query.where(RunRow.status == status)
    return [_info(r) for r in s.scalars(query)]


def mark_stale_runs_failed(s: Session, *, max_age_s: float = 120.0, now: datetime | None = None) -> list[int]:
    """Running runs without a heartbeat for ``max_age_s`` (worker killed, machine rebooted) -> failed."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=max_age_s)
    stale = s.scalars(
        select(RunRow).where(RunRow.status == "running", (RunRow.heartbeat_at < cutoff) | RunRow.heartbeat_at.is_(None))
    ).all()
    for row in stale:
        row.status = "failed"
        row.error = f"the worker stopped responding (no heartbeat since {row.heartbeat_at} UTC)"
        row.finished_at = now
    return [r.id for r in stale]


def reopen_run(s: Session, run_id: int) -> RunInfo:
    """A failed or cancelled run goes back to the queue of its device; the scheduler starts it (with
    ``--resume`` when it has a checkpoint) once the device is free, like any queued run."""
    row = _row(s, run_id)
    if row.status not in ("failed", "cancelled"):
        raise ValidationError(f"run {run_id} is {row.status}; only failed or cancelled runs can be resumed")
    row.status = "queued"
    row.error = None
    row.finished_at = None
    row.pid = None
    return _info(row)
