"""The semantic task: per-pixel classes learned from the label maps (see :mod:`.semantic_data`),
validated on mean IoU, saved as ``workbench-semantic/1`` model files that :func:`load_semantic_model`
rebuilds and :class:`SemanticPredictor` runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.augment import Augmenter
from workbench.domain import WorkbenchError
from workbench.evaluate.semantic import confusion_metrics
from workbench.train.checkpoint import read_torch_file, unreadable
from workbench.train.config import TrainConfig
from workbench.train.dataset import TrainingSchema, load_run_splits, make_loader, schema_from_categories
from workbench.train.model import unwrap
from workbench.train.predict import image_batches
from workbench.train.sampler import GroupedBatchSampler
from workbench.train.tasks import TASKS
from workbench.train.tasks.semantic_data import SemanticDataset, resize_image
from workbench.train.tasks.semantic_models import SemanticNet, build_semantic_model, resolve_encoder

if TYPE_CHECKING:
    from workbench.train.loop import Trainer

MODEL_FORMAT = "workbench-semantic/1"
DEFAULT_IMAGE_SIZE = 512
PROB_THRESHOLD = 0.5
"""Binary loss: a pixel is a class where its probability is at least this (the most probable wins)."""


def image_size_of(config: TrainConfig) -> int:
    return int(config.image_size or DEFAULT_IMAGE_SIZE)


def labels_from_logits(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """B x K x H x W logits -> B x H x W index map (0 background, c + 1 class c)."""
    if mode == "ce":
        return logits.argmax(dim=1)
    probs = torch.sigmoid(logits.float())
    best, arg = probs.max(dim=1)
    return torch.where(best >= PROB_THRESHOLD, arg + 1, torch.zeros_like(arg))


def confusion_torch(gt: torch.Tensor, pred: torch.Tensor, num_labels: int) -> torch.Tensor:
    """:func:`workbench.evaluate.semantic.confusion_matrix` on the device (ignore 255 left out)."""
    keep = gt != 255
    idx = gt[keep] * num_labels + pred[keep]
    return torch.bincount(idx, minlength=num_labels * num_labels).reshape(num_labels, num_labels)


def confidence_from_logits(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """B x H x W: the probability of the label each pixel got (bce: of its class, or of no class)."""
    if mode == "ce":
        return torch.softmax(logits.float(), dim=1).max(dim=1).values
    best = torch.sigmoid(logits.float()).max(dim=1).values
    return torch.where(best >= PROB_THRESHOLD, best, 1 - best)


def _scaled_logits(model: nn.Module, images: Sequence[torch.Tensor], sizes: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """Each image's logits at its own (h, w), scaled back bilinearly (1 x K x h x w)."""
    logits = model(list(images))
    return [F.interpolate(logits[i : i + 1].float(), size=hw, mode="bilinear", align_corners=False)
            for i, hw in enumerate(sizes)]


def _predict_labels(model: nn.Module, images: Sequence[torch.Tensor], sizes: Sequence[tuple[int, int]], mode: str) -> list[torch.Tensor]:
    """Each image's index map at its own (h, w)."""
    return [labels_from_logits(lg, mode)[0] for lg in _scaled_logits(model, images, sizes)]


