"""TrainConfig: every knob of a run, as plain JSON so that a run folder reproduces the run."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.domain import ValidationError
from workbench.utils.atomic import atomic_write

BACKBONES = ("resnet50_fpn_v2", "resnet50_fpn", "mobilenet_v3_large_fpn", "tiny")
WEIGHTS = ("coco", "imagenet", "none")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULERS = ("cosine", "step")
DEVICES = ("auto", "cpu", "cuda", "mps")


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
    """None: 0.02 * batch/16 for SGD (torchvision's reference), 1e-4 for AdamW."""
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    step_milestones: tuple[float, ...] = (0.67, 0.89)
    """Fractions of all iterations at which the step schedule multiplies the lr by ``step_gamma``."""
    step_gamma: float = 0.1
    warmup_iters: int = 200
    warmup_factor: float = 0.001
    grad_clip_norm: float | None = 10.0
    amp: bool = True
    """Mixed precision; only ever used on CUDA."""
    device: str = "auto"
    num_workers: int = 2
    aspect_ratio_grouping: bool = True
    augmentation: str | list[dict[str, Any]] = "light"
    min_instance_area: float = 4.0
    min_size: int | None = None
    """Shorter side the model resizes to; None: the backbone's default (800, tiny: 160)."""
    max_size: int | None = None
    trainable_backbone_layers: int | None = None
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
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.step_milestones = tuple(float(m) for m in self.step_milestones)
        problems: list[str] = []
        if self.backbone not in BACKBONES:
            problems.append(f"backbone {self.backbone!r} is not one of {list(BACKBONES)}")
        if self.weights not in WEIGHTS and not (self.weights.endswith((".pt", ".pth")) or os.sep in self.weights):
            problems.append(f"weights {self.weights!r} is not one of {list(WEIGHTS)} nor a checkpoint path (.pt/.pth)")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} is not one of {list(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            problems.append(f"scheduler {self.scheduler!r} is not one of {list(SCHEDULERS)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            problems.append(f"device {self.device!r} is not one of {list(DEVICES)} (or cuda:N)")
        for name in ("epochs", "batch_size", "eval_every", "log_every", "gpus"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_iters", "num_workers"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            problems.append(f"grad_clip_norm must be positive or null, got {self.grad_clip_norm}")
        if not all(0 < m < 1 for m in self.step_milestones):
            problems.append(f"step_milestones are fractions of the run in (0, 1), got {list(self.step_milestones)}")
        if problems:
            raise ConfigError("invalid training config: " + "; ".join(problems))

    @property
    def base_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 0.02 * self.batch_size / 16 if self.optimizer == "sgd" else 1e-4

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["step_milestones"] = list(self.step_milestones)
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
