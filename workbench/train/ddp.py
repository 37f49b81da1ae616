"""DistributedDataParallel plumbing: the process group, the few collectives the loop needs, teardown.

Under torchrun (``WORLD_SIZE`` > 1) there is one process per GPU (NCCL) or per CPU process (gloo).
Only rank 0 validates, checkpoints and reports; the other ranks wait for its validation, hence the
long collective timeout. With one process every function here is a no-op or the identity.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from workbench.domain import WorkbenchError
from workbench.train.config import write_json_atomic

# Collectives wait this long (other ranks wait out rank 0's validation); NCCL's default is 10 min.
DIST_TIMEOUT_S = 30 * 60
# How long rank 0, failing, waits for another rank's error file (the likelier first cause).
RANK_ERROR_WAIT_S = 5.0


def setup(device: torch.device, world_size: int, local_rank: int) -> torch.device:
    """Join the process group; returns this rank's device (``cuda:LOCAL_RANK`` on CUDA)."""
    if world_size <= 1:
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise WorkbenchError(f"{world_size} GPUs asked for (--gpus), but this machine has {count} CUDA device(s)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S),
        )
    return device


def wrap(model: torch.nn.Module, device: torch.device, world_size: int) -> torch.nn.Module:
    """The model as the loop trains it: DDP over the ranks, the module itself alone."""
    if world_size <= 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def any_rank(flag: bool, device: torch.device, world_size: int) -> bool:
    """True on every rank when ``flag`` is true on any (one all-reduce of a single number)."""
    if world_size <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def from_rank0(obj: Any, device: torch.device, world_size: int) -> Any:
    """Rank 0's ``obj`` on every rank (its validation result, so early stopping and best-AP agree)."""
    if world_size <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=device if device.type == "cuda" else None)
    return box[0]


def clear_rank_errors(run_dir: Path) -> None:
    """Errors of an earlier attempt (rank 0, before the ranks join: none can have failed yet)."""
    for stale in run_dir.glob("rank*.error"):
        stale.unlink(missing_ok=True)


def first_error(run_dir: Path, rank: int, world_size: int, error: str) -> str:
    """Under DDP the first failure is on some rank; the others then fail on a broken collective.

    Ranks other than 0 leave their error in ``RUN_DIR/rank<R>.error``; rank 0, reporting for the
    run, names that cause first (waiting a moment for it), so the UI shows "rank 1: MemoryError"
    rather than rank 0's "connection closed by peer".
    """
    if world_size <= 1:
        return error
    if rank != 0:
        write_json_atomic(run_dir / f"rank{rank}.error", {"rank": rank, "error": error})
        return error
    deadline = time.monotonic() + RANK_ERROR_WAIT_S
    while True:
        found = sorted(run_dir.glob("rank*.error"))
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


def teardown(world_size: int, *, orderly: bool) -> None:
    """Leave the process group together: ranks that ended in step wait for each other first, so
    none tears its connections down under a peer still using them. Not after a failure: a peer
    may be inside a collective that a barrier would be matched against."""
    if world_size <= 1 or not dist.is_initialized():
        return
    if orderly:
        try:
            dist.barrier()
        except Exception:  # a peer already gone: nothing left to wait for
            pass
    dist.destroy_process_group()
