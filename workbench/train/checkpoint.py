"""Atomic checkpoints: a crash or kill -9 mid-write leaves the previous file whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.domain import ValidationError
from workbench.utils.atomic import atomic_file


class CheckpointError(ValidationError):
    """A checkpoint that cannot be read back (truncated, foreign, or written by another format)."""


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save streamed into the one atomic write, with fsync: a checkpoint must outlive a power cut."""
    with atomic_file(Path(path), fsync=True) as fh:
        torch.save(obj, fh)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with weights_only=True: checkpoints hold tensors and plain Python only."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: no such checkpoint") from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint: {exc}") from exc
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"{path}: not a training checkpoint (no 'model' entry)")
    return obj
