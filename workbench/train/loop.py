"""The training loop: epochs of steps with hooks (detectron2 style), validation, checkpoints, resume.

Progress reporting, metrics files, cancellation and the store callback all live in hooks, so the
loop itself only trains. Files written into the run folder (rank 0 only):

* ``metrics.jsonl``: one JSON line per log step (``type: train``) and per validation (``type: val``);
  ``epoch`` counts from 1 in both (status.json's ``epoch`` counts finished epochs)
* ``status.json``: status, epoch/iter/total, ETA, error; replaced atomically on every hook
* ``checkpoints/last.pt`` every epoch (and every ``checkpoint_every_iters``), ``checkpoints/best.pt``
  on a better validation mask AP; both atomic
* ``model.pt`` at the end: the single-file model (best weights) that prediction loads
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.augment import Augmenter
from workbench.domain import WorkbenchError
from workbench.train.checkpoint import load_checkpoint, save_atomic
from workbench.train.config import TrainConfig, load_config, write_json_atomic
from workbench.train.dataset import (
    GroupedBatchSampler,
    MaskRCNNDataset,
    TrainingSchema,
    load_coco_split,
    make_loader,
    schema_from_categories,
)
from workbench.train.model import build_model, model_args, model_file_payload, unwrap

# Collectives wait this long (other ranks wait out rank 0's validation); NCCL's default is 10 min.
DIST_TIMEOUT_S = 30 * 60
# How long rank 0, failing, waits for another rank's error file (the likelier first cause).
RANK_ERROR_WAIT_S = 5.0

LOSS_KEYS = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg", "loss_keypoint")


class TrainingCancelled(WorkbenchError):
    """Raised at a step boundary when the run was asked to stop (cancel file or SIGTERM)."""


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
    """Linear warmup from ``warmup_factor``, then cosine to zero or step decay at milestones."""
    warm = 1.0
    if step < config.warmup_iters:
        alpha = step / max(config.warmup_iters, 1)
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


class Hook:
    """Override what you need; ``trainer.state`` holds the counters, ``trainer.run_dir`` the folder."""

    def before_train(self, trainer: Trainer) -> None: ...
    def before_step(self, trainer: Trainer) -> None: ...
    def after_step(self, trainer: Trainer, losses: dict[str, float]) -> None: ...
    def after_epoch(self, trainer: Trainer, val: dict[str, float] | None) -> None: ...
    def after_train(self, trainer: Trainer, status: str, error: str | None) -> None: ...


class MetricsHook(Hook):
    """Average losses over ``log_every`` steps into metrics.jsonl, with lr and images/s."""

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


class CancelRequest:
    """A stop asked for by SIGTERM (:meth:`request`) or a ``RUN_DIR/cancel`` file.

    The loop asks :meth:`wanted` before every step and, under DDP, stops only when the ranks agree
    (any rank asked), so every process leaves at the same step instead of one waiting forever for
    the others' gradients.
    """

    def __init__(self) -> None:
        self.requested = False

    def request(self) -> None:
        self.requested = True

    def wanted(self, run_dir: Path) -> bool:
        return self.requested or (run_dir / "cancel").exists()


def _masks_to_results(output: dict[str, torch.Tensor], image_id: int, label_to_cat: dict[int, int]) -> list[dict[str, Any]]:
    from workbench.geometry.rle import mask_to_rle

    boxes = output["boxes"].cpu().numpy()
    scores = output["scores"].cpu().numpy()
    labels = output["labels"].cpu().numpy()
    masks = (output["masks"][:, 0] > 0.5).cpu().numpy() if "masks" in output else None
    results = []
    for i in range(len(scores)):
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        row: dict[str, Any] = {
            "image_id": int(image_id),
            "category_id": int(label_to_cat[int(labels[i])]),
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "score": float(scores[i]),
        }
        if masks is not None:
            row["segmentation"] = mask_to_rle(masks[i]).to_coco()
        results.append(row)
    return results


@torch.no_grad()
def evaluate_model(
    model: torch.nn.Module,
    loader: Iterable[tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]],
    gt: dict[str, Any],
    schema: TrainingSchema,
    device: torch.device,
) -> dict[str, float]:
    """Box and mask AP of the model on a COCO ground-truth dict (our evaluate_coco, COCOeval's numbers)."""
    from workbench.evaluate.coco_eval import evaluate_coco

    cat_by_name = {c["name"]: int(c["id"]) for c in gt.get("categories", [])}
    label_to_cat = {schema.label_of(n): cat_by_name[n] for n in schema.class_names if n in cat_by_name}
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    try:
        for images, targets in loader:
            outputs = model([im.to(device) for im in images])
            for out, tgt in zip(outputs, targets, strict=True):
                keep = torch.tensor([int(lbl) in label_to_cat for lbl in out["labels"].tolist()], dtype=torch.bool)
                out = {k: v[keep] for k, v in out.items()} if len(keep) else out
                results.extend(_masks_to_results(out, int(tgt["image_id"]), label_to_cat))
    finally:
        model.train(was_training)
    if not gt.get("annotations"):
        return {"bbox_ap": 0.0, "bbox_ap50": 0.0, "segm_ap": 0.0, "segm_ap50": 0.0, "num_detections": len(results)}
    res = evaluate_coco(gt, results, iou_types=("bbox", "segm"))
    out: dict[str, float] = {"num_detections": float(len(results))}
    for t in ("bbox", "segm"):
        stats = res.types[t].stats if t in res.types else {}
        out[f"{t}_ap"] = max(float(stats.get("AP", 0.0)), 0.0)
        out[f"{t}_ap50"] = max(float(stats.get("AP50", 0.0)), 0.0)
        out[f"{t}_ap75"] = max(float(stats.get("AP75", 0.0)), 0.0)
    return out


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
        own: list[Hook] = [MetricsHook(), self.status_hook] if self.rank == 0 else []
        self.hooks: list[Hook] = own + list(hooks)
        self.device = resolve_device(self.config.device)

    # ---------------------------------------------------------------------------------- setup
    def _setup_distributed(self) -> None:
        """DDP under torchrun (WORLD_SIZE > 1): one process per GPU (NCCL), or per CPU process (gloo).

        Only rank 0 validates, checkpoints and reports; the others wait for its validation in
        :meth:`_share_validation`, hence the long collective timeout.
        """
        if self.world_size <= 1:
            return
        import datetime

        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.device.type == "cuda":
            count = torch.cuda.device_count()
            if local_rank >= count:
                raise WorkbenchError(
                    f"{self.world_size} GPUs asked for (--gpus), but this machine has {count} CUDA device(s)"
                )
            torch.cuda.set_device(local_rank)
            self.device = torch.device("cuda", local_rank)
        if not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if self.device.type == "cuda" else "gloo",
                timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S),
            )

    def _any_rank(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (one all-reduce of a single number)."""
        if self.world_size <= 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def _share_validation(self, val: dict[str, Any] | None) -> dict[str, Any] | None:
        """Rank 0's validation result on every rank, so early stopping and best-AP bookkeeping agree."""
        if self.world_size <= 1:
            return val
        import torch.distributed as dist

        box = [val]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def _setup_data(self) -> None:
        cfg = self.config
        data_dir = self.run_dir / "dataset"
        images_dir = data_dir / "images" if (data_dir / "images").is_dir() else data_dir
        train_ds = load_coco_split(data_dir / "coco_train.json", images_dir)
        val_path = data_dir / "coco_val.json"
        val_ds = load_coco_split(val_path, images_dir) if val_path.exists() else None
        self.schema = schema_from_categories(train_ds.categories)
        if not train_ds.items:
            raise WorkbenchError(f"{data_dir / 'coco_train.json'}: no training images")
        augmenter = Augmenter(cfg.augmentation, min_area_px=cfg.min_instance_area)
        self.train_set = MaskRCNNDataset(train_ds.items, self.schema, augmenter, seed=cfg.seed)
        self.sampler = GroupedBatchSampler(
            self.train_set.aspect_ratios(),
            cfg.batch_size,
            seed=cfg.seed,
            group=cfg.aspect_ratio_grouping,
            rank=self.rank,
            world_size=self.world_size,
        )
        pin = self.device.type == "cuda"
        self.train_loader = make_loader(self.train_set, self.sampler, num_workers=cfg.num_workers, pin_memory=pin)
        # Validate on val when there is one, else on the (unaugmented) training images.
        if val_ds is not None and val_ds.items:
            self.val_gt = json.loads(val_path.read_text())
            val_items, self.val_on = val_ds.items, "val"
        else:
            self.val_gt = json.loads((data_dir / "coco_train.json").read_text())
            val_items, self.val_on = train_ds.items, "train"
        self.val_set = MaskRCNNDataset(val_items, self.schema, None, seed=cfg.seed)
        self.val_loader = make_loader(
            self.val_set, None, num_workers=min(cfg.num_workers, 2), pin_memory=pin, batch_size=cfg.batch_size
        )

    def _setup_model(self) -> None:
        cfg = self.config
        self.model_args = model_args(cfg, self.schema.num_classes, self.schema.num_keypoints)
        model = build_model(
            cfg.backbone,
            num_classes=self.schema.num_classes,
            num_keypoints=self.schema.num_keypoints,
            weights=cfg.weights,
            min_size=cfg.min_size,
            max_size=cfg.max_size,
            trainable_backbone_layers=cfg.trainable_backbone_layers,
        ).to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.base_lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.base_lr, weight_decay=cfg.weight_decay)
        self.use_amp = bool(cfg.amp and self.device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.model = model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(model, device_ids=ids)

    # ----------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
            "model": {k: v.detach().cpu() for k, v in unwrap(self.model).state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.use_amp else {},
            "state": asdict(self.state),
            "torch_rng": torch.get_rng_state(),
            "config": self.config.to_dict(),
            "schema": self.schema.to_dict(),
            "model_args": self.model_args,
        }

    def save_last(self) -> None:
        if self.rank == 0:
            save_atomic(self.checkpoint_payload(), self.checkpoint_dir / "last.pt")

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
        parts["loss"] = float(loss.detach())
        return parts

    def _validate(self) -> dict[str, float] | None:
        if self.rank != 0:
            return None
        val = evaluate_model(unwrap(self.model), self.val_loader, self.val_gt, self.schema, self.device)
        val["on"] = self.val_on  # type: ignore[assignment]
        return val

    def _end_of_epoch(self) -> None:
        cfg, st = self.config, self.state
        val = None
        last_epoch = st.epoch >= cfg.epochs or self.stopping
        if st.epoch % cfg.eval_every == 0 or last_epoch:
            val = self._share_validation(self._validate())
        if val is not None:
            st.last_val = {k: v for k, v in val.items() if isinstance(v, float)}
            ap = float(val.get("segm_ap", 0.0))
            if ap > st.best_ap:
                st.best_ap, st.best_epoch, st.epochs_without_improvement = ap, st.epoch, 0
                if self.rank == 0:
                    save_atomic(self.checkpoint_payload(), self.checkpoint_dir / "best.pt")
            elif st.best_ap > 0 or 2 * st.epoch >= cfg.epochs:
                # A model trained from scratch sits at AP 0 for its first epochs: patience counts once
                # it has learned something, or from half-way (a run that learns nothing still ends).
                st.epochs_without_improvement += 1
            patience = cfg.early_stopping_patience
            if patience is not None and st.epochs_without_improvement >= patience:
                self.stopping = True
        self.save_last()
        self._call("after_epoch", val)

    def _write_model_file(self) -> None:
        if self.rank != 0:
            return
        best = self.checkpoint_dir / "best.pt"
        state = load_checkpoint(best)["model"] if best.exists() else None
        if state is not None:
            unwrap(self.model).load_state_dict(state)
        payload = model_file_payload(self.model, self.model_args, self.config.to_dict(), self.schema.to_dict())
        save_atomic(payload, self.run_dir / "model.pt")

    def train(self) -> str:
        """Run to the end; returns the final status (succeeded / cancelled / failed)."""
        cfg = self.config
        status, error = "failed", None
        in_step = False  # ranks stopped together at a step boundary (succeeded, or a cancel they agreed on)
        try:
            seed_everything(cfg.seed + self.rank)
            if self.rank == 0:  # errors of an earlier attempt; ranks cannot fail before joining rank 0
                for stale in self.run_dir.glob("rank*.error"):
                    stale.unlink(missing_ok=True)
            self._setup_distributed()
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
                self.sampler.set_epoch(st.epoch, start_batch=st.iter_in_epoch)
                for images, targets in self.train_loader:
                    if self._any_rank(self.cancel_request.wanted(self.run_dir)):
                        raise TrainingCancelled("cancelled by the user")
                    self._call("before_step")
                    self._set_lr()
                    self.last_batch_images = len(images)
                    losses = self._step(images, targets)
                    st.iter_in_epoch += 1
                    st.global_step += 1
                    if cfg.max_iters is not None and st.global_step >= cfg.max_iters:
                        self.stopping = True
                    self._call("after_step", losses)
                    every = cfg.checkpoint_every_iters
                    if every and st.global_step % every == 0 and st.iter_in_epoch < st.iters_per_epoch:
                        self.save_last()
                    if self.stopping:
                        break
                if st.iter_in_epoch >= st.iters_per_epoch or not self.stopping:
                    st.epoch += 1
                    st.iter_in_epoch = 0
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
                status, error = "failed", self._rank_error(f"{type(exc).__name__}: {exc}")
                raise
        finally:
            if self.rank == 0:
                try:
                    self._call("after_train", status, error)
                except Exception:  # a failing hook must not hide the run's own error
                    pass
            self._teardown_distributed(orderly=in_step)
        return status

    def _rank_error(self, error: str) -> str:
        """Under DDP the first failure is on some rank; the others then fail on a broken collective.

        Ranks other than 0 leave their error in ``RUN_DIR/rank<R>.error``; rank 0, reporting for the
        run, names that cause first (waiting a moment for it), so the UI shows "rank 1: MemoryError"
        rather than rank 0's "connection closed by peer".
        """
        if self.world_size <= 1:
            return error
        if self.rank != 0:
            write_json_atomic(self.run_dir / f"rank{self.rank}.error", {"rank": self.rank, "error": error})
            return error
        deadline = time.monotonic() + RANK_ERROR_WAIT_S
        while True:
            found = sorted(self.run_dir.glob("rank*.error"))
            if found or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        for path in found:
            try:
                other = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            return f"rank {other['rank']}: {other['error']} (then rank 0: {error})"
        return error

    def _teardown_distributed(self, *, orderly: bool) -> None:
        """Leave the process group together: ranks that ended in step wait for each other first, so
        none tears its connections down under a peer still using them. Not after a failure: a peer
        may be inside a collective that a barrier would be matched against."""
        if self.world_size <= 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if orderly:
            try:
                dist.barrier()
            except Exception:  # a peer already gone: nothing left to wait for
                pass
        dist.destroy_process_group()


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
