"""What happens around the steps of a run, as hooks (detectron2's ``engine/hooks.py``).

The loop (:class:`workbench.train.loop.Trainer`) only trains and validates; it calls every hook in
order at ``before_train``, ``before_step``, ``after_step``, ``after_epoch`` (with the validation
result, None in an epoch without one) and, on rank 0, ``after_train``. The trainer's own hooks, in
their order:

* :class:`CancelOnRequest` (every rank): stop at a step boundary when the run was asked to
* :class:`EarlyStopping`, :class:`BestCheckpoint` (every rank, so the ranks agree)
* :class:`PeriodicCheckpoint`: ``checkpoints/last.pt`` every epoch and every ``checkpoint_every_iters``
* :class:`MetricsHook`, :class:`StatusHook` (rank 0): ``metrics.jsonl``, ``status.json`` and the
  store callback, written after the checkpoints of the same step, so a status never names a step
  or epoch whose checkpoint is not on disk yet

Files are written by rank 0 only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.domain import WorkbenchError
from workbench.train.config import write_json_atomic

if TYPE_CHECKING:
    from workbench.train.loop import Trainer


class TrainingCancelled(WorkbenchError):
    """Raised at a step boundary when the run was asked to stop (cancel file or SIGTERM)."""


class Hook:
    """Override what you need; ``trainer.state`` holds the counters, ``trainer.run_dir`` the folder."""

    def before_train(self, trainer: Trainer) -> None: ...
    def before_step(self, trainer: Trainer) -> None: ...
    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None: ...
    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None: ...
    def after_train(self, trainer: Trainer, status: str, error: str | None) -> None: ...


class CancelRequest:
    """A stop asked for by SIGTERM (:meth:`request`) or a ``RUN_DIR/cancel`` file."""

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def wanted(self, run_dir: Path) -> bool:
        return self.requested or (run_dir / "cancel").exists()


class CancelOnRequest(Hook):
    """Before every step: stop when a cancel was asked for.

    Under DDP the ranks stop only when they agree (any rank asked), so every process leaves at the
    same step instead of one waiting forever for the others' gradients.
    """

    def __init__(self, request: CancelRequest) -> None:
        self.request = request

    def before_step(self, trainer: Trainer) -> None:
        if trainer.any_rank(self.request.wanted(trainer.run_dir)):
            raise TrainingCancelled("cancelled by the user")


def _mask_ap(val: dict[str, float], trainer: Trainer | None = None) -> float:
    """The validation figure that picks the best epoch: the task's primary metric (instance: mask AP,
    semantic: mean IoU); ``state.best_ap`` holds it whatever the task."""
    key = trainer.task.primary_metric if trainer is not None and hasattr(trainer, "task") else "segm_ap"
    return float(val.get(key) or 0.0)


class EarlyStopping(Hook):
    """Stop after ``early_stopping_patience`` validated epochs without a better mask AP.

    A model trained from scratch sits at AP 0 for its first epochs: patience counts once it has
    learned something, or from half-way (a run that learns nothing still ends). Runs before
    :class:`BestCheckpoint`, so ``state.best_ap`` is still the best of the epochs before this one.
    """

    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None:
        if val is None:
            return
        st, cfg = trainer.state, trainer.config
        if _mask_ap(val, trainer) > st.best_ap:
            st.epochs_without_improvement = 0
        elif st.best_ap > 0 or 2 * st.epoch >= cfg.epochs:
            st.epochs_without_improvement += 1
        patience = cfg.early_stopping_patience
        if patience is not None and st.epochs_without_improvement >= patience:
            trainer.stopping = True


class BestCheckpoint(Hook):
    """``checkpoints/best.pt`` whenever the validation mask AP is better than every one before."""

    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None:
        if val is None:
            return
        st, ap = trainer.state, _mask_ap(val, trainer)
        if ap > st.best_ap:
            st.best_ap, st.best_epoch = ap, st.epoch
            trainer.save_checkpoint("best.pt")


class PeriodicCheckpoint(Hook):
    """``checkpoints/last.pt`` at every epoch end and every ``checkpoint_every_iters`` steps within one
    (mid-epoch resume); a step that ends the epoch leaves it to the epoch's own save."""

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        st, every = trainer.state, trainer.config.checkpoint_every_iters
        if every and st.global_step % every == 0 and st.iter_in_epoch < st.iters_per_epoch:
            trainer.save_checkpoint("last.pt")

    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None:
        trainer.save_checkpoint("last.pt")


