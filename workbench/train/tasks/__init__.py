"""The task registry: what a run learns (instance masks, semantic label maps, keypoint heatmaps).

One trainer (:class:`workbench.train.loop.Trainer`) runs every task; a task supplies the parts that
differ: the data (targets), the model (its forward returns a loss dict in training, as torchvision's
detection models do, so the loop's step, AMP, DDP, EMA and checkpoints stay one code path), the
validation metrics and the model file. :data:`TASKS` holds light specs (no torch import), so the
config can validate ``task`` / ``arch`` without loading a model library; :func:`get_task` imports
the task's module and returns its ``TASK`` object.

A new task adds one :class:`TaskSpec` to ``_SPECS`` below and a module with a ``TASK`` that
implements :class:`Task`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from workbench.domain import ValidationError

if TYPE_CHECKING:
    from pathlib import Path

    from torch import nn

    from workbench.train.config import TrainConfig
    from workbench.train.loop import Trainer


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task's name, where its implementation lives, the metric that picks the best epoch and the
    architectures it offers (the first is the default; ``None``: the task has no ``arch`` setting)."""

    name: str
    module: str
    primary_metric: str
    archs: tuple[str, ...] = ()
    help: str = ""


_SPECS = (
    TaskSpec("instance", "workbench.train.tasks.instance", "segm_ap", (), "Mask R-CNN: objects with masks (and keypoints)"),
    TaskSpec("semantic", "workbench.train.tasks.semantic", "mean_iou",
             ("unet", "fcn", "deeplabv3", "lraspp", "pspnet"), "per-pixel classes (label maps)"),
    TaskSpec("keypoints-heatmap", "workbench.train.heatmap.task", "pck", ("hourglass", "unet"),
             "top-down keypoint heatmaps (pose) on the boxes of keypoint classes"),
)
TASKS: dict[str, TaskSpec] = {s.name: s for s in _SPECS}
TASK_ALIASES = {"keypoints": "keypoints-heatmap"}
"""Short names a config or ``--task`` may use."""
DEFAULT_TASK = "instance"


class UnknownTaskError(ValidationError):
    """A task name that no registered task has."""


def task_spec(name: str) -> TaskSpec:
    """The spec of ``name``; the error lists the tasks that exist."""
    spec = TASKS.get(TASK_ALIASES.get(name, name))
    if spec is None:
        raise UnknownTaskError(f"task {name!r} is not one of {sorted(TASKS)}")
    return spec


class Task(Protocol):
    """The task-specific parts of a run (see the module docstring)."""

    name: str
    primary_metric: str

    def check_config(self, config: TrainConfig) -> list[str]:
        """Problems of ``config`` for this task, one phrase each naming the setting (empty: fine)."""
        ...

    def setup_data(self, trainer: Trainer) -> None:
        """Set ``schema``, ``train_set``, ``sampler``, ``train_loader``, ``val_set``, ``val_loader``,
        ``val_on`` on the trainer."""
        ...

    def build_model(self, trainer: Trainer) -> nn.Module:
        """The model on ``trainer.device``; sets ``trainer.model_args`` (what rebuilds it at load time)."""
        ...

    def validate(self, trainer: Trainer, model: nn.Module) -> dict[str, float]:
        """Validation metrics on ``trainer.val_loader``; must hold :attr:`primary_metric`."""
        ...

    def model_file_payload(self, trainer: Trainer) -> dict[str, Any]:
        """The single-file model (tensors and plain Python only: loads with weights_only=True)."""
        ...


