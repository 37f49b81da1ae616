"""Evaluation summaries on a run's row, whatever its status.

``runs.update_run_progress`` and ``runs.finish_run`` leave a finished run alone (the worker's last
word wins); an evaluation happens after the run finished, so it merges its summary under one key of
``metrics`` here instead, keeping what training wrote there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from workbench.domain import NotFoundError
from workbench.store.models import RunRow

EVAL_KEY = "eval"


def set_run_evaluation(s: Session, run_id: int, split: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Store ``summary`` as ``metrics["eval"][split]`` (replacing an earlier one); return the metrics."""
    row = s.get(RunRow, run_id)
    if row is None:
        raise NotFoundError(f"no run with id {run_id}")
    metrics = dict(row.metrics or {})
    evals = dict(metrics.get(EVAL_KEY) or {})
    evals[split] = dict(summary)
    metrics[EVAL_KEY] = evals
    row.metrics = metrics  # a new dict: the JSON column sees the change
    return metrics


def run_evaluations(metrics: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The evaluation summaries per split held in a run's metrics (empty when never evaluated)."""
    return dict((metrics or {}).get(EVAL_KEY) or {})