def val_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat float figures of :func:`confusion_metrics` for metrics.jsonl and the status."""
    out = {k: float(metrics[k] or 0.0) for k in ("mean_iou", "mean_iou_with_background", "pixel_accuracy",
                                                  "mean_class_accuracy", "fw_iou")}
    for name, row in metrics["per_class"].items():
        if row["iou"] is not None:  # a class absent from both sides has none
            out[f"iou/{name}"] = float(row["iou"])
    return out


class SemanticTask:
    name = "semantic"
    primary_metric = TASKS["semantic"].primary_metric

    def check_config(self, config: TrainConfig) -> list[str]:
        return []

    def setup_data(self, trainer: Trainer) -> None:
        cfg = trainer.config
        data_dir = trainer.run_dir / "dataset"
        train_ds, val_ds = load_run_splits(data_dir)
        trainer.schema = schema_from_categories(train_ds.categories)
        if not train_ds.items:
            raise WorkbenchError(f"{data_dir / 'coco_train.json'}: no training images")
        size = image_size_of(cfg)
        augmenter = Augmenter(cfg.augmentation)
        trainer.train_set = SemanticDataset(train_ds.items, train_ds.categories, size, augmenter, seed=cfg.seed)
        trainer.sampler = GroupedBatchSampler(
            trainer.train_set.aspect_ratios(), cfg.batch_size, seed=cfg.seed, group=False,
            rank=trainer.rank, world_size=trainer.world_size, min_batch=min(2, cfg.batch_size),
        )
        pin = trainer.device.type == "cuda"
        trainer.train_loader = make_loader(trainer.train_set, trainer.sampler, num_workers=cfg.num_workers, pin_memory=pin)
        if val_ds is not None and val_ds.items:
            val_items, cats, trainer.val_on = val_ds.items, val_ds.categories, "val"
        else:
            val_items, cats, trainer.val_on = train_ds.items, train_ds.categories, "train"
        trainer.val_set = SemanticDataset(val_items, cats, size, None, seed=cfg.seed, full_index=True)
        trainer.val_loader = make_loader(
            trainer.val_set, None, num_workers=min(cfg.num_workers, 2), pin_memory=pin, batch_size=cfg.batch_size
        )

    def build_model(self, trainer: Trainer) -> nn.Module:
        cfg = trainer.config
        trainer.model_args = model_args(cfg, len(trainer.schema.class_names))
        return build_semantic_model(
            trainer.model_args["arch"], num_classes=len(trainer.schema.class_names), encoder=cfg.encoder,
            weights=cfg.weights, mode=cfg.seg_loss, class_reduction=cfg.bce_class_reduction,
            dice_weight=cfg.dice_weight, aux_weight=cfg.aux_loss_weight,
        ).to(trainer.device)

    @torch.no_grad()
    def validate(self, trainer: Trainer, model: nn.Module) -> dict[str, float]:
        n = len(trainer.schema.class_names) + 1
        cm = torch.zeros((n, n), dtype=torch.int64, device=trainer.device)
        was_training = model.training
        model.eval()
        try:
            for images, targets in trainer.val_loader:
                gts = [t["full_index"].to(trainer.device) for t in targets]
                preds = _predict_labels(model, [im.to(trainer.device) for im in images],
                                        [tuple(g.shape) for g in gts], unwrap(model).mode)
                for g, p in zip(gts, preds, strict=True):
                    cm += confusion_torch(g, p, n)
        finally:
            model.train(was_training)
        return val_metrics(confusion_metrics(cm.cpu().numpy(), trainer.schema.class_names))

    def model_file_payload(self, trainer: Trainer) -> dict[str, Any]:
        schema = trainer.schema.to_dict()
        return {
            "format": MODEL_FORMAT,
            "task": self.name,
            "state_dict": {k: v.detach().cpu() for k, v in unwrap(trainer.model).state_dict().items()},
            "model_args": dict(trainer.model_args),
            "config": trainer.config.to_dict(),
            "class_names": list(schema["class_names"]),
            "schema": schema,
        }


def model_args(config: TrainConfig, num_classes: int) -> dict[str, Any]:
    """What rebuilds the network at load time (no weights): task, arch, encoder, loss, size."""
    arch = config.arch or TASKS["semantic"].archs[0]
    return {
        "task": "semantic",
        "arch": arch,
        "encoder": resolve_encoder(arch, config.encoder),
        "num_classes": int(num_classes),
        "mode": config.seg_loss,
        "aux": arch in ("fcn", "deeplabv3") and config.aux_loss_weight > 0,
        "image_size": image_size_of(config),
    }


def load_semantic_model(path: Path, device: str | torch.device = "cpu") -> tuple[SemanticNet, dict[str, Any]]:
    """A run's semantic model.pt for prediction: (model in eval mode, payload without the weights)."""
    path = Path(path)
    payload = read_torch_file(path)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise unreadable(path, f"not a workbench model file of format {MODEL_FORMAT}")
    try:
        args = payload["model_args"]
        model = build_semantic_model(args["arch"], num_classes=args["num_classes"], encoder=args["encoder"],
                                     weights="none", mode=args["mode"], aux_weight=0.5 if args.get("aux") else 0.0)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise unreadable(path, f"its weights do not fit the model it describes ({type(exc).__name__})") from None
    model.to(device).eval()
    return model, {k: v for k, v in payload.items() if k != "state_dict"}


class SemanticPredictor:
    """A loaded semantic model; :meth:`predict` turns H x W x 3 uint8 arrays into index maps."""

    def __init__(self, model_path: Path | str, *, device: str = "cpu") -> None:
        self.model_path = Path(model_path)
        self.device = torch.device(device)
        self.model, self.info = load_semantic_model(self.model_path, self.device)
        self.schema = TrainingSchema.from_dict(self.info["schema"])
        self.size = int(self.info["model_args"]["image_size"])

    def predict(self, images: Iterable[np.ndarray], *, batch_size: int = 2) -> list[np.ndarray]:
        """H x W uint8 index maps (0 background, class c -> c + 1, the model's class order), in order."""
        return [labels for labels, _ in self.predict_with_confidence(images, batch_size=batch_size)]

    @torch.no_grad()
    def predict_with_confidence(self, images: Iterable[np.ndarray], *, batch_size: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
        """(index map, H x W float32 probability of each pixel's label) per image, in order."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for batch in image_batches(images, batch_size):
            tensors = [torch.from_numpy(resize_image(a, self.size)).permute(2, 0, 1).float().div(255).to(self.device)
                       for a in batch]
            for lg in _scaled_logits(self.model, tensors, [a.shape[:2] for a in batch]):
                labels = labels_from_logits(lg, self.model.mode)[0].to(torch.uint8).cpu().numpy()
                out.append((labels, confidence_from_logits(lg, self.model.mode)[0].cpu().numpy()))
        return out


TASK = SemanticTask()
