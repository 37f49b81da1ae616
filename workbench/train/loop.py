"""The training loop: epochs of steps, validation, resume; everything around the steps is a hook.

What differs between tasks (instance masks, semantic label maps...) is the task's
(:mod:`workbench.train.tasks`): data, model, validation metrics, model file. The model's forward
returns a loss dict in training whatever the task, so the step below is every task's.

Checkpoints (``last.pt`` every epoch and every ``checkpoint_every_iters``, ``best.pt`` on a better
validation mask AP), early stopping, ``metrics.jsonl``, ``status.json`` and cancelling are the hooks
of :mod:`workbench.train.hooks`; DDP plumbing lives in :mod:`workbench.train.ddp`, the batch order in
:mod:`workbench.train.sampler`. At the end, rank 0 writes ``model.pt``: the single-file model (best
weights) that prediction loads.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.domain import WorkbenchError
from workbench.train import ddp
from workbench.train.checkpoint import load_checkpoint, save_atomic
from workbench.train.config import TrainConfig, load_config
from workbench.train.ema import ModelEMA
from workbench.train.hooks import (
    BestCheckpoint,
    CancelOnRequest,
    CancelRequest,
    EarlyStopping,
    Hook,
    MetricsHook,
    PeriodicCheckpoint,
    StatusHook,
    TrainingCancelled,
)
from workbench.train.model import unwrap
from workbench.train.tasks import get_task


class TrainingDiverged(WorkbenchError):
    """The loss became NaN or infinite; the message names the step and the loss parts."""


@dataclass
class TrainState:
    """Counters that a checkpoint carries; ``iter_in_epoch`` counts batches done in ``epoch``."""

    epoch: int = 0
    iter_in_epoch: int = 0
    global_step: int = 0
    iters_per_epoch: int = 0
    total_steps: int = 0
    best_ap: float = -1.0
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    last_val: dict[str, float] = field(default_factory=dict)
    resumed_from_step: int | None = None


def resolve_device(name: str) -> torch.device:
    """auto: CUDA, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def lr_factor(step: int, total: int, config: TrainConfig) -> float:
    """Linear warmup from ``warmup_factor`` (over :meth:`TrainConfig.warmup_steps`), then cosine to
    zero or step decay at milestones."""
    warm = 1.0
    warmup = config.warmup_steps(total)
    if step < warmup:
        alpha = step / max(warmup, 1)
        warm = config.warmup_factor * (1 - alpha) + alpha
    total = max(total, 1)
    if config.scheduler == "cosine":
        decay = 0.5 * (1 + math.cos(math.pi * min(step / total, 1.0)))
    else:
        decay = config.step_gamma ** sum(step >= m * total for m in config.step_milestones)
    return warm * decay


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _to_device(targets: Sequence[dict[str, torch.Tensor]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]



class Trainer:
    """Trains the run in ``run_dir`` (dataset/, config.json) and writes its outputs there."""

    def __init__(
        self,
        run_dir: Path,
        config: TrainConfig | None = None,
        *,
        hooks: Sequence[Hook] = (),
        resume: bool = False,
        progress_callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.config = config if config is not None else load_config(self.run_dir / "config.json")
        self.resume = resume
        self.state = TrainState()
        self.stopping = False
        self.last_log: dict[str, Any] | None = None
        self.last_batch_images = 0
        self.current_lr = 0.0
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.cancel_request = CancelRequest()
        self.status_hook = StatusHook(progress_callback)
        every_rank: list[Hook] = [CancelOnRequest(self.cancel_request), EarlyStopping(), BestCheckpoint(), PeriodicCheckpoint()]
        reporting: list[Hook] = [MetricsHook(), self.status_hook] if self.rank == 0 else []
        self.hooks: list[Hook] = every_rank + reporting + list(hooks)
        self.device = resolve_device(self.config.device)
        self.task = get_task(self.config.task)

    # ---------------------------------------------------------------------------------- setup
    def _setup_data(self) -> None:
        """The task's datasets and loaders (:meth:`workbench.train.tasks.Task.setup_data`)."""
        self.task.setup_data(self)

    def _setup_model(self) -> None:
        cfg = self.config
        model = self.task.build_model(self)  # sets self.model_args
        # the weights' average validates and is saved (rank 0 does both; the ranks hold the same weights)
        self.ema = ModelEMA(model, cfg.ema_decay, cfg.ema_tau) if cfg.ema and self.rank == 0 else None
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
        self.use_amp = bool(cfg.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.model = ddp.wrap(model, self.device, self.world_size)

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (the hooks' one collective)."""
        return ddp.any_rank(flag, self.device, self.world_size)

    # ----------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def checkpoint_payload(self) -> dict[str, Any]:
        """What last.pt and best.pt hold; ``ema`` (its weights and update count) when EMA is on."""
        payload = {
            "model": {k: v.detach().cpu() for k, v in unwrap(self.model).state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else {},
            "state": asdict(self.state),
            "torch_rng": torch.get_rng_state(),
            "config": self.config.to_dict(),
            "schema": self.schema.to_dict(),
            "model_args": self.model_args,
        }
        if self.ema is not None:
            payload["ema"] = self.ema.state_dict()
        return payload

    def save_checkpoint(self, name: str) -> None:
        """``checkpoints/<name>`` (atomic); rank 0 only, the ranks hold the same weights."""
        if self.rank == 0:
            save_atomic(self.checkpoint_payload(), self.checkpoint_dir / name)

    def _load_resume(self) -> None:
        path = self.checkpoint_dir / "last.pt"
        if not (self.resume and path.exists()):
            return
        ckpt = load_checkpoint(path)
        unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.use_amp and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        state = dict(ckpt["state"])
        self.state = TrainState(**state)
        self.state.resumed_from_step = self.state.global_step
        torch.set_rng_state(ckpt["torch_rng"])
        if self.ema is not None:
            if ckpt.get("ema"):
                self.ema.load_state_dict(ckpt["ema"])
            else:  # a run resumed with EMA switched on: the average starts from the loaded weights
                self.ema = ModelEMA(unwrap(self.model), self.config.ema_decay, self.config.ema_tau)

    # ------------------------------------------------------------------------------------ run
    def _call(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, name)(self, *args)

    def _set_lr(self) -> None:
        self.current_lr = self.config.base_lr * lr_factor(self.state.global_step, self.state.total_steps, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr

    def _step(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        cfg = self.config
        images = [im.to(self.device, non_blocking=True) for im in images]
        targets = _to_device(targets, self.device)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            loss_dict = self.model(images, targets)
        loss = sum(loss_dict.values())
        parts = {k: float(v.detach()) for k, v in loss_dict.items()}
        if not math.isfinite(float(loss.detach())):
            raise TrainingDiverged(
                f"loss is not finite at step {self.state.global_step} (epoch {self.state.epoch}): {parts}; "
                f"try a lower lr (now {self.current_lr:g}) or gradient clipping"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(unwrap(self.model))
        parts["loss"] = float(loss.detach())
        return parts

    def _validate(self) -> dict[str, float] | None:
        if self.rank != 0:
            return None
        model = self.ema.module if self.ema is not None else unwrap(self.model)
        val = self.task.validate(self, model)
        val["on"] = self.val_on  # type: ignore[assignment]
        return val

    def _run_epoch(self) -> None:
        """The steps of one epoch (from where a resumed run stopped); a stop ends it early."""
        cfg, st = self.config, self.state
        self.sampler.set_epoch(st.epoch, start_batch=st.iter_in_epoch)
        self.train_set.set_epoch(st.epoch, cfg.epochs)  # mosaic and copy-paste stop for the last close_mosaic
        for images, targets in self.train_loader:
            self._call("before_step")
            self._set_lr()
            self.last_batch_images = len(images)
            losses = self._step(images, targets)
            st.iter_in_epoch += 1
            st.global_step += 1
            if cfg.max_iters is not None and st.global_step >= cfg.max_iters:
                self.stopping = True
            self._call("after_step", losses)
            if self.stopping:
                break
        if st.iter_in_epoch >= st.iters_per_epoch or not self.stopping:
            st.epoch += 1
            st.iter_in_epoch = 0

    def _end_of_epoch(self) -> None:
        """Validate (every ``eval_every`` epochs and at the last) on rank 0, share it, run the hooks."""
        cfg, st = self.config, self.state
        val = None
        if st.epoch % cfg.eval_every == 0 or st.epoch >= cfg.epochs or self.stopping:
            val = ddp.from_rank0(self._validate(), self.device, self.world_size)
        if val is not None:
            st.last_val = {k: v for k, v in val.items() if isinstance(v, float)}
        self._call("after_epoch", val)

    def _write_model_file(self) -> None:
        if self.rank != 0:
            return
        best = self.checkpoint_dir / "best.pt"
        if best.exists():  # the weights that validated best: the average's when EMA was on
            ckpt = load_checkpoint(best)
            unwrap(self.model).load_state_dict(ckpt["ema"]["state_dict"] if ckpt.get("ema") else ckpt["model"])
        elif self.ema is not None:
            unwrap(self.model).load_state_dict(self.ema.module.state_dict())
        payload = self.task.model_file_payload(self)
        save_atomic(payload, self.run_dir / "model.pt")

    def train(self) -> str:
        """Run to the end; returns the final status (succeeded / cancelled / failed)."""
        cfg = self.config
        status, error = "failed", None
        in_step = False  # ranks stopped together at a step boundary (succeeded, or a cancel they agreed on)
        try:
            seed_everything(cfg.seed + self.rank)
            if self.rank == 0:
                ddp.clear_rank_errors(self.run_dir)
            self.device = ddp.setup(self.device, self.world_size, int(os.environ.get("LOCAL_RANK", "0")))
            self._setup_data()
            self._setup_model()
            self._load_resume()
            st = self.state
            st.iters_per_epoch = len(self.sampler)
            st.total_steps = st.iters_per_epoch * cfg.epochs
            if cfg.max_iters is not None:
                st.total_steps = min(st.total_steps, cfg.max_iters)
            self.model.train()
            self._call("before_train")
            while st.epoch < cfg.epochs and not self.stopping and st.global_step < st.total_steps:
                self._run_epoch()
                self._end_of_epoch()
            self._write_model_file()
            status, in_step = "succeeded", True
        except TrainingCancelled as exc:
            status, error, in_step = "cancelled", str(exc), True
        except Exception as exc:
            if self.cancel_request.requested:
                # SIGTERM to the whole process group (torchrun does that to every rank) also ends
                # the loader workers, whose death then surfaces here: the run was cancelled.
                status, error = "cancelled", f"cancelled by the user ({type(exc).__name__} while stopping)"
            else:
                status, error = "failed", ddp.first_error(self.run_dir, self.rank, self.world_size, f"{type(exc).__name__}: {exc}")
                raise
        finally:
            if self.rank == 0:
                try:
                    self._call("after_train", status, error)
                except Exception:  # a failing hook must not hide the run's own error
                    pass
            ddp.teardown(self.world_size, orderly=in_step)
        return status