SEMANTIC_ENCODERS: dict[str, tuple[str, ...]] = {
    "fcn": ("resnet50", "resnet101"),
    "deeplabv3": ("resnet50", "resnet101", "mobilenet_v3_large"),
    "lraspp": ("mobilenet_v3_large",),
}
"""The torchvision archs' backbones (the first is the default); unet and pspnet take any encoder of
segmentation-models-pytorch, checked when the model is built."""
SMP_ARCHS = ("unet", "pspnet")
IMAGE_POOLING_ARCHS = ("deeplabv3",)
"""Archs whose image-level pooling branch is batch-normalised (ASPP pooling): 2+ images a step.
smp's PSPNet leaves BatchNorm out of its 1 x 1 bin."""
SEG_LOSSES = ("bce", "ce")
CLASS_REDUCTIONS = ("sum", "mean")


def task_config_problems(config: TrainConfig) -> list[str]:
    """The task settings' problems, one phrase each naming the setting (see :class:`TrainConfig`)."""
    spec = TASKS.get(TASK_ALIASES.get(config.task, config.task))
    if spec is None:
        return [f"task {config.task!r} is not one of {sorted(TASKS)}"]
    problems: list[str] = []
    if config.arch is not None and config.arch not in spec.archs:
        problems.append(
            f"arch {config.arch!r} is not one of {list(spec.archs)} for task {config.task}"
            if spec.archs else f"arch is not a setting of task {config.task} (its model is set by backbone), got {config.arch!r}"
        )
    if spec.name == "keypoints-heatmap":
        from workbench.train.heatmap.config import config_problems

        return problems + config_problems(config)
    if spec.name != "semantic":
        return problems
    arch = config.arch or spec.archs[0]
    allowed = SEMANTIC_ENCODERS.get(arch)
    if allowed is not None and config.encoder is not None and config.encoder not in allowed:
        problems.append(f"encoder {config.encoder!r} is not one of {list(allowed)} for arch {arch}")
    if arch in SMP_ARCHS and config.weights == "coco":
        problems.append(f"weights 'coco' are for fcn, deeplabv3 and lraspp; {arch} takes 'imagenet' (its encoder) or 'none'")
    if config.image_size is not None and (int(config.image_size) < 32 or int(config.image_size) % 32):
        problems.append(f"image_size must be a multiple of 32 (at least 32), got {config.image_size}")
    # BatchNorm in training needs more than one value per channel: one image of a 1 x 1 feature map fails
    if config.batch_size < 2 and arch in IMAGE_POOLING_ARCHS:
        problems.append(f"batch_size must be at least 2 for arch {arch} (its image-level pooling is batch-normalised "
                        f"over the images of a step, per GPU), got {config.batch_size}")
    elif config.batch_size < 2 and arch == "unet" and config.image_size is not None and int(config.image_size) < 64:
        problems.append(f"image_size must be at least 64 for arch unet at batch_size 1 (its 1/32 bottleneck would be "
                        f"1 x 1 and batch-normalised alone), got {config.image_size}")
    if config.seg_loss not in SEG_LOSSES:
        problems.append(f"seg_loss {config.seg_loss!r} is not one of {list(SEG_LOSSES)}")
    if config.bce_class_reduction not in CLASS_REDUCTIONS:
        problems.append(f"bce_class_reduction {config.bce_class_reduction!r} is not one of {list(CLASS_REDUCTIONS)}")
    for name in ("dice_weight", "aux_loss_weight"):
        v = getattr(config, name)
        if not (isinstance(v, int | float) and v >= 0 and v == v and v != float("inf")):
            problems.append(f"{name} must be a number >= 0, got {v!r}")
    return problems


def get_task(name: str) -> Task:
    """The task object of ``name`` (its module imported now)."""
    spec = task_spec(name)
    return importlib.import_module(spec.module).TASK  # type: ignore[no-any-return]


def model_file_task(path: Path) -> str:
    """The task a model file was trained for: its ``task`` entry; files from before tasks existed
    (Mask R-CNN's ``workbench-maskrcnn/1`` without one) are instance models."""
    from workbench.train.checkpoint import read_torch_file

    payload = read_torch_file(path)
    task = payload.get("task", DEFAULT_TASK) if isinstance(payload, dict) else DEFAULT_TASK
    return str(task)