class MetricsHook(Hook):
    """Average losses over ``log_every`` steps into metrics.jsonl, with lr and images/s.

    ``epoch`` counts from 1 in both kinds of rows (status.json's ``epoch`` counts finished epochs).
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._n = 0
        self._images = 0
        self._t0 = time.perf_counter()

    def _write(self, trainer: Trainer, row: dict[str, Any]) -> None:
        with open(trainer.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._n += 1
        self._images += trainer.last_batch_images
        st = trainer.state
        if self._n >= trainer.config.log_every or st.iter_in_epoch == st.iters_per_epoch or trainer.stopping:
            dt = max(time.perf_counter() - self._t0, 1e-9)
            # epoch counted from 1 (the epoch the step is in), as the val rows count the epoch just done
            row = {"type": "train", "epoch": st.epoch + 1, "iter": st.iter_in_epoch, "step": st.global_step}
            row.update({k: v / self._n for k, v in self._sums.items()})
            row.update({"lr": trainer.current_lr, "images_per_s": self._images * trainer.world_size / dt, "time": time.time()})
            trainer.last_log = row
            self._write(trainer, row)
            self._sums, self._n, self._images, self._t0 = {}, 0, 0, time.perf_counter()

    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None:
        if val is not None:
            self._write(trainer, {"type": "val", "epoch": trainer.state.epoch, "step": trainer.state.global_step, **val, "time": time.time()})


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl as dicts; a torn last line (a killed writer) is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


class StatusHook(Hook):
    """status.json on every hook, and the same dict to an optional callback (the store)."""

    def __init__(self, callback: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.callback = callback
        self._t_start = time.perf_counter()
        self._step_start = 0

    def status(self, trainer: Trainer, status: str, error: str | None = None) -> dict[str, Any]:
        st = trainer.state
        done = st.global_step - self._step_start
        elapsed = time.perf_counter() - self._t_start
        remaining = max(st.total_steps - st.global_step, 0)
        eta = elapsed / done * remaining if done > 0 else None
        return {
            "status": status,
            "pid": os.getpid(),
            "device": str(trainer.device),
            "epoch": st.epoch,
            "epochs": trainer.config.epochs,
            "iter": st.iter_in_epoch,
            "iters_per_epoch": st.iters_per_epoch,
            "step": st.global_step,
            "total_steps": st.total_steps,
            "eta_s": eta,
            "loss": (trainer.last_log or {}).get("loss"),
            "best_ap": st.best_ap if st.best_ap >= 0 else None,
            "best_epoch": st.best_epoch if st.best_epoch >= 0 else None,
            "last_val": st.last_val,
            "resumed_from_step": st.resumed_from_step,
            "error": error,
            "updated_at": time.time(),
        }

    def _emit(self, trainer: Trainer, status: str, error: str | None = None) -> None:
        data = self.status(trainer, status, error)
        write_json_atomic(trainer.run_dir / "status.json", data)
        if self.callback is not None:
            self.callback(data)

    def before_train(self, trainer: Trainer) -> None:
        self._t_start, self._step_start = time.perf_counter(), trainer.state.global_step
        self._emit(trainer, "running")

    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None:
        self._emit(trainer, "running")

    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None:
        self._emit(trainer, "running")

    def after_train(self, trainer: Trainer, status: str, error: str | None) -> None:
        self._emit(trainer, status, error)
