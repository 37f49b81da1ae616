"""Atomic checkpoints, and the one reader of model and checkpoint files.

A crash or kill -9 mid-write leaves the previous file whole. Every model, checkpoint or weights
file is read with ``weights_only=True``: tensors and plain Python only, so a file that would run
code when unpickled is refused without running it.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
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


def unreadable(path: Path, why: str) -> CheckpointError:
    """The one line for a file that is not a model or checkpoint this version can read."""
    return CheckpointError(f"{path}: not a model this version can read ({why})")


def read_torch_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` whose every failure is one line naming the file.

    torch's own messages run to a dozen lines and suggest ``weights_only=False``, which would run
    whatever code the file holds: the reason given here is short and never suggests that.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if path.stat().st_size == 0:
        raise unreadable(path, "an empty file")
    try:
        with warnings.catch_warnings():  # the unpickler warns about protocols before it refuses
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:
        if isinstance(exc, pickle.UnpicklingError) and zipfile.is_zipfile(path):
            why = "it holds Python objects other than tensors and plain values, which are never unpickled"
        elif isinstance(exc, OSError) and exc.strerror:
            why = exc.strerror
        else:
            why = "not a file written by torch.save, or truncated or corrupt"
        raise unreadable(path, why) from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint (to resume from), read with weights_only=True."""
    obj = read_torch_file(path, map_location)
    if not isinstance(obj, dict) or "model" not in obj:
        raise unreadable(Path(path), "not a training checkpoint: no 'model' entry")
    return obj
