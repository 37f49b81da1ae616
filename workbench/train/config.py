"""TrainConfig: every knob of a run, as plain JSON so that a run folder reproduces the run."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.domain import ValidationError
from workbench.train.detector import DetectorConfig
from workbench.train.heatmap.config import HeatmapConfig
from workbench.utils.atomic import atomic_write

BACKBONES = ("resnet50_fpn_v2", "resnet50_fpn", "mobilenet_v3_large_fpn", "tiny")
WEIGHTS = ("coco", "imagenet", "none")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "step")
DEVICES = ("auto", "cpu", "cuda", "mps")
LR_SCALINGS = ("auto", "linear", "sqrt", "none")
DEFAULT_LR = {"sgd": 0.02, "adamw": 1e-4}
"""The automatic lr at ``lr_reference_batch`` images per step (SGD: torchvision's detection reference)."""
HEAD_NORMS = ("none", "gn")
EVAL_SCORE_THRESH = 0.001
EVAL_DETECTIONS_PER_IMG = 100
"""COCO practice for AP: detections down to score 0.001, 100 per image (COCOeval's maxDets)."""


class ConfigError(ValidationError):
    """A training configuration that cannot run (bad value, unknown key)."""


@dataclass(slots=True)
class TrainConfig:
    backbone: str = "resnet50_fpn_v2"
    weights: str = "coco"
    """coco | imagenet | none | a path to a local checkpoint (loaded with weights_only=True)."""
    epochs: int = 12
    batch_size: int = 2
    optimizer: str = "sgd"
    lr: float | None = None
    """None: 0.02 * batch/16 for SGD (torchvision's reference), 1e-4 for AdamW (see :attr:`base_lr`)."""
    lr_scaling: str = "auto"
    """How the lr follows the batch size: linear (lr x batch/ref, Goyal et al. 2017, for SGD), sqrt
    (lr x sqrt(batch/ref), the rule for Adam-type optimizers, Malladi et al. 2022), none; auto: linear
    for SGD's automatic lr, none otherwise (an explicit ``lr`` is used as given)."""
    lr_reference_batch: int = 16
    """The batch size (images per step) at which ``lr`` (or the automatic lr) holds before scaling."""
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    step_milestones: tuple[float, ...] = (0.67, 0.89)
    """Fractions of all iterations at which the step schedule multiplies the lr by ``step_gamma``."""
    step_gamma: float = 0.1
    warmup_iters: int = 200
    warmup_factor: float = 0.001
    warmup_fraction: float | None = None
    """Cap the warmup at this fraction of the run's steps (0.1: a 100-step run warms up for 10, not
    ``warmup_iters``); None: ``warmup_iters`` as given."""
    grad_clip_norm: float | None = 10.0
    amp: bool = True
    """Mixed precision; only ever used on CUDA."""
    device: str = "auto"
    num_workers: int = 2
    aspect_ratio_grouping: bool = True
    augmentation: str | list[dict[str, Any]] = "light"
    min_instance_area: float = 4.0
    mosaic: float = 0.0
    """Probability that a training image is a mosaic of four (workbench.augment_mix); 0: off."""
    copy_paste: float = 0.0
    """Probability that another image's instances are pasted onto a training image; 0: off."""
    close_mosaic: int = 0
    """The last this-many epochs train without mosaic and copy-paste (Ultralytics' close_mosaic)."""
    min_size: int | None = None
    """Shorter side the model resizes to; None: the backbone's default (800, tiny: 160)."""
    max_size: int | None = None
    trainable_backbone_layers: int | None = None
    rpn_batch_size_per_image: int | None = None
    """Anchors sampled per image for the RPN loss; None: torchvision's 256."""
    rpn_positive_fraction: float | None = None
    """Share of positives among them; None: 0.5."""
    box_batch_size_per_image: int | None = None
    """RoIs sampled per image for the box/mask heads; None: the backbone's (tiny 128, others 512).
    Fewer fit small sets with few objects per image (Detectron2's few-shot configs use 128-256)."""
    box_positive_fraction: float | None = None
    """Share of positive RoIs among them; None: 0.25."""
    rpn_post_nms_top_n_train: int | None = None
    """Proposals kept per image for the heads in training; None: the backbone's (tiny 300, others 2000)."""
    head_norm: str = "none"
    """gn: GroupNorm in the tiny backbone's box and mask heads (4 conv box head, as Detectron2's
    GN configs); none: the heads as today. Only the tiny backbone; its backbone is GroupNorm already."""
    ema: bool = False
    """Keep an exponential moving average of the weights (Ultralytics' ModelEMA); validation,
    best.pt and model.pt then use the averaged weights."""
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0
    """EMA decay at update u: ema_decay * (1 - exp(-u / ema_tau)), so it ramps up from 0."""
    eval_score_thresh: float = EVAL_SCORE_THRESH
    """Lowest detection score kept when computing AP (COCO practice; torchvision's 0.05 costs recall)."""
    eval_detections_per_img: int = EVAL_DETECTIONS_PER_IMG
    """Detections per image kept for AP (COCO's maxDets)."""
    seed: int = 0
    early_stopping_patience: int | None = 5
    """Stop after this many validated epochs without a better mask AP; None: never. Counted once the
    mask AP is above 0 or half of the epochs are done (from scratch, AP stays 0 for a while)."""
    eval_every: int = 1
    log_every: int = 10
    checkpoint_every_iters: int | None = None
    """Also write last.pt every N iterations (mid-epoch resume); None: at epoch ends only."""
    max_iters: int | None = None
    """Stop after this many iterations in all (smoke runs, benchmarks)."""
    gpus: int = 1
    task: str = "instance"
    """What the run learns: instance (Mask R-CNN), semantic (per-pixel label maps); the registry
    :data:`workbench.train.tasks.TASKS` lists them. The settings above are Mask R-CNN's."""
    arch: str | None = None
    """The task's architecture (semantic: unet, fcn, deeplabv3, lraspp, pspnet); None: the task's first."""
    encoder: str | None = None
    """Semantic backbone: fcn resnet50|resnet101, deeplabv3 also mobilenet_v3_large, lraspp
    mobilenet_v3_large, unet/pspnet any segmentation-models-pytorch encoder (resnet18/34/50,
    tu-<timm name>); None: the arch's default (resnet50, lraspp mobilenet_v3_large, unet resnet34)."""
    image_size: int | None = None
    """Semantic: images train and predict resized to image_size x image_size (a multiple of 32; the
    predicted maps are scaled back to each image's own size); None: 512."""
    seg_loss: str = "bce"
    """Semantic: bce (a binary log loss per class map, summed over the classes and averaged over the
    pixels: classes may overlap) | ce (softmax cross-entropy over the index map: exclusive classes).
    Ignore pixels (index 255) count in neither."""
    bce_class_reduction: str = "sum"
    """bce over the classes: sum (the lecture's loss) | mean (divided by the number of classes)."""
    dice_weight: float = 0.0
    """Semantic: add this times the soft Dice loss (per class, over the batch's non-ignored pixels); 0: off."""
    aux_loss_weight: float = 0.5
    """Semantic fcn/deeplabv3: weight of the auxiliary head's loss (torchvision's reference: 0.5); 0: no aux head."""
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    """The designed Mask R-CNN: anchors, RoI pooling, head sizes, NMS (:mod:`workbench.train.detector`);
    a JSON object of its settings in a config file."""
    heatmap: HeatmapConfig = field(default_factory=HeatmapConfig)
    """Task keypoints-heatmap: crop size, Gaussian sigma, Hourglass / U-Net sizes, augmentation, flip
    test, decoding (:mod:`workbench.train.heatmap.config`); a JSON object of its settings."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.step_milestones = tuple(float(m) for m in self.step_milestones)
        problems: list[str] = []
        try:
            self.detector = DetectorConfig.from_dict(self.detector)
            problems += self.detector.problems(self.backbone)
        except ValidationError as exc:
            problems.append(str(exc))
        try:
            self.heatmap = HeatmapConfig.from_dict(self.heatmap)
        except ValidationError as exc:
            problems.append(str(exc))
        if self.backbone not in BACKBONES:
            problems.append(f"backbone {self.backbone!r} is not one of {list(BACKBONES)}")
        if self.weights not in WEIGHTS and not (self.weights.endswith((".pt", ".pth")) or os.sep in self.weights):
            problems.append(f"weights {self.weights!r} is not one of {list(WEIGHTS)} nor a checkpoint path (.pt/.pth)")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {list(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler {self.scheduler!r} is not one of {list(SCHEDULERS)}")
        if self.head_norm != "none" and self.backbone != "tiny":
            problems.append(f"head_norm {self.head_norm!r} is for the tiny backbone, not {self.backbone}")
        if self.lr_scaling not in LR_SCALINGS:
            problems.append(f"lr_scaling {self.lr_scaling!r} is not one of {list(LR_SCALINGS)}")
        if self.head_norm not in HEAD_NORMS:
            problems.append(f"head_norm {self.head_norm!r} is not one of {list(HEAD_NORMS)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            problems.append(f"device {self.device!r} is not one of {list(DEVICES)} (or cuda:N)")
        for name in ("epochs", "batch_size", "eval_every", "log_every", "gpus", "lr_reference_batch",
                     "eval_detections_per_img"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("mosaic", "copy_paste"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        for name in ("warmup_iters", "num_workers", "close_mosaic"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        for name in ("rpn_batch_size_per_image", "box_batch_size_per_image", "rpn_post_nms_top_n_train"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1 or null, got {getattr(self, name)}")
        for name in ("rpn_positive_fraction", "box_positive_fraction", "warmup_fraction"):
            v = getattr(self, name)
            if v is not None and not 0 < v <= 1:
                problems.append(f"{name} is a fraction in (0, 1] or null, got {v}")
        if not 0 <= self.ema_decay < 1:
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not self.ema_tau > 0:
            problems.append(f"ema_tau must be positive, got {self.ema_tau}")
        if not 0 <= self.eval_score_thresh < 1:
            problems.append(f"eval_score_thresh must be in [0, 1), got {self.eval_score_thresh}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            problems.append(f"grad_clip_norm must be positive or null, got {self.grad_clip_norm}")
        if not all(0 < m < 1 for m in self.step_milestones):
            problems.append(f"step_milestones are fractions of the run in (0, 1), got {list(self.step_milestones)}")
        from workbench.train.tasks import task_config_problems

        problems += task_config_problems(self)
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    @property
    def scaling_rule(self) -> str:
        """The lr scaling rule in force: ``lr_scaling`` with auto resolved (see the field)."""
        if self.lr_scaling != "auto":
            return self.lr_scaling
        return "linear" if self.lr is None and self.optimizer == "sgd" else "none"

    @property
    def base_lr(self) -> float:
        """The peak lr: ``lr`` (or the optimizer's automatic lr) at ``lr_reference_batch`` images per
        step, scaled to ``batch_size`` by :attr:`scaling_rule`. The defaults give today's values:
        0.02 * batch/16 for SGD, 1e-4 for AdamW, an explicit lr as given."""
        lr = float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]
        ratio = self.batch_size / self.lr_reference_batch
        rule = self.scaling_rule
        return lr * ratio if rule == "linear" else lr * math.sqrt(ratio) if rule == "sqrt" else lr

    def warmup_steps(self, total_steps: int) -> int:
        """The warmup length of a run of ``total_steps``: ``warmup_iters``, capped by ``warmup_fraction``."""
        if self.warmup_fraction is None:
            return int(self.warmup_iters)
        return min(int(self.warmup_iters), math.ceil(self.warmup_fraction * max(total_steps, 0)))

    def detector_kwargs(self) -> dict[str, Any]:
        """The sampling settings that are set, as torchvision's MaskRCNN keyword arguments, and the designed
        detector (``detector``, which :func:`workbench.train.model.build_model` takes out of them)."""
        names = ("rpn_batch_size_per_image", "rpn_positive_fraction", "box_batch_size_per_image",
                 "box_positive_fraction", "rpn_post_nms_top_n_train")
        return {**{n: getattr(self, n) for n in names if getattr(self, n) is not None}, "detector": self.detector}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["step_milestones"] = list(self.step_milestones)
        d["detector"] = self.detector.to_dict()
        d["heatmap"] = self.heatmap.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a training config is a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(names)}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc


def load_config(path: Path) -> TrainConfig:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    return TrainConfig.from_dict(data, where=str(path))


def write_json_atomic(path: Path, obj: Any) -> None:
    """A run folder's JSON file (indent 1, unknown types as text), replaced atomically.

    Without fsync: ``status.json`` is rewritten every few iterations, where a sync each time would slow
    training; a crash or kill of the process still leaves the old file or the whole new one.
    """
    atomic_write(Path(path), json.dumps(obj, indent=1, default=str).encode("utf-8"), fsync=False)


def save_config(config: TrainConfig, path: Path) -> None:
    write_json_atomic(path, config.to_dict())
